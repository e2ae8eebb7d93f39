# namespace-mapmem.sh -- guest action: namespace.sh with the struct pages in RAM
# (--map=mem). The device then starts 2 MiB past a 4 MiB boundary (namespace.sh
# checks it), so 4 MiB of device offset are not 4 MiB of physical memory: what
# kmod-fs-phase checks the pool copes with.
NS_MAP=mem
. /kmemfs/namespace.sh
