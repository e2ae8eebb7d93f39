# kmod-lib.sh -- helpers for the kmod-* guest actions (sourced by them, not an
# action itself): load kmemfs.ko, drive it with kmodtest, read node 1's MemFree.

# kmt NAME ARGS... -- run kmodtest ARGS, show its output; on failure report NAME
# as failed and end the action
kmt() {
	kn=$1
	shift
	kmodtest "$@" >"$CMDLOG" 2>&1
	krc=$?
	sed 's/^/    kmodtest: /' "$CMDLOG"
	if [ $krc -ne 0 ]; then
		fail "$kn" "kmodtest $* exited $krc"
		exit 1
	fi
}

# kmod_load -- insmod kmemfs.ko and wait for /dev/kmemfs
kmod_load() {
	run modprobe kmemfs || { fail_out kmod-load "modprobe kmemfs"; exit 1; }
	i=0
	while [ ! -c /dev/kmemfs ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -c /dev/kmemfs ] || { fail kmod-load "/dev/kmemfs did not appear"; exit 1; }
}

# kmod_attach -- load, unbind dax0.0, attach, online the blocks; sets UNITS, HOT
kmod_attach() {
	kmod_load
	kmt kmod-attach attach
	UNITS=$(kmodtest info | sed -n 's/.* units=\([0-9]*\) .*/\1/p' | head -n 1)
	HOT=$(kmodtest info | sed -n 's/.* hot_start=\(0x[0-9a-f]*\) .*/\1/p')
	[ "${UNITS:-0}" -ge 64 ] || { fail kmod-attach "only '${UNITS}' hot units"; exit 1; }
}

memfree() { kmodtest memfree 1; }

# kv KEY -- a KEY=value from the last kmodtest output
kv() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p; s/^$1=\([^ ]*\).*/\1/p" "$CMDLOG" | tail -n 1; }
