#!/bin/bash
# run_all.sh [BIN_DIR] -- run every integration test and print one summary line
# each (ctest does the same from the build tree; this needs no build for
# KMEMFS_TEST_TARGET=tmpfs). Full output goes to $RESULTS (default a temp dir).
here=$(cd "$(dirname "$0")" && pwd)
RESULTS=${RESULTS:-$(mktemp -d "${TMPDIR:-/tmp}/kmemfs-it-results.XXXXXX")}
mkdir -p "$RESULTS"
failed=0
for t in "$here"/test_*.sh; do
	name=$(basename "$t" .sh)
	start=$SECONDS
	"$t" "$@" >"$RESULTS/$name.log" 2>&1
	rc=$?
	case $rc in
	0) verdict=PASS ;;
	77) verdict=SKIP ;;
	*) verdict="FAIL($rc)"; failed=$((failed + 1)) ;;
	esac
	printf '%-10s %-22s %4ss  %s\n' "$verdict" "$name" $((SECONDS - start)) "$(tail -n 1 "$RESULTS/$name.log")"
done
echo "logs in $RESULTS"
[ $failed -eq 0 ]
