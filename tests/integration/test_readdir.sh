#!/bin/bash
# test_readdir.sh -- readdir stays correct while entries are added and removed
# between getdents calls; offsets stay valid across a long listing.
. "$(dirname "$0")/lib.sh" "$@"
# /dev/shm: this tests readdir logic, not the media (see test_bigdir.sh)
fs_setup 128M "" /dev/shm
mkdir "$MNT/c"

out=$(probe churn "$MNT/c" 1500 2>&1)
if [ $? -eq 0 ]; then
	pass "3 rounds of getdents while unlinking and creating: stable entries exactly once, no duplicates"
else
	fail "readdir during concurrent unlink/create" "$out"
fi

# a second process changes the directory while ls reads it repeatedly
mkdir "$MNT/r"
(cd "$MNT/r" && seq -f 's%05g' 1 3000 | xargs touch)
(
	for i in $(seq 1 600); do
		touch "$MNT/r/t$i"
		rm -f "$MNT/r/t$((i - 1))"
	done
) &
writer=$!
bad=0
for i in $(seq 1 15); do
	l=$(ls -f "$MNT/r")
	s=$(grep -c '^s' <<<"$l")
	d=$(sort <<<"$l" | uniq -d | wc -l)
	if [ "$s" -ne 3000 ] || [ "$d" -ne 0 ]; then
		bad=$((bad + 1))
		note "listing $i: $s stable entries, $d duplicates"
	fi
done
wait $writer
check_eq "$bad" 0 "15 listings during another process's create/unlink each show all 3000 stable names once"
check_eq "$(ls -f "$MNT/r" | grep -c '^t')" 1 "only the last temporary name remains"

# readdir after many unlinks leaves no ghosts
(cd "$MNT/r" && seq -f 's%05g' 1 2 3000 | xargs rm)
check_eq "$(ls "$MNT/r" | grep -c '^s')" 1500 "listing after unlinking every other entry"
check_eq "$(ls "$MNT/r" | grep -c '^s0000[13579]$')" 0 "no unlinked name comes back"
finish
