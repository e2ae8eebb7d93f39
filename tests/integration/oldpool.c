// SPDX-License-Identifier: BSD-3-Clause
/*
 * oldpool PATH [2] -- turn the freshly made kmemfs pool at PATH into one that
 * a kmemfs of format 1.1 made: no directory key, the root's (empty) table
 * hashed with FNV; with 2, one of format 2.0 (keyed, no unwritten extents:
 * a fresh pool has no file); either way without the root's handle tag.
 * Test only: what fsck.kmemfs --upgrade is for.
 */
#include <stdio.h>
#include <string.h>

#include "pool.h"

int main(int argc, char **argv)
{
	struct kmfs_pool p;
	struct kmfs_dirtable *tab;
	struct kmfs_inode *root;

	if (argc != 2 && !(argc == 3 && strcmp(argv[2], "2") == 0)) {
		fprintf(stderr, "usage: oldpool PATH [2]\n");
		return 2;
	}
	if (pool_open(argv[1], &p) < 0)
		return 1;
	/* the root's handle tag was padding then */
	root = pool_ptr(&p, p.sb->root_off);
	root->handle_tag = 0;
	pool_persist(&p, &root->handle_tag, sizeof(root->handle_tag));
	if (argc == 3) {
		p.sb->major = 2;
		p.sb->minor = 0;
		pool_persist(&p, p.sb, sizeof(*p.sb));
		pool_close(&p);
		return 0;
	}
	tab = pool_ptr(&p, root->data_off);
	if (tab->count) {
		fprintf(stderr, "oldpool: the root is not empty: its names would need rehashing\n");
		pool_close(&p);
		return 1;
	}
	tab->hash_kind = KMFS_HASH_FNV;
	pool_persist(&p, tab, sizeof(*tab));
	p.sb->major = 1;
	p.sb->minor = 1;
	memset(p.sb->dir_key, 0, sizeof(p.sb->dir_key));
	pool_persist(&p, p.sb, sizeof(*p.sb));
	pool_close(&p);
	return 0;
}
