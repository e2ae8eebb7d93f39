# kmod-safety.sh -- held units keep data written through the device file's
# mapping across lends and reclaims of other units; a reclaimed unit reads
# all zeroes; touching a lent unit through the mapping is SIGBUS.
. /kmemfs/kmod-lib.sh

kmod_attach
kmt kmod-headrw headrw
pass kmod-headrw
kmt kmod-safety write 0 16 0x1111
kmt kmod-safety lend 8 8
kmt kmod-safety check 0 8 0x1111
kmt kmod-sigbus sigbus 8
kmt kmod-sigbus sigbus 15
pass kmod-sigbus
# lend a unit that held data: gone for us, neighbours untouched
kmt kmod-safety lend 3 1
kmt kmod-sigbus sigbus 3
kmt kmod-safety check 0 3 0x1111
kmt kmod-safety check 4 4 0x1111
kmt kmod-safety reclaim 3 1
kmt kmod-zero zero 3 1
kmt kmod-safety reclaim 8 8
kmt kmod-zero zero 8 8
pass kmod-zero
# cycles: lend/reclaim other units while the pattern must stay
i=0
while [ $i -lt 5 ]; do
	kmt kmod-safety lend 16 32
	kmt kmod-safety reclaim 16 32
	i=$((i + 1))
done
kmt kmod-safety check 0 3 0x1111
kmt kmod-safety check 4 4 0x1111
kmt kmod-safety info
pass kmod-safety
