# kmod-exercise.sh -- random file operations (fsexercise, from the integration
# tests) on kmemfs on /dev/dax0.0 with kmemfs.ko loaded, every read checked
# against an in-memory copy. This is the devdax store path (stores into the
# mapping, not pwrite into a pool file), with units taken back from the kernel
# as files grow and lent again as punches and truncates free them; booted with
# init_on_alloc=0, so a reclaimed page that kept the kernel's bytes would show.
# Then 2 threads on one file, and 4 racing on the same names (fsracer); rm
# lends units again (all that was lent at mount); umount, fsck clean.
. /kmemfs/kmod-lib.sh

# the guest's clock and pid differ per boot: new seeds, printed for replay
SEED=$(($(date +%s) % 100000 * 7 + $$))

run mkfs.kmemfs "$DEV" || { fail_out kmod-exercise-mkfs "mkfs.kmemfs $DEV"; exit 1; }
kmod_load
kmemfs -f "$DEV" "$MNT" >/tmp/kmemfs.log 2>&1 &
i=0
while ! grep -q " $MNT fuse" /proc/mounts && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q " $MNT fuse" /proc/mounts || { cat /tmp/kmemfs.log; fail kmod-exercise-mount "kmemfs $DEV $MNT"; exit 1; }

# exercise NAME ARGS... -- one fsexercise run; its last lines on failure
exercise() {
	en=$1
	shift
	fsexercise "$@" "$MNT" >/tmp/fx.out 2>&1
	erc=$?
	sed 's/^/    /' /tmp/fx.out | tail -n 30
	[ $erc -eq 0 ] || { fail "$en" "fsexercise $* exited $erc"; exit 1; }
	pass "$en"
}
# counter VALUE-NAME -- one number from kmemfsctl stat --json
counter() { kmemfsctl stat "$MNT" --json | sed "s/.*\"$1\": \([0-9]*\).*/\1/"; }
# fill the free pages that are not lent (the reserve, unaligned ends), so that
# every page the runs allocate is one taken back from the kernel
lentp0=$(counter lent_pages)
free_mb=$(($(counter free_pages) / 256))
dd if=/dev/zero of="$MNT/filler" bs=1M count=$free_mb 2>/dev/null ||
	{ fail kmod-exercise-fill "writing $free_mb MiB"; exit 1; }
lent0=$(counter units_lent)
recl0=$(counter units_reclaimed)
# 16 MiB files: four units each, so whole units come and go
exercise kmod-exercise-files -s $SEED -n 1500 -S 16777216
exercise kmod-exercise-threads -T 2 -s $((SEED + 1)) -n 600 -S 16777216
# threads racing namespace and data operations on the same names (fsracer)
mkdir "$MNT/race"
fsracer -s $((SEED + 2)) -t 10 -T 4 "$MNT/race" >/tmp/racer.out 2>&1
rrc=$?
sed 's/^/    /' /tmp/racer.out | tail -n 5
[ $rrc -eq 0 ] || { fail kmod-exercise-racer "fsracer exited $rrc"; exit 1; }
pass kmod-exercise-racer
rm -rf "$MNT/race"
# the runs must have moved units both ways, or they tested less than they say
recl=$(($(counter units_reclaimed) - recl0))
# the reserve refills first; removing everything frees whole units to lend
rm -f "$MNT"/fx.* "$MNT/filler"
sync
# the kernel's FORGETs of the removed inodes come asynchronously
i=0
while [ "$(counter lent_pages)" != "$lentp0" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kmemfsctl stat "$MNT" | sed "s/^/    /"
lent=$(($(counter units_lent) - lent0))
echo "kmod-exercise: units reclaimed from the kernel during the runs $recl, lent back after rm $lent"
[ "${recl:-0}" -gt 0 ] && [ "${lent:-0}" -gt 0 ] ||
	{ fail kmod-exercise-units "units reclaimed $recl, lent $lent: want both > 0"; exit 1; }
# and with every file gone, all that was lent at mount is lent again (free
# units the module cannot lend make up the reserve, lendable ones go back)
lentp=$(counter lent_pages)
[ "$lentp" = "$lentp0" ] ||
	{ fail kmod-exercise-units "lent pages $lentp after rm, $lentp0 at mount"; exit 1; }
umount_fs || { fail_out kmod-exercise-umount "umount"; exit 1; }
fsck_clean kmod-exercise-fsck || exit 1
pass kmod-exercise
