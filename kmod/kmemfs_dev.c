// SPDX-License-Identifier: GPL-2.0
/*
 * kmemfs_dev.c -- the device file handed to the daemon: a regular file on an
 * internal pseudo mount, i_size = device size, that libpmemobj opens as
 * /proc/self/fd/N. mmap (MAP_SYNC) maps only pages the filesystem holds;
 * a lent page is SIGBUS. read/write serve pmemobj's header probe.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "kmemfs.h"

#define KMEMFS_FS_MAGIC 0x6b6d6673 /* "kmfs" */

static struct vfsmount *kmemfs_mnt;

/* the inode holds a reference on its device until it is evicted */
static void kmemfs_evict_inode(struct inode *inode)
{
	struct kmemfs_dev *kdev = inode->i_private;

	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	if (kdev)
		kmemfs_dev_put(kdev);
}

static const struct super_operations kmemfs_sops = {
	.statfs = simple_statfs,
	.drop_inode = generic_delete_inode,
	.evict_inode = kmemfs_evict_inode,
};

static int kmemfs_init_fs_context(struct fs_context *fc)
{
	struct pseudo_fs_context *ctx = init_pseudo(fc, KMEMFS_FS_MAGIC);

	if (!ctx)
		return -ENOMEM;
	ctx->ops = &kmemfs_sops;
	return 0;
}

/* no .owner: the internal mount must not pin the module */
static struct file_system_type kmemfs_fs_type = {
	.name = "kmemfs_dev",
	.init_fs_context = kmemfs_init_fs_context,
	.kill_sb = kill_anon_super,
};

static vm_fault_t kmemfs_fault(struct vm_fault *vmf)
{
	struct kmemfs_dev *kdev = file_inode(vmf->vma->vm_file)->i_private;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	down_read(&kdev->map_lock);
	if (kmemfs_mem_page_held(kdev, vmf->pgoff))
		ret = vmf_insert_pfn(vmf->vma, vmf->address,
				     PHYS_PFN(kdev->start) + vmf->pgoff);
	up_read(&kdev->map_lock);
	return ret;
}

static const struct vm_operations_struct kmemfs_vm_ops = {
	.fault = kmemfs_fault,
};

static int kmemfs_mmap(struct file *file, struct vm_area_struct *vma)
{
	/* VM_PFNMAP cannot be copy-on-write */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	/* vm_flags became read-only behind helpers in 6.3 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
#else
	vma->vm_flags |= VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
#endif
	vma->vm_ops = &kmemfs_vm_ops;
	return 0;
}

/*
 * rw_page -- copy one page fragment between @buf and the device; -EIO if
 * the page is not the filesystem's. Never touches user memory under map_lock.
 */
static int rw_page(struct kmemfs_dev *kdev, loff_t pos, void *buf, size_t n,
		   bool write)
{
	int rc = 0;
	void *addr;

	down_read(&kdev->map_lock);
	if (!kmemfs_mem_page_held(kdev, pos >> PAGE_SHIFT)) {
		rc = kdev->gone ? -ENXIO : -EIO;
		goto out;
	}
	addr = kmemfs_mem_kaddr(kdev, pos >> PAGE_SHIFT) + offset_in_page(pos);
	if (write) {
#ifdef CONFIG_ARCH_HAS_UACCESS_FLUSHCACHE
		memcpy_flushcache(addr, buf, n);
		wmb();
#else
		memcpy(addr, buf, n);
#endif
	} else {
		memcpy(buf, addr, n);
	}
out:
	up_read(&kdev->map_lock);
	return rc;
}

static ssize_t kmemfs_rw_iter(struct kiocb *iocb, struct iov_iter *iter, bool write)
{
	struct kmemfs_dev *kdev = file_inode(iocb->ki_filp)->i_private;
	loff_t pos = iocb->ki_pos;
	size_t count, done = 0;
	void *buf;
	int rc = 0;

	if (pos < 0)
		return -EINVAL;
	if (pos >= kdev->size)
		return write ? -ENOSPC : 0;
	count = min_t(u64, iov_iter_count(iter), kdev->size - pos);
	buf = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	while (done < count) {
		size_t n = min_t(size_t, PAGE_SIZE - offset_in_page(pos), count - done);

		if (write && copy_from_iter(buf, n, iter) != n) {
			rc = -EFAULT;
			break;
		}
		rc = rw_page(kdev, pos, buf, n, write);
		if (rc)
			break;
		if (!write && copy_to_iter(buf, n, iter) != n) {
			rc = -EFAULT;
			break;
		}
		pos += n;
		done += n;
	}
	kfree(buf);
	iocb->ki_pos = pos;
	return done ? done : rc;
}

static ssize_t kmemfs_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	return kmemfs_rw_iter(iocb, to, false);
}

