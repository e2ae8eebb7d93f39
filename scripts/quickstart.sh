#!/bin/sh
# quickstart.sh [POOL] [MOUNTPOINT] -- install what kmemfs needs, build it,
# create a 1 GiB pool file if none exists, and mount it.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
pool=${1:-$root/kmemfs.img}
mnt=${2:-$root/mnt}
"$root/scripts/deps.sh"
"$root/scripts/build.sh" build
mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
	echo "quickstart: $mnt is already mounted; unmount it with: fusermount3 -u $mnt" >&2
	exit 1
fi
"$root/build/bin/kmemfs" --size 1G "$pool" "$mnt"
echo
echo "kmemfs is mounted on $mnt (pool file $pool)."
"$root/build/bin/kmemfsctl" stat "$mnt"
echo
echo "Unmount with:   fusermount3 -u $mnt"
echo "Check it with:  $root/build/bin/fsck.kmemfs -n $pool   (after unmounting)"
