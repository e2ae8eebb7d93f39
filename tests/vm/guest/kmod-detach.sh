# kmod-detach.sh -- attach of a range device_dax owns is EBUSY; bad input gets
# clean errors; unload is refused while attached; detach (with a process
# using lent memory, migrated away) gives /dev/dax0.0 back with held data
# intact; a second attach after reload sees it too.
. /kmemfs/kmod-lib.sh

kmod_load
kmt kmod-attach-busy attach-busy
pass kmod-attach-busy
kmod_attach
kmt kmod-detach write 0 4 0x2222
kmt kmod-detach lend 4 8
kmt kmod-bad bad
pass kmod-bad
if rmmod kmemfs 2>/tmp/rmmod.log; then
	fail kmod-unload-refused "rmmod kmemfs succeeded while attached"
	exit 1
fi
echo "kmod-detach: rmmod while attached: $(cat /tmp/rmmod.log)"
pass kmod-unload-refused
# a process keeps 24 MiB of the lent units: detach must migrate it off node 1
rm -f /tmp/filled /tmp/release
kmodtest fill 24 5a5a5a5a00c0ffee /tmp/filled /tmp/release >/tmp/fill.log 2>&1 &
fpid=$!
i=0
while [ ! -e /tmp/filled ] && kill -0 $fpid 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.2
	i=$((i + 1))
done
[ -e /tmp/filled ] || { cat /tmp/fill.log; fail kmod-detach "filler did not start"; exit 1; }
kmt kmod-detach detach
: >/tmp/release
wait $fpid
frc=$?
cat /tmp/fill.log
[ $frc -eq 0 ] || { fail kmod-detach "the process on lent memory lost data at detach ($frc)"; exit 1; }
[ -c /dev/dax0.0 ] || sleep 1
KMT_HOT_START=$HOT kmt kmod-detach daxcheck 0 4 0x2222
grep -q kmemfs /proc/iomem && { fail kmod-detach "kmemfs still in /proc/iomem"; exit 1; }
run rmmod kmemfs || { fail_out kmod-detach "rmmod after detach"; exit 1; }
pass kmod-detach

# mount again: reload, attach, the data is there, detach
kmod_attach
kmt kmod-reattach check 0 4 0x2222
kmt kmod-reattach detach
run rmmod kmemfs || { fail_out kmod-reattach "rmmod"; exit 1; }
pass kmod-reattach
