// SPDX-License-Identifier: GPL-2.0
/*
 * kmemfs_main.c -- module init/exit and /dev/kmemfs: the ioctls of
 * include/kmemfs/uapi.h, their validation, attach and detach.
 *
 * One device can be attached at a time (the online-page callback is
 * system-wide and one per system anyway). While it is attached the module
 * holds a reference on itself, so it cannot be unloaded.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/memory.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/nodemask.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "kmemfs.h"

/* serialises attach, query and detach; protects kmemfs_attached */
static DEFINE_MUTEX(kmemfs_lock);
static struct kmemfs_dev *kmemfs_attached;

static void kmemfs_dev_release(struct kref *ref)
{
	struct kmemfs_dev *kdev = container_of(ref, struct kmemfs_dev, ref);

	kvfree(kdev->unit_state);
	kfree(kdev);
}

void kmemfs_dev_put(struct kmemfs_dev *kdev)
{
	kref_put(&kdev->ref, kmemfs_dev_release);
}

static bool all_zero(const __u64 *v, size_t n)
{
	while (n--)
		if (v[n])
			return false;
	return true;
}

/* find_dev -- the attached device starting at @phys_start; caller holds kmemfs_lock */
static struct kmemfs_dev *find_dev(u64 phys_start)
{
	struct kmemfs_dev *kdev = kmemfs_attached;

	return kdev && kdev->start == phys_start && !kdev->detach_pending ? kdev : NULL;
}

static int check_attach(const struct kmemfs_attach *a)
{
	if (a->version != KMEMFS_UAPI_VERSION || a->flags ||
	    !all_zero(a->reserved, ARRAY_SIZE(a->reserved)))
		return -EINVAL;
	if (a->unit_size != KMEMFS_UNIT_SIZE ||
	    memory_block_size_bytes() % KMEMFS_UNIT_SIZE)
		return -EINVAL;
	if (!a->size || !PAGE_ALIGNED(a->phys_start) || !PAGE_ALIGNED(a->size) ||
	    a->phys_start + a->size < a->phys_start ||
	    PHYS_PFN(a->phys_start + a->size - 1) > PHYS_PFN(PHYS_ADDR_MAX))
		return -EINVAL;
	if (a->nid < 0 || a->nid >= MAX_NUMNODES || !node_possible(a->nid))
		return -EINVAL;
	return 0;
}

/* attach_new -- set up a device for @a; caller holds kmemfs_lock, none attached */
static int attach_new(const struct kmemfs_attach *a, struct kmemfs_dev **out)
{
	struct kmemfs_dev *kdev;
	int rc;

	kdev = kzalloc(sizeof(*kdev), GFP_KERNEL);
	if (!kdev)
		return -ENOMEM;
	kref_init(&kdev->ref);
	init_rwsem(&kdev->map_lock);
	init_rwsem(&kdev->ops_lock);
	kdev->start = a->phys_start;
	kdev->size = a->size;
	kdev->nid = a->nid;

	rc = kmemfs_file_create(kdev);
	if (rc)
		goto out_put;
	rc = kmemfs_mem_attach(kdev);
	if (rc)
		goto out_destroy_file;
	/* dropped at detach: no unload while attached */
	__module_get(THIS_MODULE);
	kmemfs_attached = kdev;
	*out = kdev;
	pr_info("attached %#llx-%#llx (node %d): hot %#llx-%#llx, %lu units of 4 MiB\n",
		(u64)kdev->start, (u64)(kdev->start + kdev->size - 1), kdev->nid,
		(u64)kdev->hot_start, (u64)kdev->hot_end, kdev->nr_units);
	return 0;

out_destroy_file:
	kmemfs_file_destroy(kdev);
out_put:
	kmemfs_dev_put(kdev);
	return rc;
}

