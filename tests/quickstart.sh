#!/bin/sh
# quickstart.sh -- run the README's first command (scripts/quickstart.sh) as a
# user would, on a pool in /dev/shm: it must mount, say how to unmount, and
# leave a filesystem that works, unmounts with the command it printed, and
# checks clean. Run by scripts/test.sh after the release build.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /dev/shm/kmemfs-qs.XXXXXX) || exit 1
pool=$work/kmemfs.img mnt=$work/mnt
fails=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1"; fails=$((fails + 1)); }

"$root/scripts/quickstart.sh" "$pool" "$mnt" >"$work/out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "quickstart.sh exits 0" || bad "quickstart.sh exits $rc: $(cat "$work/out")"
mountpoint -q "$mnt" && ok "it mounted kmemfs on $mnt" || bad "nothing is mounted on $mnt"
[ "$(stat -c %s "$pool" 2>/dev/null)" = $((1 << 30)) ] && ok "it made a 1 GiB pool file" ||
	bad "pool file size '$(stat -c %s "$pool" 2>/dev/null)', want 1 GiB"
grep -q "^data total  *[0-9]" "$work/out" && ok "it shows kmemfsctl stat" || bad "no stat in: $(cat "$work/out")"
echo hello >"$mnt/hello" && [ "$(cat "$mnt/hello")" = hello ] && ok "the filesystem works" ||
	bad "cannot write and read back a file"
how=$(sed -n 's/^Unmount with: *//p' "$work/out")
[ "$how" = "fusermount3 -u $mnt" ] && ok "it says how to unmount" || bad "unmount line '$how'"
$how && ! mountpoint -q "$mnt" && ok "the printed command unmounts" || bad "'$how' did not unmount"
i=0
while pgrep -f "kmemfs --size 1G $pool" >/dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
"$root/build/bin/fsck.kmemfs" -n "$pool" >"$work/fsck" 2>&1 && ok "fsck.kmemfs -n finds the pool clean" ||
	bad "fsck.kmemfs -n: $(cat "$work/fsck")"
# a second run keeps the pool and its files
"$root/scripts/quickstart.sh" "$pool" "$mnt" >"$work/out" 2>&1 && [ "$(cat "$mnt/hello" 2>/dev/null)" = hello ] &&
	ok "a second run mounts the same pool, files kept" || bad "second run: $(cat "$work/out")"
mountpoint -q "$mnt" && fusermount3 -u "$mnt"
rm -rf "$work"
echo "# quickstart: $fails failed"
[ $fails -eq 0 ]
