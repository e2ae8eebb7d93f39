/*
 * nsexercise -- random namespace operations checked against a model of the
 * tree kept in memory: create, mkdir, unlink, rmdir, link, symlink and
 * rename (plain, NOREPLACE, EXCHANGE, WHITEOUT) with names that collide
 * often, plus some of the full 255 bytes. The model says what each call must
 * do, down to the errno (EEXIST, ENOENT, ENOTEMPTY, ENOTDIR, EISDIR, EINVAL);
 * every so often directories are listed and every entry is stat'ed: the set
 * of names, each type, link count, symlink target, and that hard links share
 * an inode number must all agree with the model. Extended attributes too:
 * setxattr with and without XATTR_CREATE/XATTR_REPLACE, getxattr, removexattr
 * and listxattr on files and directories, values of up to 3000 bytes, kept
 * with the inode (so hard links share them and renames keep them).
 *
 * Usage: nsexercise [-s SEED] [-n OPS] DIR     (DIR must be empty)
 * Exit: 0 passed; 1 a check failed (seed and last operations printed);
 * 2 usage or setup error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define EXERCISE_NAME "nsexercise"
#include "exercise.h"

#define MAX_NODES 4096
#define MAX_ENTS 512 /* per directory */
#define NAME_MAX_LEN 255
#define NXATTR 6      /* user.x0 .. user.x5 */
#define XATTR_VAL_MAX 3000

enum kind { K_FREE, K_FILE, K_DIR, K_LINK, K_WHITEOUT /* char device 0:0 */ };

struct entry {
	char name[NAME_MAX_LEN + 1];
	int node;
};

struct node {
	enum kind kind;
	int nlink;        /* what st_nlink must say */
	int parent;       /* directories: the one entry naming them */
	ino_t ino;        /* from the first stat; hard links must agree */
	char target[64];  /* symlinks */
	struct entry *ents; /* directories */
	int nents;
	unsigned char *xval[NXATTR]; /* NULL: not set */
	size_t xlen[NXATTR];
};

static struct node nodes[MAX_NODES];
static char root[4096];

/* ---- the model -------------------------------------------------------------- */

static int new_node(enum kind k)
{
	for (int i = 1; i < MAX_NODES; i++) {
		if (nodes[i].kind == K_FREE) {
			nodes[i] = (struct node){ .kind = k, .nlink = k == K_DIR ? 2 : 1 };
			if (k == K_DIR && !(nodes[i].ents = calloc(MAX_ENTS, sizeof(struct entry))))
				die("out of memory");
			return i;
		}
	}
	return -1;
}

static void free_node(int n)
{
	for (int i = 0; i < NXATTR; i++)
		free(nodes[n].xval[i]);
	free(nodes[n].ents);
	nodes[n] = (struct node){ .kind = K_FREE };
}

static int find(int dir, const char *name)
{
	for (int i = 0; i < nodes[dir].nents; i++)
		if (!strcmp(nodes[dir].ents[i].name, name))
			return i;
	return -1;
}

static void add_entry(int dir, const char *name, int n)
{
	struct node *d = &nodes[dir];

	snprintf(d->ents[d->nents].name, sizeof(d->ents[0].name), "%s", name);
	d->ents[d->nents++].node = n;
	if (nodes[n].kind == K_DIR) {
		nodes[n].parent = dir;
		d->nlink++;
	}
}

static void remove_entry(int dir, int idx)
{
	struct node *d = &nodes[dir];

	if (nodes[d->ents[idx].node].kind == K_DIR)
		d->nlink--;
	d->ents[idx] = d->ents[--d->nents];
}

/* the path of directory D (below root), into BUF */
static void dir_path(int d, char *buf, size_t size)
{
	int chain[MAX_NODES], n = 0;
	size_t len = (size_t)snprintf(buf, size, "%s", root);

	for (int x = d; x != 0; x = nodes[x].parent)
		chain[n++] = x;
	while (n-- > 0) {
		int x = chain[n], p = nodes[x].parent;
		const char *name = NULL;

		for (int i = 0; i < nodes[p].nents; i++)
			if (nodes[p].ents[i].node == x)
				name = nodes[p].ents[i].name;
		len += (size_t)snprintf(buf + len, size - len, "/%s", name);
	}
}