static long ioctl_attach(struct kmemfs_attach __user *uarg)
{
	struct kmemfs_dev *kdev;
	struct kmemfs_attach a;
	struct file *file;
	u64 block;
	int rc, fd;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	rc = check_attach(&a);
	if (rc)
		return rc;

	mutex_lock(&kmemfs_lock);
	kdev = kmemfs_attached;
	if (kdev && kdev->detach_pending) {
		rc = -EBUSY;
		goto out_unlock;
	}
	if (kdev) {
		if (kdev->start != a.phys_start || kdev->size != a.size ||
		    kdev->nid != a.nid) {
			pr_info("%#llx-%#llx is attached; one device at a time\n",
				(u64)kdev->start, (u64)(kdev->start + kdev->size - 1));
			rc = -EBUSY;
			goto out_unlock;
		}
		a.reattached = 1;
	} else {
		rc = attach_new(&a, &kdev);
		if (rc)
			goto out_unlock;
		a.reattached = 0;
	}

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		rc = fd;
		goto out_unlock;
	}
	file = kmemfs_file_open(kdev);
	if (IS_ERR(file)) {
		rc = PTR_ERR(file);
		goto out_put_fd;
	}

	block = memory_block_size_bytes();
	a.hot_start = kdev->hot_start;
	a.hot_end = kdev->hot_end;
	a.block_size = block;
	a.first_block = kdev->hot_start / block;
	a.nr_blocks = (kdev->hot_end - kdev->hot_start) / block;
	a.fd = fd;
	if (copy_to_user(uarg, &a, sizeof(a))) {
		/* stays attached: the caller can attach again and be told so */
		rc = -EFAULT;
		goto out_fput;
	}
	fd_install(fd, file);
	mutex_unlock(&kmemfs_lock);
	return 0;

out_fput:
	fput(file);
out_put_fd:
	put_unused_fd(fd);
out_unlock:
	mutex_unlock(&kmemfs_lock);
	return rc;
}

static long ioctl_range(struct kmemfs_range __user *uarg, bool lend)
{
	struct kmemfs_dev *kdev;
	struct kmemfs_range r;
	int rc;

	if (copy_from_user(&r, uarg, sizeof(r)))
		return -EFAULT;
	if (!all_zero(r.reserved, ARRAY_SIZE(r.reserved)))
		return -EINVAL;

	/* not under kmemfs_lock: see the lock order in kmemfs.h */
	mutex_lock(&kmemfs_lock);
	kdev = find_dev(r.phys_start);
	if (kdev) {
		kref_get(&kdev->ref); /* outlives up_read, whatever detach does */
		down_read(&kdev->ops_lock); /* detach waits for us */
	}
	mutex_unlock(&kmemfs_lock);
	if (!kdev)
		return -ENODEV;
	if (lend)
		rc = kmemfs_mem_lend(kdev, r.dev_offset, r.len, &r.done);
	else
		rc = kmemfs_mem_reclaim(kdev, r.dev_offset, r.len, &r.done);
	up_read(&kdev->ops_lock);
	kmemfs_dev_put(kdev);

	if (put_user(r.done, &uarg->done))
		return -EFAULT;
	return rc;
}

/* fill_bitmap -- bit i of a kernel u64 array = unit i lent; caller holds map_lock */
static void fill_bitmap(struct kmemfs_dev *kdev, u64 *words, unsigned long nbits)
{
	unsigned long i;

	for (i = 0; i < nbits; i++) {
		u8 s = kdev->unit_state[i];

		if (s == KMEMFS_UNIT_LENT || s == KMEMFS_UNIT_LENT_OFFLINE ||
		    s == KMEMFS_UNIT_LENDING || s == KMEMFS_UNIT_RECLAIMING)
			words[i / 64] |= 1ULL << (i % 64);
	}
}

static long ioctl_query(struct kmemfs_query __user *uarg)
{
	struct kmemfs_query q;
	struct kmemfs_dev *kdev;
	unsigned long nbits = 0;
	u64 *words = NULL;
	int rc = 0;

	if (copy_from_user(&q, uarg, sizeof(q)))
		return -EFAULT;
	if (!all_zero(q.reserved, ARRAY_SIZE(q.reserved)) || q.bitmap_bits % 64 ||
	    (q.bitmap_bits && !q.bitmap_addr))
		return -EINVAL;

	mutex_lock(&kmemfs_lock);
	kdev = find_dev(q.phys_start);
	if (!kdev) {
		rc = -ENODEV;
		goto out_unlock;
	}
	nbits = min_t(u64, q.bitmap_bits, kdev->nr_units);
	if (nbits) {
		words = kvcalloc(BITS_TO_U64(nbits), sizeof(u64), GFP_KERNEL);
		if (!words) {
			rc = -ENOMEM;
			goto out_unlock;
		}
	}
	down_read(&kdev->map_lock);
	if (words)
		fill_bitmap(kdev, words, nbits);
	q.nr_units = kdev->nr_units;
	q.units_lent = kdev->nr_state[KMEMFS_UNIT_LENT] +
		       kdev->nr_state[KMEMFS_UNIT_LENT_OFFLINE] +
		       kdev->nr_state[KMEMFS_UNIT_LENDING] +
		       kdev->nr_state[KMEMFS_UNIT_RECLAIMING];
	q.units_held = kdev->nr_state[KMEMFS_UNIT_HELD] +
		       kdev->nr_state[KMEMFS_UNIT_HELD_FRESH];
	q.units_offline = kdev->nr_state[KMEMFS_UNIT_OFFLINE];
	up_read(&kdev->map_lock);
	q.lend_events = atomic64_read(&kdev->lend_events);
	q.reclaim_events = atomic64_read(&kdev->reclaim_events);
	q.reclaim_failures = atomic64_read(&kdev->reclaim_failures);
	q.lend_ns = atomic64_read(&kdev->lend_ns);
	q.reclaim_ns = atomic64_read(&kdev->reclaim_ns);
out_unlock:
	mutex_unlock(&kmemfs_lock);

	if (!rc && words &&
	    copy_to_user(u64_to_user_ptr(q.bitmap_addr), words,
			 BITS_TO_U64(nbits) * sizeof(u64)))
		rc = -EFAULT;
	kvfree(words);
	if (!rc && copy_to_user(uarg, &q, sizeof(q)))
		rc = -EFAULT;
	return rc;
}

