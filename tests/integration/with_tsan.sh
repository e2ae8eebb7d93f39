#!/bin/bash
# with_tsan.sh TEST BIN_DIR -- run an integration test with BIN_DIR's kmemfs
# built with ThreadSanitizer, and fail if it reported any data race, even
# when the test itself passed (the reports go to files, not to the test).
test=${1:?usage: with_tsan.sh TEST BIN_DIR}
shift
logs=$(mktemp -d "${TMPDIR:-/tmp}/kmemfs-tsan.XXXXXX") || exit 2
trap 'rm -rf "$logs"' EXIT
TSAN_OPTIONS="log_path=$logs/report halt_on_error=0 ${TSAN_OPTIONS:-}" "$test" "$@"
rc=$?
if compgen -G "$logs/report*" >/dev/null; then
	cat "$logs"/report*
	echo "not ok - ThreadSanitizer: $(grep -c '^WARNING: ThreadSanitizer' "$logs"/report* | awk -F: '{n += $NF} END {print n}') report(s) from the daemon (above)"
	rc=1
fi
exit "$rc"
