# kmod-pressure.sh -- a process fills the lent memory of node 1 with a known
# word and keeps it; reclaim then takes units back anyway (the kernel migrates
# the process's pages), the reclaimed units never contain the word, and the
# process's own data survives the migration.
. /kmemfs/kmod-lib.sh

WORD=4b4d454d46535041
kmod_attach
kmt kmod-pressure lend 0 all
mib=$((UNITS * 4 * 85 / 100))
rm -f /tmp/filled /tmp/release
kmodtest fill $mib $WORD /tmp/filled /tmp/release >/tmp/fill.log 2>&1 &
fpid=$!
i=0
while [ ! -e /tmp/filled ] && kill -0 $fpid 2>/dev/null && [ $i -lt 600 ]; do
	sleep 0.2
	i=$((i + 1))
done
cat /tmp/fill.log
[ -e /tmp/filled ] || { fail kmod-pressure "filler did not fill node 1"; exit 1; }
echo "kmod-pressure: node 1 MemFree $(memfree) kB with the filler holding $mib MiB"

# take back half of the device while the filler holds node 1
half=$((UNITS / 2))
kmt kmod-pressure reclaim 0 $half
kmt kmod-pressure scan 0 $half $WORD
kmt kmod-pressure zero 0 $half
: >/tmp/release
wait $fpid
frc=$?
cat /tmp/fill.log
[ $frc -eq 0 ] || { fail kmod-pressure "filler exited $frc (its data did not survive migration?)"; exit 1; }
kmt kmod-pressure reclaim $half all
kmt kmod-pressure scan 0 all $WORD
kmt kmod-pressure info
pass kmod-pressure
