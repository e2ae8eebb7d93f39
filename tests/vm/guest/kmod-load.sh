# kmod-load.sh -- guest action: load kmemfs.ko, so that the next mount of
# /dev/dax0.0 lends its free units to the kernel
. /kmemfs/kmod-lib.sh
kmod_load
pass kmod-load
