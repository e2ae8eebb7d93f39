# host.sh -- host side of the kmemfs VM rig; sourced by tests/vm/run.sh (bash).
#
#   vm_deps                      install the Debian packages the rig needs
#   vm_kernel                    fetch + unpack Debian's current 6.1 kernel (sets KREL, KROOT)
#   vm_initrd DIR                build the initramfs from the kernel, tools and build dir
#   vm_boot LOG TIMEOUT ARGS...  boot once, console to LOG; returns QEMU's exit status
#   vm_boot_bg LOG TIMEOUT ARGS  same, in the background (VM_PID = timeout's pid)
#   vm_kill                      kill -9 the running QEMU (the power cut)
#
# Needs: VM_DIR (tests/vm), SRC_DIR, BUILD_DIR, CACHE, WORK set by the caller.

VM_PKGS="qemu-system-x86 busybox-static ndctl daxctl kmod cpio attr util-linux coreutils"
# The kernel's modules the guest needs; their dependencies come along (modprobe -D).
# virtio_pci and virtio_mem are only copied: init does not load them (no udev,
# nothing autoloads); kmod-callback-taken does, with its virtio-mem device.
VM_MODULES="nfit nd_pmem dax_pmem device_dax kmem fuse virtio_pci virtio_mem"
# Extra QEMU arguments for one test: a t_* function sets it with "local", so
# qemu_cmd sees it only during that test's boots.
QEMU_EXTRA=()
# kmemfs programs copied from the build dir when they exist.
VM_KMEMFS_PROGS="kmemfs mkfs.kmemfs fsck.kmemfs kmemfsctl fsexercise fsracer"

log() { echo "vm: $*" >&2; }
die() { echo "vm: error: $*" >&2; exit 2; }

# vm_deps -- install whatever of VM_PKGS is missing, with the project's own
# installer (scripts/deps.sh: idempotent, refreshes the lists once when needed)
vm_deps() {
	"$SRC_DIR/scripts/deps.sh" $VM_PKGS >&2 || die "cannot install$VM_PKGS"
}

# current_krel -- the ABI name (6.1.0-N-amd64) Debian's linux-image-amd64 points at now.
# Falls back to the newest kernel already in the cache when apt cannot answer.
current_krel() {
	local k
	k=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\(6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n 1)
	if [ -z "$k" ]; then
		k=$(ls "$CACHE/kernel" 2>/dev/null | sort -V | tail -n 1)
		[ -n "$k" ] && log "apt-cache gave no kernel; using cached $k"
	fi
	[ -n "$k" ] || die "cannot find the kernel of linux-image-amd64 (apt-get update?)"
	echo "$k"
}

