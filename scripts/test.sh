#!/bin/sh
# test.sh -- install what is needed, build, and run every test:
#   1. unit and integration tests (ctest) on a -Werror build, the race
#      tests also against ThreadSanitizer builds of the layers and daemon,
#      and scripts/quickstart.sh as the README runs it (tests/quickstart.sh),
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. the VM suite (real kernel, emulated NVDIMM, devdax) when present,
#   4. kmod/kmemfs.ko compiled against the 6.1 and 6.12 kernel headers.
# Exits non-zero if anything failed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fail=0
# two tests at a time even on one CPU: most of an integration test's time is
# spent waiting on the daemon or a sleep (tests that must run alone or hold
# the fuse module's enable_uring say so in tests/*/CMakeLists.txt)
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -ge 2 ] || jobs=2
[ "$jobs" -le 4 ] || jobs=4
"$root/scripts/deps.sh" || exit 1

echo "== build (release, -Werror)"
"$root/scripts/build.sh" build -DKMEMFS_WERROR=ON || exit 1
echo "== tests (release)"
(cd build && ctest -j "$jobs" --output-on-failure --timeout 900) || fail=1

echo "== quick start (the README's first command, on a pool in /dev/shm)"
"$root/tests/quickstart.sh" || fail=1

echo "== build (ASan + UBSan)"
"$root/scripts/build.sh" build-asan -DKMEMFS_WERROR=ON -DKMEMFS_SANITIZE=ON || exit 1
echo "== tests (ASan + UBSan)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest -j "$jobs" --output-on-failure --timeout 900) || fail=1

if [ -x "$root/tests/vm/run.sh" ] && [ "${KMEMFS_SKIP_VM:-0}" != 1 ]; then
	echo "== VM tests (QEMU, emulated NVDIMM)"
	"$root/tests/vm/run.sh" --build-dir "$root/build" || fail=1
fi
echo "== kmod builds against Debian 12's kernels (6.1, 6.12 from backports)"
"$root/kmod/check-kernels.sh" || fail=1
exit $fail
