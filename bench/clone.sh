#!/bin/bash
# clone.sh [--size MIB] [--out FILE] -- copy-on-write clones on kmemfs, measured
# side by side in one run: time to clone a file (cp, which uses
# copy_file_range) against a full copy of the same file (dd through FUSE),
# 4 KiB random writes into a fresh clone (every first write copies a page)
# against the same writes into a private copy, and the space used before and
# after. Writes a Markdown table (default docs/performance/clone.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size_mib=1024
out=$root/docs/performance/clone.md
while [ $# -gt 0 ]; do
	case $1 in
	--size) size_mib=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "usage: $0 [--size MIB] [--out FILE]" >&2; exit 2 ;;
	esac
done
bin=$root/build/bin
[ -x "$bin/kmemfs" ] || { echo "clone.sh: build kmemfs first (scripts/build.sh)" >&2; exit 1; }
command -v fio >/dev/null || apt-get install -y -qq fio >/dev/null
work=$(mktemp -d /dev/shm/kmemfs-clone.XXXXXX)
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() { fusermount3 -u "$mnt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$bin/kmemfs" --size $((size_mib * 4 + 512))M "$work/pool" "$mnt"

secs() { local t0=$(date +%s%N); "$@"; awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'; }
used_mib() { df -B1M --output=used "$mnt" | tail -n 1 | tr -d ' '; }

head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$mnt/src"
u0=$(used_mib)
t_clone=$(secs cp "$mnt/src" "$mnt/clone")
u1=$(used_mib)
t_copy=$(secs dd if="$mnt/src" of="$mnt/copy" bs=1M status=none conv=fsync)
u2=$(used_mib)
cmp "$mnt/src" "$mnt/clone"
fio_iops() {
	fio --name=w --filename="$1" --rw=randwrite --bs=4k --ioengine=psync --direct=1 \
		--size=${size_mib}M --io_size=64M --randrepeat=1 --output-format=terse 2>/dev/null |
		awk -F';' '{ print $49 }'
}
iops_cow=$(fio_iops "$mnt/clone")
iops_priv=$(fio_iops "$mnt/copy")
u3=$(used_mib)
pct=$(awk -v a="$t_clone" -v b="$t_copy" 'BEGIN { printf "%.2f", 100 * a / b }')
mkdir -p "$(dirname "$out")"
{
	echo "# Clones on kmemfs ($size_mib MiB file, $(date -u +%Y-%m-%d), load $(cut -d' ' -f1 /proc/loadavg))"
	echo
	echo "| measure | value |"
	echo "|---|---|"
	echo "| clone (cp, copy_file_range) | ${t_clone} s |"
	echo "| full copy (dd 1 MiB through FUSE) | ${t_copy} s |"
	echo "| clone time / copy time | ${pct} % (target < 1 %) |"
	echo "| df used: before clone / after clone / after full copy | ${u0} / ${u1} / ${u2} MiB |"
	echo "| 4 KiB random writes into the fresh clone (copy-on-write) | ${iops_cow} IOPS |"
	echo "| 4 KiB random writes into a private copy | ${iops_priv} IOPS |"
	echo "| df used after 64 MiB of random writes into each | ${u3} MiB |"
} >"$out"
cat "$out"
