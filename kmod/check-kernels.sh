#!/bin/sh
# check-kernels.sh -- build kmemfs.ko against the headers of every Debian 12
# kernel line it supports, failing on any error or warning:
#   6.1  (bookworm, the kernel the VM rig boots and tests the module on)
#   6.12 (bookworm-backports, where the LINUX_VERSION_CODE / FOP_* guards matter)
# The header packages are downloaded from Debian's archive and unpacked into a
# cache (nothing is installed); needs network access to deb.debian.org only.
#
#   kmod/check-kernels.sh [LINE...]      default: 6.1 6.12
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KMEMFS_VM_CACHE:-$HOME/.cache/kmemfs-vm}/headers
mkdir -p "$cache"
lines=${*:-6.1 6.12}

# apt for one suite, with its own lists, so the machine's sources stay as they are
apt_suite() {
	suite=$1
	shift
	dir=$cache/apt-$suite
	mkdir -p "$dir/lists/partial"
	echo "deb http://deb.debian.org/debian $suite main" >"$dir/sources.list"
	# kernel fixes reach bookworm through its security suite
	[ "$suite" = bookworm ] &&
		echo "deb http://deb.debian.org/debian-security bookworm-security main" >>"$dir/sources.list"
	: >"$dir/status" # what this machine has installed does not matter
	"$@" -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$dir/lists" -o Dir::State::status="$dir/status" \
		-o Debug::NoLocking=1
}

suite_of() {
	case "$1" in
	6.1) echo bookworm ;;
	6.12) echo bookworm-backports ;;
	*) echo "check-kernels: no Debian 12 suite known for kernel $1" >&2; exit 2 ;;
	esac
}

fail=0
for line in $lines; do
	suite=$(suite_of "$line")
	apt_suite "$suite" apt-get -qq update 2>&1 | grep -v unsandboxed || true
	# the newest amd64 header package of this line, e.g. linux-headers-6.12.95+deb12-amd64
	pkg=$(apt_suite "$suite" apt-cache search --names-only "^linux-headers-$line[.-].*-amd64\$" |
		awk '{ print $1 }' | grep -v -e cloud -e rt- | sort -V | tail -n 1)
	[ -n "$pkg" ] || { echo "check-kernels: no headers for $line in $suite" >&2; fail=1; continue; }
	abi=${pkg#linux-headers-}
	abi=${abi%-amd64}
	unpacked=$cache/$abi
	if [ ! -d "$unpacked/usr/src/linux-headers-$abi-amd64" ]; then
		rm -rf "$unpacked" "$cache/debs"
		mkdir -p "$unpacked" "$cache/debs"
		kbuild=$(apt_suite "$suite" apt-cache depends "$pkg" |
			awk '$2 ~ /^linux-kbuild-/ { print $2; exit }')
		(cd "$cache/debs" && apt_suite "$suite" apt-get -qq download \
			"$pkg" "linux-headers-$abi-common" "$kbuild" 2>&1 | grep -v unsandboxed || true)
		for deb in "$cache"/debs/*.deb; do
			dpkg-deb -x "$deb" "$unpacked"
		done
		# the arch directory includes the common one by absolute path
		sed -i "s|/usr/src/|$unpacked/usr/src/|" \
			"$unpacked/usr/src/linux-headers-$abi-amd64/Makefile"
	fi
	out=$cache/build-$abi
	rm -rf "$out"
	cp -r "$root/kmod" "$out"
	mkdir -p "$cache/include"
	rm -rf "$cache/include/kmemfs"
	cp -r "$root/include/kmemfs" "$cache/include/"
	log=$out/build.log
	# kmemfs.h includes ../include/kmemfs/uapi.h: $cache/include here
	# BTF for modules needs pahole and says nothing about the code: skipped
	if make -C "$unpacked/usr/src/linux-headers-$abi-amd64" M="$out" \
		CONFIG_DEBUG_INFO_BTF_MODULES= modules >"$log" 2>&1 &&
		[ -f "$out/kmemfs.ko" ] && ! grep -q -e 'warning:' -e 'undefined!' "$log"; then
		echo "check-kernels: kmemfs.ko builds cleanly against $abi"
	else
		echo "check-kernels: kmemfs.ko does not build cleanly against $abi:" >&2
		grep -e 'error' -e 'warning' -e 'undefined' "$log" | head -n 20 >&2
		fail=1
	fi
	first=${first:-$unpacked/usr/src/linux-headers-$abi-amd64}
done

# the CMake target (`cmake --build B --target kmod`) builds the same module in kmod/
if [ -n "${first:-}" ]; then
	# a fresh build dir: the cache outlives checkouts, CMake's cache may not
	rm -f "$root/kmod/kmemfs.ko"
	rm -rf "$cache/cmake"
	if cmake -S "$root" -B "$cache/cmake" -DKMEMFS_TESTS=OFF -DKMEMFS_KDIR="$first" \
		>"$cache/cmake-kmod.log" 2>&1 &&
		cmake --build "$cache/cmake" --target kmod >>"$cache/cmake-kmod.log" 2>&1 &&
		[ -f "$root/kmod/kmemfs.ko" ]; then
		echo "check-kernels: cmake --target kmod builds kmemfs.ko against ${first##*/}"
	else
		echo "check-kernels: cmake --target kmod failed (see $cache/cmake-kmod.log)" >&2
		fail=1
	fi
fi
exit $fail