static long ioctl_detach(struct kmemfs_detach __user *uarg)
{
	struct kmemfs_detach d;
	struct kmemfs_dev *kdev;
	int rc;

	if (copy_from_user(&d, uarg, sizeof(d)))
		return -EFAULT;
	if (!all_zero(d.reserved, ARRAY_SIZE(d.reserved)))
		return -EINVAL;

	mutex_lock(&kmemfs_lock);
	kdev = find_dev(d.phys_start);
	if (!kdev || kdev->size != d.size) {
		mutex_unlock(&kmemfs_lock);
		return -ENODEV;
	}
	/*
	 * Wait for LENDs and RECLAIMs in flight without kmemfs_lock: a
	 * RECLAIM may wait on a folio whose request needs a LEND, QUERY or
	 * ATTACH to finish. Later ones find no device meanwhile.
	 */
	kdev->detach_pending = true;
	mutex_unlock(&kmemfs_lock);
	rc = down_write_killable(&kdev->ops_lock);
	if (!rc)
		up_write(&kdev->ops_lock);

	mutex_lock(&kmemfs_lock);
	kdev->detach_pending = false;
	if (!rc)
		rc = kmemfs_mem_detach(kdev);
	if (rc) {
		mutex_unlock(&kmemfs_lock);
		return rc == -EINTR ? -EBUSY : rc;
	}
	kmemfs_attached = NULL;
	pr_info("detached %#llx-%#llx\n", (u64)kdev->start,
		(u64)(kdev->start + kdev->size - 1));
	kmemfs_file_destroy(kdev);
	kmemfs_dev_put(kdev);
	module_put(THIS_MODULE);
	mutex_unlock(&kmemfs_lock);
	return 0;
}

static long kmemfs_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	switch (cmd) {
	case KMEMFS_IOC_ATTACH:
		return ioctl_attach(uarg);
	case KMEMFS_IOC_LEND:
		return ioctl_range(uarg, true);
	case KMEMFS_IOC_RECLAIM:
		return ioctl_range(uarg, false);
	case KMEMFS_IOC_QUERY:
		return ioctl_query(uarg);
	case KMEMFS_IOC_DETACH:
		return ioctl_detach(uarg);
	}
	return -ENOTTY;
}

static int kmemfs_ctl_open(struct inode *inode, struct file *file)
{
	return capable(CAP_SYS_ADMIN) ? 0 : -EPERM;
}

static const struct file_operations kmemfs_ctl_fops = {
	.owner = THIS_MODULE,
	.open = kmemfs_ctl_open,
	.unlocked_ioctl = kmemfs_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice kmemfs_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = KMEMFS_DEV_NAME,
	.fops = &kmemfs_ctl_fops,
	.mode = 0600,
};

static int __init kmemfs_init(void)
{
	int rc;

	rc = kmemfs_file_init();
	if (rc)
		return rc;
	rc = misc_register(&kmemfs_misc);
	if (rc)
		goto out_file_exit;
	return 0;

out_file_exit:
	kmemfs_file_exit();
	return rc;
}

static void __exit kmemfs_exit(void)
{
	/* the module reference taken at attach makes this impossible */
	WARN_ON_ONCE(kmemfs_attached);
	misc_deregister(&kmemfs_misc);
	kmemfs_file_exit();
}

module_init(kmemfs_init);
module_exit(kmemfs_exit);

MODULE_DESCRIPTION("kmemfs: lend a persistent-memory filesystem's free units to the kernel as RAM");
MODULE_AUTHOR("kmemfs developers");
MODULE_LICENSE("GPL");