# download PKG -- apt-get download PKG into $CACHE/debs unless a .deb of it is there;
# prints the .deb's path
download() {
	local pkg=$1 deb
	mkdir -p "$CACHE/debs"
	deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$deb" ]; then
		log "downloading $pkg"
		# root downloads directly: the _apt sandbox user cannot write to $HOME/.cache
		(cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" \
			>/dev/null) || die "apt-get download $pkg failed"
		deb=$(ls "$CACHE/debs/${pkg}_"*.deb | sort -V | tail -n 1)
	fi
	echo "$deb"
}

# vm_kernel -- sets KREL and KROOT (the unpacked linux-image package, with a
# modules.dep made by depmod) and installs the matching headers for kmod builds
vm_kernel() {
	local deb h1 h2
	KREL=$(current_krel)
	KROOT=$CACHE/kernel/$KREL
	if [ ! -e "$KROOT/.complete" ]; then
		deb=$(download "linux-image-$KREL")
		rm -rf "$KROOT"
		mkdir -p "$KROOT"
		log "unpacking $(basename "$deb")"
		dpkg-deb -x "$deb" "$KROOT" || die "dpkg-deb -x $deb failed"
		# Debian ships no modules.dep (postinst makes it); modprobe -D needs one.
		depmod -b "$KROOT" "$KREL" || die "depmod on $KROOT failed"
		touch "$KROOT/.complete"
	fi
	[ -e "$KROOT/boot/vmlinuz-$KREL" ] || die "no vmlinuz in $KROOT"

	# Headers for building kmod/ against this kernel: installed, not only unpacked,
	# so /usr/src/linux-headers-$KREL exists. Not needed by the tests themselves.
	if [ ! -d "/usr/src/linux-headers-$KREL" ]; then
		h1=$(download "linux-headers-$KREL")
		h2=$(download "linux-headers-${KREL%-amd64}-common")
		log "installing linux-headers-$KREL"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			"$h1" "$h2" >/dev/null 2>&1 ||
			log "warning: installing linux-headers-$KREL failed (kmod builds need it)"
	fi
}

# copy_prog ROOT PROG [DEST] -- copy PROG (path) into ROOT at DEST (default: same
# path) with every shared library ldd names, at their own paths
copy_prog() {
	local root=$1 prog=$2 dest=${3:-$2} lib
	mkdir -p "$root$(dirname "$dest")"
	cp -L "$prog" "$root$dest" || die "cannot copy $prog"
	for lib in $(ldd "$prog" 2>/dev/null |
		sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib" || die "cannot copy $lib (for $prog)"
	done
}

# copy_module ROOT MOD -- copy MOD and its dependencies from KROOT into ROOT.
# Reads modules.dep itself (it lists dependencies transitively): modprobe -D would
# apply the host's /etc/modprobe.d, where ndctl's "install libnvdimm" hides deps.
copy_module() {
	local root=$1 mod=$2 md=/lib/modules/$KREL ko line
	line=$(grep -E "(^|/)${mod}\.ko:" "$KROOT$md/modules.dep") ||
		die "module $mod not found in $KREL"
	for ko in $(echo "$line" | tr -d ':'); do
		mkdir -p "$root$md/$(dirname "$ko")"
		cp "$KROOT$md/$ko" "$root$md/$ko"
	done
}

# vm_initrd OUT -- build an uncompressed initramfs (cpio) at OUT. Uncompressed on
# purpose: under TCG the guest would spend seconds inflating it.
vm_initrd() {
	local out=$1 root p a md=/lib/modules/$KREL
	root=$(dirname "$out")/initrd.d
	rm -rf "$root"
	# merged /usr, as on Debian 12, so the libraries' ldd paths work unchanged
	mkdir -p "$root"/usr/bin "$root"/usr/sbin "$root"/usr/lib/busybox "$root"/usr/lib64 \
		"$root"/proc "$root"/sys "$root"/dev "$root"/tmp "$root"/run "$root"/mnt \
		"$root"/etc "$root"/kmemfs
	ln -s usr/bin "$root/bin"
	ln -s usr/sbin "$root/sbin"
	ln -s usr/lib "$root/lib"
	ln -s usr/lib64 "$root/lib64"

	# busybox: applets live in their own directory, last in PATH, so the real
	# tools copied below (fallocate, setfattr, modprobe, ...) win
	cp /bin/busybox "$root/usr/bin/busybox"
	ln -s busybox "$root/usr/bin/sh"
	for a in $(/bin/busybox --list); do
		ln -s ../../bin/busybox "$root/usr/lib/busybox/$a"
	done

	# tools from the host's Debian packages
	# (coreutils date: busybox's has no %N, the benchmarks' clock)
	for p in /usr/bin/ndctl /usr/bin/daxctl /usr/bin/fallocate /usr/bin/setfattr \
		/usr/bin/getfattr /usr/bin/stat /usr/bin/md5sum /usr/bin/kmod /usr/bin/date; do
		copy_prog "$root" "$p"
	done
	for a in modprobe insmod rmmod lsmod depmod modinfo; do
		ln -s ../bin/kmod "$root/usr/sbin/$a"
	done
	p=$(command -v fusermount3 || true)
	[ -n "$p" ] && copy_prog "$root" "$p" /usr/bin/fusermount3

	# kernel modules, pruned, with their own modules.dep
	for a in $VM_MODULES; do copy_module "$root" "$a"; done
	# a kmemfs.ko built by a later issue rides along when present
	for p in "$SRC_DIR/kmod/kmemfs.ko" "$BUILD_DIR/kmod/kmemfs.ko"; do
		[ -e "$p" ] || continue
		mkdir -p "$root$md/extra"
		cp "$p" "$root$md/extra/"
	done
	# kmodtest drives kmemfs.ko in the kmod-* tests (tests/vm/lib/kmod.sh)
	[ -x "$SRC_DIR/kmod/kmodtest" ] && copy_prog "$root" "$SRC_DIR/kmod/kmodtest" /usr/bin/kmodtest
	cp "$KROOT$md"/modules.builtin "$KROOT$md"/modules.builtin.modinfo \
		"$KROOT$md"/modules.order "$root$md/"
	depmod -b "$root" "$KREL" || die "depmod -b $root failed"

	# kmemfs programs from the build dir (whichever exist)
	for p in $VM_KMEMFS_PROGS; do
		[ -x "$BUILD_DIR/bin/$p" ] && copy_prog "$root" "$BUILD_DIR/bin/$p" "/usr/bin/$p"
	done
	# glibc dlopens libgcc_s for pthread_cancel (libfuse's worker threads at
	# unmount); ldd does not name it, and without it the daemon aborts on exit
	for lib in /lib/x86_64-linux-gnu/libgcc_s.so.1; do
		[ -e "$lib" ] && mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"
	done

	# guest side of the rig
	cp "$VM_DIR/guest/init" "$root/init"
	chmod 755 "$root/init"
	cp "$VM_DIR"/guest/*.sh "$root/kmemfs/"
	echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
	echo "root:x:0:" >"$root/etc/group"
	: >"$root/etc/mtab"

	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out" ||
		die "cpio failed"
}

# qemu_cmd PMEM ARGS -- the QEMU command line (DESIGN.md settings); ARGS go to the
# kernel command line after the fixed part. The NVDIMM is as large as PMEM (1G for
# the tests, 2G for the benchmarks). QEMU_EXTRA (a test's own devices) is appended.
qemu_cmd() {
	local pmem=$1 size
	shift
	size=$(stat -c %s "$pmem") || die "no NVDIMM image $pmem"
	QEMU=(qemu-system-x86_64 -accel tcg,thread=multi -cpu max -machine pc,nvdimm=on
		-smp 2 -m 1G,slots=4,maxmem=8G
		-object memory-backend-ram,id=ram0,size=1G
		-numa node,nodeid=0,cpus=0-1,memdev=ram0 -numa node,nodeid=1
		-object "memory-backend-file,id=nv1,share=on,mem-path=$pmem,size=$size,align=2M"
		-device nvdimm,memdev=nv1,id=nvdimm1,label-size=128K,node=1
		-kernel "$KROOT/boot/vmlinuz-$KREL" -initrd "$INITRD"
		-append "console=ttyS0 panic=-1 loglevel=4 $*"
		-no-reboot -nodefaults -vga none ${QEMU_EXTRA[@]+"${QEMU_EXTRA[@]}"})
}

# vm_boot_bg LOG TIMEOUT PMEM ARGS... -- start QEMU in the background under
# timeout -s KILL; the console goes to LOG. Sets VM_PID (timeout's pid).
vm_boot_bg() {
	local logf=$1 tmo=$2 pmem=$3
	shift 3
	qemu_cmd "$pmem" "$@"
	rm -f "$WORK/qemu.pid"
	timeout -s KILL "$tmo" "${QEMU[@]}" -display none -monitor none \
		-serial "file:$logf" -pidfile "$WORK/qemu.pid" </dev/null >"$logf.qemu" 2>&1 &
	VM_PID=$!
}

# vm_wait -- wait for the background QEMU; returns its status (137: killed)
vm_wait() {
	local rc=0
	# (braces: keeps bash's "Killed" job notice for a power cut off the output)
	{ wait "$VM_PID"; } 2>/dev/null || rc=$?
	VM_PID=""
	return $rc
}

# vm_boot LOG TIMEOUT PMEM ARGS... -- boot and wait for the guest to power off
vm_boot() {
	vm_boot_bg "$@"
	vm_wait
}

# vm_kill -- the power cut: SIGKILL the running QEMU (by its own pid file)
vm_kill() {
	local pid
	pid=$(cat "$WORK/qemu.pid" 2>/dev/null) || true
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	vm_wait || true
}

# vm_wait_for LOG PATTERN SECONDS -- wait until LOG has a line matching PATTERN
# (grep -E); fails early when QEMU exits or the guest reports FAIL/DONE
vm_wait_for() {
	local logf=$1 pat=$2 n=$(($3 * 5))
	while [ $n -gt 0 ]; do
		grep -qaE "$pat" "$logf" 2>/dev/null && return 0
		grep -qaE 'KMEMFS-TEST: (FAIL|DONE)' "$logf" 2>/dev/null && return 1
		kill -0 "$VM_PID" 2>/dev/null || return 1
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}
