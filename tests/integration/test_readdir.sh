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

# Listings with attributes (kmemfs answers READDIRPLUS): after a remount a
# listing brings every name's attributes, the right ones, and the lookups
# it counted are given back, so removed files still free their pages.
mkdir "$MNT/p" "$MNT/p/sub"
for i in $(seq 1 300); do
	head -c $((i * 1000)) /dev/zero >"$MNT/p/f$i" 2>"$WORK/err" &&
		chmod "$(printf '%o' $((0400 + (i % 8) * 010 + (i % 3))))" "$MNT/p/f$i" ||
		abort_test "create p/f$i for the listing" "$(cat "$WORK/err"; stat -f "$MNT"; "$BIN_DIR/kmemfsctl" stat "$MNT")"
done
ln "$MNT/p/f1" "$MNT/p/hard" && ln -s f2 "$MNT/p/sym" && mkfifo "$MNT/p/fifo" ||
	abort_test "a link, a symlink and a FIFO for the listing"
requests() { echo $(($(requests_dev) + $(requests_ring))); }
list_attrs() { find "$MNT/p" -mindepth 1 -printf '%P %s %m %n %y %U %G %T@\n' | sort; }
want=$(list_attrs)
fs_remount || abort_test "remount"
before=$(on_kmemfs && requests)
got=$(list_attrs)
after=$(on_kmemfs && requests)
check_eq "$got" "$want" "after a remount, a listing's attributes are those of each file (304 entries)"
if on_kmemfs; then
	check "[ $((after - before)) -lt 60 ]" \
		"... brought by the listing: $((after - before)) requests for 304 names, no LOOKUP each"
	before=$(requests)
	check_eq "$(list_attrs)" "$want" "a second listing, of names the kernel knows, gives the same"
	after=$(requests)
	check "[ $((after - before)) -lt 60 ]" "... in $((after - before)) requests"
fi
used() { stat -f -c '%b %f' "$MNT" | awk '{ print $1 - $2 }'; }
u0=$(used)
rm -rf "$MNT/p"
freed() { [ $((u0 - $(used))) -ge $((300 * 301 / 2 * 1000 / 4096)) ]; }
check "wait_until 10 freed" "removing the listed files frees their pages ($((u0 - $(used))) blocks)"
finish
