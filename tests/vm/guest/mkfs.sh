# mkfs.sh -- guest action: format /dev/dax0.0 (a fresh namespace, all zeroes)
if run mkfs.kmemfs "$DEV"; then
	pass mkfs
else
	fail_out mkfs "mkfs.kmemfs $DEV exited $?"
fi