/* the path of NAME in DIR; false when it would be too long for PATH_MAX,
 * which deep trees of long names reach (the operation is then skipped) */
static bool entry_path(int dir, const char *name, char *buf, size_t size)
{
	char d[8192];

	dir_path(dir, d, sizeof(d));
	snprintf(buf, size, "%s/%s", d, name);
	return strlen(buf) < 3500;
}

/* is A the directory D or above it? */
static bool is_ancestor(int a, int d)
{
	for (int x = d;; x = nodes[x].parent) {
		if (x == a)
			return true;
		if (x == 0)
			return false;
	}
}

static int random_dir(void)
{
	int tries = 0, n;

	do
		n = (int)below(MAX_NODES);
	while (nodes[n].kind != K_DIR && ++tries < 64);
	return nodes[n].kind == K_DIR ? n : 0;
}

/* a name: mostly from a small set so that they collide, some long or odd */
static void random_name(char *buf)
{
	switch (below(10)) {
	case 0: { /* up to 255 bytes of anything but '/' and NUL */
		size_t len = below(2) ? NAME_MAX_LEN : 1 + below(NAME_MAX_LEN);
		for (size_t i = 0; i < len; i++) {
			char c;
			do
				c = (char)(1 + below(255));
			while (c == '/');
			buf[i] = c;
		}
		buf[len] = '\0';
		if (!strcmp(buf, ".") || !strcmp(buf, ".."))
			buf[0] = 'x';
		break;
	}
	default:
		sprintf(buf, "n%d", (int)below(24));
	}
}

/* an existing entry of DIR, or (sometimes) a name that is not there */
static const char *pick(int dir, char *buf)
{
	if (nodes[dir].nents && below(5)) {
		snprintf(buf, NAME_MAX_LEN + 1, "%s", nodes[dir].ents[below(nodes[dir].nents)].name);
		return buf;
	}
	random_name(buf);
	return buf;
}

/* ---- checks ------------------------------------------------------------------ */

static void expect(int rc, int want_errno, const char *what)
{
	int got = rc == 0 ? 0 : errno;

	if (got != want_errno)
		die("%s: got %s, want %s", what, got ? strerror(got) : "success",
		    want_errno ? strerror(want_errno) : "success");
}

/* the user.* names listxattr gives and every value must be the model's */
static void check_xattrs(const struct node *n, const char *path)
{
	char list[1024], name[16];
	unsigned char val[XATTR_VAL_MAX];
	bool listed[NXATTR] = { false };
	ssize_t len = llistxattr(path, list, sizeof(list));

	if (len < 0)
		die("listxattr %.60s...: %s", path, strerror(errno));
	for (ssize_t off = 0; off < len; off += (ssize_t)strlen(list + off) + 1) {
		int i;
		if (strncmp(list + off, "user.", 5))
			continue; /* security.* and the like are not ours */
		if (sscanf(list + off, "user.x%d", &i) != 1 || i < 0 || i >= NXATTR || !n->xval[i])
			die("listxattr %.60s... names '%s', which is not set", path, list + off);
		listed[i] = true;
	}
	for (int i = 0; i < NXATTR; i++) {
		if (!n->xval[i] != !listed[i])
			die("listxattr %.60s... leaves out user.x%d", path, i);
		if (!n->xval[i])
			continue;
		snprintf(name, sizeof(name), "user.x%d", i);
		len = lgetxattr(path, name, val, sizeof(val));
		if (len != (ssize_t)n->xlen[i] || memcmp(val, n->xval[i], n->xlen[i]))
			die("getxattr %s of %.60s...: %zd bytes%s, want %zu", name, path, len,
			    len == (ssize_t)n->xlen[i] ? " that differ" : "", n->xlen[i]);
	}
}