static ssize_t kmemfs_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	return kmemfs_rw_iter(iocb, from, true);
}

/* the file is always fully allocated: mode 0 inside it succeeds (posix_fallocate) */
static long kmemfs_fallocate(struct file *file, int mode, loff_t off, loff_t len)
{
	struct kmemfs_dev *kdev = file_inode(file)->i_private;

	if (mode)
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0 || off > kdev->size || len > kdev->size - off)
		return -ENOSPC;
	return 0;
}

/* writes and MAP_SYNC stores are persistent when they return: nothing to do */
static int kmemfs_fsync(struct file *file, loff_t start, loff_t end, int datasync)
{
	return 0;
}

/* a reopen through /proc/self/fd/N: only while attached */
static int kmemfs_open(struct inode *inode, struct file *file)
{
	struct kmemfs_dev *kdev = inode->i_private;

	return READ_ONCE(kdev->gone) ? -ENXIO : 0;
}

static const struct file_operations kmemfs_file_fops = {
	.owner = THIS_MODULE,
	.open = kmemfs_open,
	.llseek = generic_file_llseek,
	.read_iter = kmemfs_read_iter,
	.write_iter = kmemfs_write_iter,
	.mmap = kmemfs_mmap,
	/* MAP_SYNC support became a bit of fop_flags in 6.12 */
#ifdef FOP_MMAP_SYNC
	.fop_flags = FOP_MMAP_SYNC,
#else
	.mmap_supported_flags = MAP_SYNC,
#endif
	.fallocate = kmemfs_fallocate,
	.fsync = kmemfs_fsync,
};

/* kmemfs_file_create -- the device's inode, referenced by kdev until destroy */
int kmemfs_file_create(struct kmemfs_dev *kdev)
{
	struct inode *inode = new_inode(kmemfs_mnt->mnt_sb);

	if (!inode)
		return -ENOMEM;
	inode->i_ino = get_next_ino();
	inode->i_mode = S_IFREG | 0600;
	inode->i_flags |= S_NOATIME | S_NOCMTIME;
	inode->i_fop = &kmemfs_file_fops;
	i_size_write(inode, kdev->size);
	kref_get(&kdev->ref);
	inode->i_private = kdev;
	kdev->inode = inode;
	return 0;
}

/* kmemfs_file_open -- a new O_RDWR file on the device's inode */
struct file *kmemfs_file_open(struct kmemfs_dev *kdev)
{
	struct file *file;

	ihold(kdev->inode);
	/* alloc_file_pseudo takes no module reference, but its fput drops one */
	__module_get(THIS_MODULE);
	file = alloc_file_pseudo(kdev->inode, kmemfs_mnt, "kmemfs",
				 O_RDWR | O_LARGEFILE, &kmemfs_file_fops);
	if (IS_ERR(file)) {
		module_put(THIS_MODULE);
		iput(kdev->inode);
		return file;
	}
	/* a pseudo file is a stream by default; this one is a regular file */
	file->f_mode |= FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE;
	return file;
}

/* kmemfs_file_revoke -- zap every user mapping of [off, off + len) */
void kmemfs_file_revoke(struct kmemfs_dev *kdev, u64 off, u64 len)
{
	unmap_mapping_range(kdev->inode->i_mapping, off, len, 1);
}

/* kmemfs_file_destroy -- drop kdev's inode reference (detached: files are dead) */
void kmemfs_file_destroy(struct kmemfs_dev *kdev)
{
	iput(kdev->inode);
	kdev->inode = NULL;
}

int kmemfs_file_init(void)
{
	kmemfs_mnt = kern_mount(&kmemfs_fs_type);
	return PTR_ERR_OR_ZERO(kmemfs_mnt);
}

void kmemfs_file_exit(void)
{
	kern_unmount(kmemfs_mnt);
}
