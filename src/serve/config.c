/* config.c: the JSON config file of `cairn serve`: a table of keys, each
 * checked for its type and range, every unknown key an error naming it.
 *
 * The file is parsed with cairn's DAG-JSON decoder (plain JSON objects,
 * strings and integers are DAG-JSON); at most 1 MiB is read.
 */
#include <stdio.h>
#include <string.h>

#include "cairn/serve.h"

#define CONFIG_MAX (1u << 20)

typedef enum { K_STRING, K_UINT } key_type;

typedef struct key {
	const char *name;
	key_type type;
	uint64_t max;        /* K_UINT: the largest value (0 is always allowed) */
	size_t off;          /* in cairn_serve_config */
} key;

static const key keys[] = {
	{"listen", K_STRING, 0, offsetof(cairn_serve_config, listen)},
	{"threads", K_UINT, 1024, offsetof(cairn_serve_config, threads)},
	{"max_connections", K_UINT, 1000000, offsetof(cairn_serve_config, max_connections)},
	{"timeout_s", K_UINT, 86400, offsetof(cairn_serve_config, timeout_s)},
};

static int set(cairn_serve_config *out, const key *k, const cairn_node *v, const char *path)
{
	char *field = (char *)out + k->off;

	if (k->type == K_STRING) {
		char *s;

		if (v->kind != CAIRN_KIND_STRING || v->v.bytes.len == 0 ||
		    memchr(v->v.bytes.ptr, 0, v->v.bytes.len))
			return cairn_error_set(CAIRN_ECORRUPT, "%s: \"%s\" must be a non-empty string",
					       path, k->name);
		if (!(s = cairn_strndup((const char *)v->v.bytes.ptr, v->v.bytes.len)))
			return CAIRN_ENOMEM;
		cairn_free(*(char **)field);
		*(char **)field = s;
		return 0;
	}
	if (v->kind != CAIRN_KIND_INT || v->v.i.neg || v->v.i.mag > k->max)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: \"%s\" must be an integer from 0 to %llu",
				       path, k->name, (unsigned long long)k->max);
	*(unsigned *)field = (unsigned)v->v.i.mag;
	return 0;
}

int cairn_serve_config_load(cairn_serve_config *out, const char *path)
{
	cairn_buf text = CAIRN_BUF_INIT;
	cairn_arena *arena = NULL;
	cairn_node *root = NULL;
	const cairn_node *obj;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = cairn_file_read_all(&text, path, CONFIG_MAX)))
		return rc;
	if ((rc = cairn_arena_new(&arena)))
		goto out;
	if ((rc = cairn_dagjson_decode(&root, arena, text.data, text.len))) {
		cairn_error_prefix("%s: ", path);
		rc = CAIRN_ECORRUPT;
		goto out;
	}
	if (root->kind != CAIRN_KIND_MAP) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "%s: expected a JSON object", path);
		goto out;
	}
	obj = cairn_node_map_get(root, "serve");
	if (obj) {
		/* a store-wide file: only "serve" is this command's */
		if (obj->kind != CAIRN_KIND_MAP) {
			rc = cairn_error_set(CAIRN_ECORRUPT, "%s: \"serve\" must be an object", path);
			goto out;
		}
	} else {
		obj = root;
	}
	for (size_t i = 0; i < obj->v.map.len; i++) {
		const cairn_map_entry *e = &obj->v.map.entries[i];
		const key *k = NULL;

		for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++)
			if (strlen(keys[j].name) == e->key_len && !memcmp(keys[j].name, e->key, e->key_len))
				k = &keys[j];
		if (!k) {
			rc = cairn_error_set(CAIRN_ECORRUPT, "%s: unknown key \"%.*s\" (known: listen, "
					     "threads, max_connections, timeout_s)", path,
					     (int)(e->key_len < 64 ? e->key_len : 64), (const char *)e->key);
			goto out;
		}
		if ((rc = set(out, k, &e->value, path)))
			goto out;
	}
out:
	cairn_arena_free(arena);
	cairn_buf_free(&text);
	return rc;
}

void cairn_serve_config_apply(const cairn_serve_config *cfg, cairn_serve_options *opts)
{
	if (!opts->listen)
		opts->listen = cfg->listen;
	if (!opts->threads)
		opts->threads = cfg->threads;
	if (!opts->max_connections)
		opts->max_connections = cfg->max_connections;
	if (!opts->timeout_s)
		opts->timeout_s = cfg->timeout_s;
}

void cairn_serve_config_clear(cairn_serve_config *cfg)
{
	if (!cfg)
		return;
	cairn_free(cfg->listen);
	memset(cfg, 0, sizeof(*cfg));
}