static void check_dir(int d)
{
	char path[8192], p2[8192 + 300];
	int seen[MAX_ENTS] = { 0 }, count = 0;
	struct dirent *de;
	struct stat st;
	DIR *dh;

	dir_path(d, path, sizeof(path));
	if (lstat(path, &st) != 0)
		die("lstat %s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode) || (int)st.st_nlink != nodes[d].nlink)
		die("%s: nlink %d, want %d", path, (int)st.st_nlink, nodes[d].nlink);
	if (!(dh = opendir(path)))
		die("opendir %s: %s", path, strerror(errno));
	while ((de = readdir(dh))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int i = find(d, de->d_name);
		if (i < 0)
			die("readdir of %s lists '%.40s', which should not exist", path, de->d_name);
		if (seen[i]++)
			die("readdir of %s lists '%.40s' twice", path, de->d_name);
		count++;
	}
	closedir(dh);
	if (count != nodes[d].nents)
		die("readdir of %s lists %d entries, want %d", path, count, nodes[d].nents);
	for (int i = 0; i < nodes[d].nents; i++) {
		struct node *n = &nodes[nodes[d].ents[i].node];
		char target[128];

		snprintf(p2, sizeof(p2), "%s/%s", path, nodes[d].ents[i].name);
		if (lstat(p2, &st) != 0)
			die("lstat %.60s...: %s", p2, strerror(errno));
		if ((n->kind == K_FILE && !S_ISREG(st.st_mode)) ||
		    (n->kind == K_DIR && !S_ISDIR(st.st_mode)) ||
		    (n->kind == K_LINK && !S_ISLNK(st.st_mode)) ||
		    (n->kind == K_WHITEOUT && (!S_ISCHR(st.st_mode) || st.st_rdev != 0)))
			die("%.60s...: wrong type (mode 0%o)", p2, st.st_mode);
		if ((int)st.st_nlink != n->nlink)
			die("%.60s...: nlink %d, want %d", p2, (int)st.st_nlink, n->nlink);
		if (n->ino == 0)
			n->ino = st.st_ino;
		else if (n->ino != st.st_ino)
			die("%.60s...: inode %ju, but another name of it has %ju", p2,
			    (uintmax_t)st.st_ino, (uintmax_t)n->ino);
		if (n->kind == K_LINK) {
			ssize_t l = readlink(p2, target, sizeof(target) - 1);
			if (l < 0 || (target[l] = '\0', strcmp(target, n->target)))
				die("%.60s...: readlink gave '%s', want '%s'", p2,
				    l < 0 ? strerror(errno) : target, n->target);
		} else {
			check_xattrs(n, p2);
		}
	}
}

static void check_all(void)
{
	for (int i = 0; i < MAX_NODES; i++)
		if (nodes[i].kind == K_DIR)
			check_dir(i);
}

/* ---- operations -------------------------------------------------------------- */

static void op_create(enum kind k)
{
	int d = random_dir(), n;
	char name[NAME_MAX_LEN + 1], path[8192 + 300];
	int want, rc;

	pick(d, name);
	if (!entry_path(d, name, path, sizeof(path)))
		return;
	want = find(d, name) >= 0 ? EEXIST : 0;
	if (!want && nodes[d].nents >= MAX_ENTS - 1)
		return;
	bool tmpfile = k == K_FILE && below(4) == 0;
	logop("%s %.80s", k == K_DIR ? "mkdir" : tmpfile ? "O_TMPFILE+linkat" :
	      k == K_FILE ? "create" : "symlink", path);
	if (k == K_DIR) {
		rc = mkdir(path, 0755);
	} else if (tmpfile) {
		/* O_TMPFILE in the directory, then linkat names it */
		char dir[sizeof(path)], proc[64];
		int fd;

		snprintf(dir, sizeof(dir), "%s", path);
		*strrchr(dir, '/') = '\0';
		fd = open(dir, O_TMPFILE | O_WRONLY, 0644);
		if (fd < 0)
			die("open O_TMPFILE in %.60s...: %s", dir, strerror(errno));
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		rc = linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
		if (rc != 0) {
			int e = errno;
			close(fd);
			errno = e;
		} else {
			rc = close(fd);
		}
	} else if (k == K_FILE) {
		int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		rc = fd < 0 ? -1 : close(fd);
	} else {
		char target[64];
		snprintf(target, sizeof(target), "t%" PRIu64, op_no);
		rc = symlink(target, path);
		if (rc == 0 && want == 0) {
			if ((n = new_node(K_LINK)) < 0)
				die("model full");
			snprintf(nodes[n].target, sizeof(nodes[n].target), "%s", target);
			add_entry(d, name, n);
		}
		expect(rc, want, "symlink");
		return;
	}
	expect(rc, want, k == K_DIR ? "mkdir" : "create");
	if (rc == 0) {
		if ((n = new_node(k)) < 0)
			die("model full");
		add_entry(d, name, n);
	}
}

static void op_unlink(bool dir_op)
{
	int d = random_dir(), i, want = 0;
	char name[NAME_MAX_LEN + 1], path[8192 + 300];

	pick(d, name);
	if (!entry_path(d, name, path, sizeof(path)))
		return;
	i = find(d, name);
	if (i < 0) {
		want = ENOENT;
	} else {
		struct node *n = &nodes[nodes[d].ents[i].node];
		if (dir_op && n->kind != K_DIR)
			want = ENOTDIR;
		else if (dir_op && n->nents)
			want = ENOTEMPTY;
		else if (!dir_op && n->kind == K_DIR)
			want = EISDIR;
	}
	logop("%s %.80s", dir_op ? "rmdir" : "unlink", path);
	expect(dir_op ? rmdir(path) : unlink(path), want, dir_op ? "rmdir" : "unlink");
	if (want == 0) {
		int n = nodes[d].ents[i].node;
		remove_entry(d, i);
		if (nodes[n].kind == K_DIR || --nodes[n].nlink == 0)
			free_node(n);
	}
}

/* a source and a target for link and rename: directory, name and path each */
struct pair {
	int sd, dd;
	char sname[NAME_MAX_LEN + 1], dname[NAME_MAX_LEN + 1];
	char spath[8192 + 300], dpath[8192 + 300];
};

static bool pick_pair(struct pair *p)
{
	p->sd = random_dir();
	p->dd = random_dir();
	pick(p->sd, p->sname);
	pick(p->dd, p->dname);
	return entry_path(p->sd, p->sname, p->spath, sizeof(p->spath)) &&
	       entry_path(p->dd, p->dname, p->dpath, sizeof(p->dpath));
}

static void op_link(void)
{
	struct pair p;
	int si, want = 0;

	if (!pick_pair(&p))
		return;
	si = find(p.sd, p.sname);
	if (si < 0)
		want = ENOENT;
	else if (find(p.dd, p.dname) >= 0)
		want = EEXIST; /* the new name is looked up before vfs_link */
	else if (nodes[nodes[p.sd].ents[si].node].kind == K_DIR)
		want = EPERM;
	if (!want && nodes[p.dd].nents >= MAX_ENTS - 1)
		return;
	logop("link %.80s -> %.80s", p.spath, p.dpath);
	expect(link(p.spath, p.dpath), want, "link");
	if (want == 0) {
		int n = nodes[p.sd].ents[si].node;
		add_entry(p.dd, p.dname, n);
		nodes[n].nlink++;
	}
}

static void op_rename(void)
{
	static const unsigned flag_set[] = { 0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE,
					     RENAME_WHITEOUT, RENAME_WHITEOUT | RENAME_NOREPLACE };
	unsigned flags = flag_set[below(6)];
	struct pair p;
	int si, di, want = 0;

	if (!pick_pair(&p))
		return;
	si = find(p.sd, p.sname);
	di = find(p.dd, p.dname);
	int sn = si >= 0 ? nodes[p.sd].ents[si].node : -1;
	int dn = di >= 0 ? nodes[p.dd].ents[di].node : -1;

	/* in the order the kernel checks (do_renameat2, then vfs_rename) */
	if (si < 0)
		want = ENOENT;
	else if ((flags & RENAME_NOREPLACE) && di >= 0)
		want = EEXIST; /* even for another name of the same file */
	else if (flags == RENAME_EXCHANGE && di < 0)
		want = ENOENT;
	else if (sn != dn && nodes[sn].kind == K_DIR && is_ancestor(sn, p.dd))
		want = EINVAL; /* into itself */
	else if (sn != dn && di >= 0 && nodes[dn].kind == K_DIR && is_ancestor(dn, p.sd))
		want = flags == RENAME_EXCHANGE ? EINVAL : ENOTEMPTY; /* holds the source */
	else if (sn == dn || flags == RENAME_EXCHANGE)
		want = 0;
	else if (di >= 0 && nodes[sn].kind == K_DIR && nodes[dn].kind != K_DIR)
		want = ENOTDIR;
	else if (di >= 0 && nodes[sn].kind != K_DIR && nodes[dn].kind == K_DIR)
		want = EISDIR;
	else if (di >= 0 && nodes[dn].kind == K_DIR && nodes[dn].nents)
		want = ENOTEMPTY;
	if (!want && di < 0 && nodes[p.dd].nents >= MAX_ENTS - 1)
		return;
	logop("rename%s%s%s %.80s -> %.80s", flags & RENAME_EXCHANGE ? " exchange" : "",
	      flags & RENAME_NOREPLACE ? " noreplace" : "",
	      flags & RENAME_WHITEOUT ? " whiteout" : "", p.spath, p.dpath);
	expect(renameat2(AT_FDCWD, p.spath, AT_FDCWD, p.dpath, flags), want, "rename");
	if (want || sn == dn)
		return;
	if (flags == RENAME_EXCHANGE) {
		/* swap what the two entries name, keeping parents and link counts right */
		nodes[p.sd].ents[si].node = dn;
		nodes[p.dd].ents[di].node = sn;
		if (nodes[sn].kind == K_DIR) {
			nodes[p.sd].nlink--;
			nodes[p.dd].nlink++;
			nodes[sn].parent = p.dd;
		}
		if (nodes[dn].kind == K_DIR) {
			nodes[p.dd].nlink--;
			nodes[p.sd].nlink++;
			nodes[dn].parent = p.sd;
		}
		return;
	}
	if (di >= 0) { /* the replaced entry goes */
		remove_entry(p.dd, di);
		if (nodes[dn].kind == K_DIR || --nodes[dn].nlink == 0)
			free_node(dn);
		si = find(p.sd, p.sname); /* remove_entry moved entries around */
	}
	remove_entry(p.sd, si);
	add_entry(p.dd, p.dname, sn);
	if (flags & RENAME_WHITEOUT) { /* the old name now names a whiteout */
		int w = new_node(K_WHITEOUT);
		if (w < 0)
			die("model full");
		add_entry(p.sd, p.sname, w);
	}
}

/* setxattr, getxattr, removexattr or listxattr on an entry's inode */
static void op_xattr(void)
{
	int d = random_dir(), i = (int)below(NXATTR), want = 0, rc;
	char ename[NAME_MAX_LEN + 1], path[8192 + 300], name[16];
	unsigned char val[XATTR_VAL_MAX];
	struct node *n;

	if (nodes[d].nents == 0)
		return;
	snprintf(ename, sizeof(ename), "%s", nodes[d].ents[below(nodes[d].nents)].name);
	if (!entry_path(d, ename, path, sizeof(path)))
		return;
	n = &nodes[nodes[d].ents[find(d, ename)].node];
	if (n->kind == K_LINK || n->kind == K_WHITEOUT)
		return; /* user.* is for files and directories only */
	snprintf(name, sizeof(name), "user.x%d", i);
	switch (below(4)) {
	case 0:
	case 1: { /* set, with a flag one time in three each */
		static const int flag_set[] = { 0, XATTR_CREATE, XATTR_REPLACE };
		int flags = flag_set[below(3)];
		size_t len = below(4) ? below(64) : below(XATTR_VAL_MAX + 1);

		for (size_t k = 0; k < len; k++)
			val[k] = (unsigned char)rnd();
		if (flags == XATTR_CREATE && n->xval[i])
			want = EEXIST;
		else if (flags == XATTR_REPLACE && !n->xval[i])
			want = ENODATA;
		logop("setxattr%s %s=%zu bytes %.80s", flags == XATTR_CREATE ? " create" :
		      flags == XATTR_REPLACE ? " replace" : "", name, len, path);
		expect(lsetxattr(path, name, val, len, flags), want, "setxattr");
		if (want == 0) {
			free(n->xval[i]);
			if (!(n->xval[i] = malloc(len ? len : 1)))
				die("out of memory");
			memcpy(n->xval[i], val, len);
			n->xlen[i] = len;
		}
		break;
	}
	case 2: /* remove */
		want = n->xval[i] ? 0 : ENODATA;
		logop("removexattr %s %.80s", name, path);
		expect(lremovexattr(path, name), want, "removexattr");
		if (want == 0) {
			free(n->xval[i]);
			n->xval[i] = NULL;
		}
		break;
	default: /* get: the size first, as callers do, then the value */
		logop("getxattr %s %.80s", name, path);
		rc = (int)lgetxattr(path, name, NULL, 0);
		if (!n->xval[i]) {
			expect(rc < 0 ? -1 : 0, ENODATA, "getxattr");
			break;
		}
		if (rc != (int)n->xlen[i])
			die("getxattr %s size: %d, want %zu", name, rc, n->xlen[i]);
		/* (a buffer of 0 bytes would ask for the size again) */
		if (n->xlen[i] > 1 && lgetxattr(path, name, val, n->xlen[i] - 1) >= 0)
			die("getxattr %s into a buffer one byte short succeeded", name);
		if (n->xlen[i] > 1)
			expect(-1, ERANGE, "getxattr into a short buffer");
		check_xattrs(n, path);
	}
}

int main(int argc, char **argv)
{
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32), nops = 20000;
	int c;

	while ((c = getopt(argc, argv, "s:n:")) != -1) {
		switch (c) {
		case 's': seed = number(optarg); break;
		case 'n': nops = number(optarg); break;
		default:
			fprintf(stderr, "usage: nsexercise [-s SEED] [-n OPS] DIR\n");
			return 2;
		}
	}
	if (optind != argc - 1 || strlen(argv[optind]) >= sizeof(root) - 1) {
		fprintf(stderr, "usage: nsexercise [-s SEED] [-n OPS] DIR\n");
		return 2;
	}
	snprintf(root, sizeof(root), "%s", argv[optind]);
	rng_state = seed ? seed : 1;
	nodes[0] = (struct node){ .kind = K_DIR, .nlink = 2, .ents = calloc(MAX_ENTS, sizeof(struct entry)) };
	{
		struct stat st;
		if (!nodes[0].ents || lstat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "nsexercise: %s is not a directory\n", root);
			return 2;
		}
		nodes[0].nlink = (int)st.st_nlink; /* its own count: must be empty */
	}
	printf("nsexercise: seed %" PRIu64 ", %" PRIu64 " operations\n", seed, nops);
	fflush(stdout);
	for (op_no = 0; op_no < nops; op_no++) {
		unsigned what = (unsigned)below(100);

		if (what < 22)
			op_create(K_FILE);
		else if (what < 34)
			op_create(K_DIR);
		else if (what < 40)
			op_create(K_LINK);
		else if (what < 52)
			op_unlink(false);
		else if (what < 60)
			op_unlink(true);
		else if (what < 68)
			op_link();
		else if (what < 84)
			op_rename();
		else if (what < 92)
			op_xattr();
		else
			check_dir(random_dir());
		if (op_no % 1000 == 999)
			check_all();
	}
	check_all();
	int files = 0, dirs = 0;
	for (int i = 0; i < MAX_NODES; i++) {
		files += nodes[i].kind == K_FILE || nodes[i].kind == K_LINK ||
			 nodes[i].kind == K_WHITEOUT;
		dirs += nodes[i].kind == K_DIR;
	}
	printf("nsexercise: %" PRIu64 " operations passed; %d files and symlinks, %d directories at the end\n",
	       nops, files, dirs);
	return 0;
}
