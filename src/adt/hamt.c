/* hamt.c: the HAMT of go-hamt-ipld v3 with Filecoin's options (SHA-256 of
 * the key, bit width 5), built, read, walked and diffed over a blockstore.
 *
 * FORMAT (DAG-CBOR, as cbor_gen.go and pointer_cbor.go write it)
 *   node    = [bitfield: bytes, pointers: [pointer...]]
 *   pointer = CID (a child node) | [[key: bytes, value: Any]...] (a bucket)
 *   The bitfield is big.Int.Bytes() of the set of slots in use: big-endian,
 *   no leading zero byte, empty when no slot is used; slot i is the value
 *   2^i. Pointers are in slot order. A bucket holds 1..3 pairs, sorted by
 *   key bytes, unique. The root is a node like any other and the HAMT's CID
 *   is its CID; only the root may be empty.
 *
 * INVARIANTS (CHAMP: a root's CID depends only on its pairs)
 *   - the slot at depth d is bits [d*w, (d+1)*w) of SHA-256(key), read most
 *     significant bit first (hash.go hashBits.next); a node exists at depth d
 *     only while (d+1)*w <= 256;
 *   - a fourth key for a full bucket turns it into a child node holding the
 *     four, placed by the next w bits (and so on down while they collide);
 *   - after a delete below a child, a child with no children of its own and
 *     at most 3 pairs is replaced by one bucket of those pairs (cleanChild);
 *     the check runs at every level on the way up, so collapses cascade.
 *
 * MEMORY: as the AMT (amt.c): a child not yet read is a stub node with its
 * CID; a pair is one allocation holding key then value; dirty marks the
 * changed paths; evict and walks turn clean nodes back into stubs.
 */
#include <stdlib.h>
#include <string.h>

#include "adt_i.h"

enum { N_LOADED = 1, N_HAS_CID = 2, N_DIRTY = 4 };

typedef struct hamt_kv {
	uint8_t *key; /* the key, then the value, in one allocation */
	uint32_t klen, vlen;
} hamt_kv;

typedef struct hamt_node hamt_node;

typedef struct hamt_ptr {
	hamt_node *child; /* a link; NULL for a bucket */
	uint32_t nkv;
	hamt_kv kv[CAIRN_HAMT_BUCKET_SIZE];
} hamt_ptr;

struct hamt_node {
	hamt_ptr *ptrs;
	uint64_t bits[4]; /* slot i in use: bit i%64 of bits[i/64] */
	uint16_t n, cap;
	uint8_t flags;
	cairn_cid cid;
};

struct cairn_hamt {
	cairn_store *store;
	unsigned bw, width;
	uint64_t mh_code;
	hamt_node *root;
	cairn_cid root_cid; /* valid while !dirty */
	bool dirty;
	uint64_t cached;
	cairn_buf scratch;
};

#define DIGEST_BITS 256

/* ---------------------------------------------------------------- bits */

static bool bit_get(const hamt_node *nd, unsigned i)
{
	return nd->bits[i / 64] >> (i % 64) & 1;
}

static unsigned rank(const hamt_node *nd, unsigned i)
{
	unsigned r = 0;

	for (unsigned w = 0; w < i / 64; w++)
		r += (unsigned)__builtin_popcountll(nd->bits[w]);
	if (i % 64)
		r += (unsigned)__builtin_popcountll(nd->bits[i / 64] & ((UINT64_C(1) << (i % 64)) - 1));
	return r;
}

/* Bits [at, at + n) of the digest, most significant first, as Go's hashBits. */
static unsigned hash_bits(const uint8_t *d, unsigned at, unsigned n)
{
	unsigned v = 0;

	for (unsigned k = at; k < at + n; k++)
		v = v << 1 | (d[k / 8] >> (7 - k % 8) & 1);
	return v;
}

static void key_hash(uint8_t d[32], const uint8_t *key, size_t klen)
{
	cairn_multihash_sum(d, CAIRN_MH_SHA2_256, key, klen);
}

/* ---------------------------------------------------------------- nodes */

static hamt_node *hnode_new(cairn_hamt *h, uint8_t flags)
{
	hamt_node *nd = cairn_calloc(1, sizeof(*nd));

	if (nd) {
		nd->flags = flags;
		if (flags & N_LOADED)
			h->cached++;
	}
	return nd;
}

static void hnode_free(cairn_hamt *h, hamt_node *nd);

static void hnode_release(cairn_hamt *h, hamt_node *nd)
{
	for (unsigned i = 0; i < nd->n; i++) {
		hamt_ptr *p = &nd->ptrs[i];

		hnode_free(h, p->child);
		for (unsigned k = 0; k < p->nkv; k++)
			cairn_free(p->kv[k].key);
	}
	cairn_free(nd->ptrs);
	nd->ptrs = NULL;
	nd->n = nd->cap = 0;
	memset(nd->bits, 0, sizeof(nd->bits));
}

static void hnode_unload(cairn_hamt *h, hamt_node *nd)
{
	hnode_release(h, nd);
	if (nd->flags & N_LOADED)
		h->cached--;
	nd->flags &= (uint8_t)~(N_LOADED | N_DIRTY);
}

static void hnode_free(cairn_hamt *h, hamt_node *nd)
{
	if (!nd)
		return;
	hnode_unload(h, nd);
	cairn_free(nd);
}

static int kv_new(hamt_kv *kv, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	if (!(kv->key = cairn_malloc(klen + vlen ? klen + vlen : 1)))
		return CAIRN_ENOMEM;
	if (klen)
		memcpy(kv->key, key, klen);
	memcpy(kv->key + klen, val, vlen);
	kv->klen = (uint32_t)klen;
	kv->vlen = (uint32_t)vlen;
	return 0;
}

static const uint8_t *kv_val(const hamt_kv *kv)
{
	return kv->key + kv->klen;
}

/* Inserts an empty pointer at position r for slot i. */
static int ptr_insert(hamt_node *nd, unsigned r, unsigned i)
{
	if (nd->n == nd->cap) {
		unsigned cap = nd->cap ? nd->cap * 2u : 4u;
		hamt_ptr *v = cairn_realloc(nd->ptrs, cap * sizeof(*v));

		if (!v)
			return CAIRN_ENOMEM;
		nd->ptrs = v;
		nd->cap = (uint16_t)cap;
	}
	memmove(&nd->ptrs[r + 1], &nd->ptrs[r], (nd->n - r) * sizeof(*nd->ptrs));
	memset(&nd->ptrs[r], 0, sizeof(*nd->ptrs));
	nd->n++;
	nd->bits[i / 64] |= UINT64_C(1) << (i % 64);
	return 0;
}

static void ptr_remove(hamt_node *nd, unsigned r, unsigned i)
{
	memmove(&nd->ptrs[r], &nd->ptrs[r + 1], (nd->n - r - 1) * sizeof(*nd->ptrs));
	nd->n--;
	nd->bits[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

/* ---------------------------------------------------------- decode, load */

static int hnode_decode(cairn_hamt *h, hamt_node *nd, adt_rd *r, unsigned depth, bool is_root)
{
	size_t bstart, nb = (h->width + 7) / 8;
	uint64_t arg = 0, len = 0, npt = 0;
	unsigned bits = 0, links = 0, kvs = 0;
	int rc;

	if ((rc = cairn_adt__expect(r, ADT_MAJ_ARRAY, &arg, "a node")))
		return rc;
	if (arg != 2)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: a node has 2 fields, not %llu",
				       r->off - 1, (unsigned long long)arg);
	bstart = r->off;
	if ((rc = cairn_adt__expect(r, ADT_MAJ_BYTES, &len, "the bitfield")))
		return rc;
	if (len > nb)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: a bitfield of %llu bytes for %u "
				       "slots", bstart, (unsigned long long)len, h->width);
	if (len && r->p[r->off] == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: the bitfield starts with a zero "
				       "byte (big.Int bytes have none)", r->off);
	for (size_t k = 0; k < len; k++) {
		uint8_t byte = r->p[r->off + k];

		for (unsigned b = 0; b < 8; b++) {
			unsigned i = (unsigned)(len - 1 - k) * 8 + b;

			if (!(byte >> b & 1))
				continue;
			if (i >= h->width)
				return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: bitfield bit %u is "
						       "past the node's %u slots", r->off + k, i,
						       h->width);
			nd->bits[i / 64] |= UINT64_C(1) << (i % 64);
			bits++;
		}
	}
	r->off += (size_t)len;
	if ((rc = cairn_adt__expect(r, ADT_MAJ_ARRAY, &npt, "the pointers")))
		return rc;
	if (npt != bits)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: the bitfield has %u bits set but "
				       "there are %llu pointers", bstart, bits, (unsigned long long)npt);
	if (npt && !(nd->ptrs = cairn_calloc((size_t)npt, sizeof(*nd->ptrs))))
		return CAIRN_ENOMEM;
	nd->cap = (uint16_t)npt;
	for (unsigned k = 0; k < npt; k++) {
		hamt_ptr *p = &nd->ptrs[k];
		size_t at = r->off;

		if (at >= r->len)
			return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: unexpected end of data", at);
		nd->n = (uint16_t)(k + 1); /* so a failure frees what is here */
		if (r->p[at] >> 5 == ADT_MAJ_TAG) {
			if (!(p->child = hnode_new(h, 0)))
				return CAIRN_ENOMEM;
			if ((rc = cairn_adt__link(r, &p->child->cid)))
				return rc;
			if (p->child->cid.codec != CAIRN_CODEC_DAG_CBOR)
				return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: links to HAMT "
						       "nodes must be dag-cbor", at);
			p->child->flags = N_HAS_CID;
			links++;
			continue;
		}
		if (r->p[at] >> 5 != ADT_MAJ_ARRAY)
			return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: a pointer is a link or a "
					       "bucket", at);
		if ((rc = cairn_adt__expect(r, ADT_MAJ_ARRAY, &arg, "a bucket")))
			return rc;
		if (arg < 1 || arg > CAIRN_HAMT_BUCKET_SIZE)
			return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: a bucket of %llu pairs "
					       "(1 to %d)", at, (unsigned long long)arg,
					       CAIRN_HAMT_BUCKET_SIZE);
		for (unsigned j = 0; j < arg; j++) {
			size_t kat = r->off, vat;
			const uint8_t *key;
			uint64_t klen = 0;

			if ((rc = cairn_adt__expect(r, ADT_MAJ_ARRAY, &len, "a pair")))
				return rc;
			if (len != 2)
				return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: a pair has 2 fields, "
						       "not %llu", kat, (unsigned long long)len);
			if ((rc = cairn_adt__expect(r, ADT_MAJ_BYTES, &klen, "a key")))
				return rc;
			if (klen > CAIRN_HAMT_MAX_KEY)
				return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: a key of %llu bytes",
						       kat, (unsigned long long)klen);
			key = r->p + r->off;
			r->off += (size_t)klen;
			vat = r->off;
			if ((rc = cairn_adt__skip(r)))
				return rc;
			if (r->off - vat > ADT_MAX_VALUE)
				return cairn_error_set(CAIRN_ETOOBIG, "at byte %zu: a value of %zu bytes",
						       vat, r->off - vat);
			if (j && cairn_adt__key_cmp(p->kv[j - 1].key, p->kv[j - 1].klen, key,
						    (size_t)klen) >= 0)
				return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: bucket keys are not "
						       "in ascending order", kat);
			if ((rc = kv_new(&p->kv[j], key, (size_t)klen, r->p + vat, r->off - vat)))
				return rc;
			p->nkv = j + 1;
			kvs++;
		}
	}
	if (!is_root && (npt == 0 || (links == 0 && kvs <= CAIRN_HAMT_BUCKET_SIZE)))
		return cairn_error_set(CAIRN_ECORRUPT, "at byte 0: a child node with %u pairs and no "
				       "children should be a bucket in its parent", kvs);
	if ((depth + 1) * h->bw > DIGEST_BITS)
		return cairn_error_set(CAIRN_ECORRUPT, "a node at depth %u, deeper than SHA-256's "
				       "bits allow", depth);
	if (!(nd->flags & N_LOADED)) {
		nd->flags |= N_LOADED;
		h->cached++;
	}
	return 0;
}

static int hnode_load(cairn_hamt *h, hamt_node *nd, unsigned depth)
{
	char str[CAIRN_CID_MAX_STRING];
	adt_rd r;
	int rc;

	if (nd->flags & N_LOADED)
		return 0;
	if ((rc = cairn_adt__get(h->store, &h->scratch, &nd->cid, "hamt node")))
		return rc;
	r = (adt_rd){h->scratch.data, h->scratch.len, 0};
	rc = hnode_decode(h, nd, &r, depth, false);
	if (!rc && r.off != r.len)
		rc = cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: %zu bytes after the node", r.off,
				     r.len - r.off);
	if (rc) {
		hnode_release(h, nd);
		if (nd->flags & N_LOADED)
			h->cached--;
		nd->flags = N_HAS_CID;
		cairn_cid_to_string(str, &nd->cid);
		return cairn_error_prefix("hamt node %s: ", str);
	}
	return 0;
}

/* -------------------------------------------------------- get, set, delete */

static int too_deep(const cairn_hamt *h, unsigned depth)
{
	return cairn_error_set(CAIRN_ETOOBIG, "hamt: a key needs a node at depth %u, past the %u "
			       "bits of SHA-256 at bit width %u", depth, DIGEST_BITS, h->bw);
}

int cairn_hamt_get(const uint8_t **val_out, size_t *len_out, cairn_hamt *h, const uint8_t *key,
		   size_t klen)
{
	hamt_node *nd = h->root;
	uint8_t d[32];
	int rc;

	if (val_out)
		*val_out = NULL;
	if (len_out)
		*len_out = 0;
	key_hash(d, key, klen);
	for (unsigned depth = 0; (depth + 1) * h->bw <= DIGEST_BITS; depth++) {
		unsigned i = hash_bits(d, depth * h->bw, h->bw);
		hamt_ptr *p;

		if (!bit_get(nd, i))
			return CAIRN_ENOTFOUND;
		p = &nd->ptrs[rank(nd, i)];
		if (p->child) {
			nd = p->child;
			if ((rc = hnode_load(h, nd, depth + 1)))
				return rc;
			continue;
		}
		for (unsigned k = 0; k < p->nkv; k++) {
			if (cairn_adt__key_cmp(p->kv[k].key, p->kv[k].klen, key, klen))
				continue;
			if (val_out)
				*val_out = kv_val(&p->kv[k]);
			if (len_out)
				*len_out = p->kv[k].vlen;
			return 0;
		}
		return CAIRN_ENOTFOUND;
	}
	return CAIRN_ENOTFOUND;
}

static int hnode_set(cairn_hamt *h, hamt_node *nd, unsigned depth, const uint8_t *d,
		     const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, bool *added,
		     bool *changed)
{
	unsigned i, r;
	hamt_ptr *p;
	hamt_kv kv;
	int rc;

	if ((depth + 1) * h->bw > DIGEST_BITS)
		return too_deep(h, depth);
	i = hash_bits(d, depth * h->bw, h->bw);
	r = rank(nd, i);
	if (!bit_get(nd, i)) {
		if ((rc = kv_new(&kv, key, klen, val, vlen)))
			return rc;
		if ((rc = ptr_insert(nd, r, i))) {
			cairn_free(kv.key);
			return rc;
		}
		nd->ptrs[r].nkv = 1;
		nd->ptrs[r].kv[0] = kv;
		*added = *changed = true;
		return 0;
	}
	p = &nd->ptrs[r];
	if (p->child) {
		if ((rc = hnode_load(h, p->child, depth + 1)) ||
		    (rc = hnode_set(h, p->child, depth + 1, d, key, klen, val, vlen, added, changed)))
			return rc;
		if (*changed)
			p->child->flags |= N_DIRTY;
		return 0;
	}
	for (unsigned k = 0; k < p->nkv; k++) {
		int c = cairn_adt__key_cmp(p->kv[k].key, p->kv[k].klen, key, klen);

		if (c < 0)
			continue;
		if (c == 0) {
			if (p->kv[k].vlen == vlen && !memcmp(kv_val(&p->kv[k]), val, vlen))
				return 0;
			if ((rc = kv_new(&kv, key, klen, val, vlen)))
				return rc;
			cairn_free(p->kv[k].key);
			p->kv[k] = kv;
			*changed = true;
			return 0;
		}
		break;
	}
	if (p->nkv < CAIRN_HAMT_BUCKET_SIZE) {
		unsigned k = 0;

		while (k < p->nkv && cairn_adt__key_cmp(p->kv[k].key, p->kv[k].klen, key, klen) < 0)
			k++;
		if ((rc = kv_new(&kv, key, klen, val, vlen)))
			return rc;
		memmove(&p->kv[k + 1], &p->kv[k], (p->nkv - k) * sizeof(kv));
		p->kv[k] = kv;
		p->nkv++;
		*added = *changed = true;
		return 0;
	}
	/* A full bucket: its pairs and the new one go one level down, into a
	 * new child, copied there first so a failure leaves the bucket. */
	{
		hamt_node *sub = hnode_new(h, N_LOADED | N_DIRTY);
		bool a2 = false, c2 = false;

		if (!sub)
			return CAIRN_ENOMEM;
		rc = hnode_set(h, sub, depth + 1, d, key, klen, val, vlen, &a2, &c2);
		for (unsigned k = 0; !rc && k < p->nkv; k++) {
			uint8_t dk[32];

			key_hash(dk, p->kv[k].key, p->kv[k].klen);
			rc = hnode_set(h, sub, depth + 1, dk, p->kv[k].key, p->kv[k].klen,
				       kv_val(&p->kv[k]), p->kv[k].vlen, &a2, &c2);
		}
		if (rc) {
			hnode_free(h, sub);
			return rc;
		}
		for (unsigned k = 0; k < p->nkv; k++)
			cairn_free(p->kv[k].key);
		p->nkv = 0;
		p->child = sub;
		*added = *changed = true;
	}
	return 0;
}

int cairn_hamt_set(cairn_hamt *h, bool *added_out, const uint8_t *key, size_t klen,
		   const uint8_t *val, size_t vlen)
{
	bool added = false, changed = false;
	uint8_t d[32];
	int rc;

	if (added_out)
		*added_out = false;
	if (klen > CAIRN_HAMT_MAX_KEY || (klen && !key))
		return cairn_error_set(CAIRN_EINVAL, "hamt set: a key of %zu bytes (at most %u)", klen,
				       CAIRN_HAMT_MAX_KEY);
	if ((rc = cairn_adt__check_value(val, vlen, "hamt set")))
		return rc;
	key_hash(d, key, klen);
	if ((rc = hnode_set(h, h->root, 0, d, key, klen, val, vlen, &added, &changed)))
		return rc;
	if (changed)
		h->dirty = true;
	if (added_out)
		*added_out = added;
	return 0;
}

/* A child left with no children and at most a bucket's worth of pairs
 * becomes one bucket, sorted by key, in its parent. Moves the pairs:
 * nothing to allocate, nothing to fail. */
static void clean_child(cairn_hamt *h, hamt_node *nd, unsigned r, unsigned i)
{
	hamt_node *c = nd->ptrs[r].child;
	hamt_ptr np = {NULL, 0, {{NULL, 0, 0}}};
	unsigned total = 0;

	for (unsigned k = 0; k < c->n; k++) {
		if (c->ptrs[k].child)
			return;
		total += c->ptrs[k].nkv;
	}
	if (total > CAIRN_HAMT_BUCKET_SIZE)
		return;
	for (unsigned k = 0; k < c->n; k++) {
		for (unsigned j = 0; j < c->ptrs[k].nkv; j++) {
			hamt_kv kv = c->ptrs[k].kv[j];
			unsigned at = np.nkv;

			while (at > 0 && cairn_adt__key_cmp(np.kv[at - 1].key, np.kv[at - 1].klen,
							    kv.key, kv.klen) > 0) {
				np.kv[at] = np.kv[at - 1];
				at--;
			}
			np.kv[at] = kv;
			np.nkv++;
		}
		c->ptrs[k].nkv = 0;
	}
	hnode_free(h, c);
	if (np.nkv)
		nd->ptrs[r] = np;
	else
		ptr_remove(nd, r, i); /* cannot happen in a canonical tree */
}

static int hnode_delete(cairn_hamt *h, hamt_node *nd, unsigned depth, const uint8_t *d,
			const uint8_t *key, size_t klen)
{
	unsigned i, r;
	hamt_ptr *p;
	int rc;

	if ((depth + 1) * h->bw > DIGEST_BITS)
		return CAIRN_ENOTFOUND;
	i = hash_bits(d, depth * h->bw, h->bw);
	if (!bit_get(nd, i))
		return CAIRN_ENOTFOUND;
	r = rank(nd, i);
	p = &nd->ptrs[r];
	if (p->child) {
		if ((rc = hnode_load(h, p->child, depth + 1)) ||
		    (rc = hnode_delete(h, p->child, depth + 1, d, key, klen)))
			return rc;
		p->child->flags |= N_DIRTY;
		clean_child(h, nd, r, i);
		return 0;
	}
	for (unsigned k = 0; k < p->nkv; k++) {
		if (cairn_adt__key_cmp(p->kv[k].key, p->kv[k].klen, key, klen))
			continue;
		cairn_free(p->kv[k].key);
		if (p->nkv == 1) {
			ptr_remove(nd, r, i);
			return 0;
		}
		memmove(&p->kv[k], &p->kv[k + 1], (p->nkv - k - 1) * sizeof(p->kv[0]));
		p->nkv--;
		return 0;
	}
	return CAIRN_ENOTFOUND;
}

int cairn_hamt_delete(cairn_hamt *h, const uint8_t *key, size_t klen)
{
	uint8_t d[32];
	int rc;

	key_hash(d, key, klen);
	if ((rc = hnode_delete(h, h->root, 0, d, key, klen)))
		return rc;
	h->dirty = true;
	return 0;
}

/* ---------------------------------------------------------------- flush */

static void hnode_encode(cairn_buf *b, const hamt_node *nd)
{
	int hi = -1;

	for (int i = 255; i >= 0 && hi < 0; i--)
		if (nd->bits[i / 64] >> (i % 64) & 1)
			hi = i;
	cairn_adt__put_head(b, ADT_MAJ_ARRAY, 2);
	cairn_adt__put_head(b, ADT_MAJ_BYTES, (uint64_t)(hi + 8) / 8);
	for (int k = hi / 8; hi >= 0 && k >= 0; k--) {
		uint8_t byte = 0;

		for (unsigned j = 0; j < 8; j++)
			if (nd->bits[(k * 8 + j) / 64] >> ((k * 8 + j) % 64) & 1)
				byte |= (uint8_t)(1u << j);
		cairn_buf_putc(b, byte);
	}
	cairn_adt__put_head(b, ADT_MAJ_ARRAY, nd->n);
	for (unsigned k = 0; k < nd->n; k++) {
		const hamt_ptr *p = &nd->ptrs[k];

		if (p->child) {
			cairn_adt__put_link(b, &p->child->cid);
			continue;
		}
		cairn_adt__put_head(b, ADT_MAJ_ARRAY, p->nkv);
		for (unsigned j = 0; j < p->nkv; j++) {
			cairn_adt__put_head(b, ADT_MAJ_ARRAY, 2);
			cairn_adt__put_head(b, ADT_MAJ_BYTES, p->kv[j].klen);
			cairn_buf_append(b, p->kv[j].key, p->kv[j].klen + p->kv[j].vlen);
		}
	}
}

static int flush_kids(cairn_hamt *h, hamt_node *nd)
{
	int rc;

	for (unsigned k = 0; k < nd->n; k++) {
		hamt_node *c = nd->ptrs[k].child;

		if (!c || !(c->flags & N_DIRTY))
			continue;
		if ((rc = flush_kids(h, c)))
			return rc;
		cairn_buf_clear(&h->scratch);
		hnode_encode(&h->scratch, c);
		if ((rc = cairn_adt__put(h->store, &c->cid, h->mh_code, &h->scratch, "hamt node")))
			return rc;
		c->flags = (uint8_t)((c->flags | N_HAS_CID) & ~N_DIRTY);
	}
	return 0;
}

int cairn_hamt_flush(cairn_cid *root_out, cairn_hamt *h)
{
	int rc;

	if (!h->dirty) {
		*root_out = h->root_cid;
		return 0;
	}
	if ((rc = flush_kids(h, h->root)))
		return rc;
	cairn_buf_clear(&h->scratch);
	hnode_encode(&h->scratch, h->root);
	if ((rc = cairn_adt__put(h->store, &h->root_cid, h->mh_code, &h->scratch, "hamt root")))
		return rc;
	h->dirty = false;
	*root_out = h->root_cid;
	return 0;
}

static void evict(cairn_hamt *h, hamt_node *nd)
{
	for (unsigned k = 0; k < nd->n; k++) {
		hamt_node *c = nd->ptrs[k].child;

		if (!c || !(c->flags & N_LOADED))
			continue;
		if ((c->flags & N_HAS_CID) && !(c->flags & N_DIRTY))
			hnode_unload(h, c);
		else
			evict(h, c);
	}
}

void cairn_hamt_evict(cairn_hamt *h)
{
	evict(h, h->root);
	if (!h->dirty)
		cairn_buf_free(&h->scratch);
}

uint64_t cairn_hamt_cached_nodes(const cairn_hamt *h)
{
	return h->cached;
}

/* ------------------------------------------------------ new, load, free */

static int check_options(cairn_hamt_options *o, const cairn_hamt_options *in)
{
	*o = (cairn_hamt_options)CAIRN_HAMT_OPTIONS_INIT;
	if (in)
		*o = *in;
	if (o->bit_width < 1 || o->bit_width > CAIRN_HAMT_MAX_BIT_WIDTH)
		return cairn_error_set(CAIRN_EINVAL, "hamt: bit width %u is not in 1..%d",
				       o->bit_width, CAIRN_HAMT_MAX_BIT_WIDTH);
	return cairn_adt__check_mh(o->mh_code, "hamt");
}

static cairn_hamt *hamt_alloc(cairn_store *store, const cairn_hamt_options *o)
{
	cairn_hamt *h = cairn_calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->store = store;
	h->bw = o->bit_width;
	h->width = 1u << o->bit_width;
	h->mh_code = o->mh_code;
	if (!(h->root = hnode_new(h, N_LOADED))) {
		cairn_free(h);
		return NULL;
	}
	return h;
}

int cairn_hamt_new(cairn_hamt **out, cairn_store *store, const cairn_hamt_options *opts)
{
	cairn_hamt_options o;
	int rc;

	*out = NULL;
	if (!store)
		return cairn_error_set(CAIRN_EINVAL, "hamt: a store is required");
	if ((rc = check_options(&o, opts)))
		return rc;
	if (!(*out = hamt_alloc(store, &o)))
		return CAIRN_ENOMEM;
	(*out)->dirty = true;
	return 0;
}

int cairn_hamt_load(cairn_hamt **out, cairn_store *store, const cairn_cid *root,
		    const cairn_hamt_options *opts)
{
	char str[CAIRN_CID_MAX_STRING];
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_hamt_options o;
	cairn_hamt *h;
	adt_rd r;
	int rc;

	*out = NULL;
	if (!store || !root)
		return cairn_error_set(CAIRN_EINVAL, "hamt: a store and a root are required");
	if ((rc = check_options(&o, opts)))
		return rc;
	if ((rc = cairn_adt__get(store, &b, root, "hamt root")))
		return rc;
	if (!(h = hamt_alloc(store, &o))) {
		cairn_buf_free(&b);
		return CAIRN_ENOMEM;
	}
	r = (adt_rd){b.data, b.len, 0};
	rc = hnode_decode(h, h->root, &r, 0, true);
	if (!rc && r.off != r.len)
		rc = cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: %zu bytes after the root", r.off,
				     r.len - r.off);
	cairn_buf_free(&b);
	if (rc) {
		cairn_hamt_free(h);
		cairn_cid_to_string(str, root);
		return cairn_error_prefix("hamt root %s: ", str);
	}
	h->root_cid = *root;
	*out = h;
	return 0;
}

void cairn_hamt_free(cairn_hamt *h)
{
	if (!h)
		return;
	hnode_free(h, h->root);
	cairn_buf_free(&h->scratch);
	cairn_free(h);
}

unsigned cairn_hamt_bit_width(const cairn_hamt *h)
{
	return h->bw;
}

/* ---------------------------------------------------------------- walks */

static int walk_load(cairn_hamt *h, hamt_node *nd, unsigned depth, bool *read_here)
{
	*read_here = !(nd->flags & N_LOADED);
	return hnode_load(h, nd, depth);
}

static void walk_done(cairn_hamt *h, hamt_node *nd, bool read_here)
{
	if (read_here && !(nd->flags & N_DIRTY))
		hnode_unload(h, nd);
}

static int for_each(cairn_hamt *h, hamt_node *nd, unsigned depth, cairn_hamt_fn fn, void *payload)
{
	int rc;

	for (unsigned k = 0; k < nd->n; k++) {
		hamt_ptr *p = &nd->ptrs[k];
		bool read_here;

		if (p->child) {
			if ((rc = walk_load(h, p->child, depth + 1, &read_here)))
				return rc;
			rc = for_each(h, p->child, depth + 1, fn, payload);
			walk_done(h, p->child, read_here);
			if (rc)
				return rc;
			continue;
		}
		for (unsigned j = 0; j < p->nkv; j++)
			if ((rc = fn(p->kv[j].key, p->kv[j].klen, kv_val(&p->kv[j]), p->kv[j].vlen,
				     payload)))
				return rc;
	}
	return 0;
}

int cairn_hamt_for_each(cairn_hamt *h, cairn_hamt_fn fn, void *payload)
{
	return for_each(h, h->root, 0, fn, payload);
}

/* ----------------------------------------------------------------- diff */

typedef struct {
	cairn_hamt_diff_fn fn;
	void *payload;
	cairn_adt_change_type type; /* for emit */
} hdiff_ctx;

static int emit_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t len, void *payload)
{
	hdiff_ctx *d = payload;
	cairn_hamt_change ch = {d->type, key, klen, NULL, 0, NULL, 0};

	if (d->type == CAIRN_ADT_ADD) {
		ch.after = val;
		ch.after_len = len;
	} else {
		ch.before = val;
		ch.before_len = len;
	}
	return d->fn(&ch, d->payload);
}

/* Every pair below a pointer as adds or removes. */
static int emit_ptr(cairn_hamt *h, hdiff_ctx *d, hamt_ptr *p, unsigned depth,
		    cairn_adt_change_type type)
{
	bool read_here;
	int rc;

	d->type = type;
	if (!p->child) {
		for (unsigned j = 0; j < p->nkv; j++)
			if ((rc = emit_kv(p->kv[j].key, p->kv[j].klen, kv_val(&p->kv[j]),
					  p->kv[j].vlen, d)))
				return rc;
		return 0;
	}
	if ((rc = walk_load(h, p->child, depth + 1, &read_here)))
		return rc;
	rc = for_each(h, p->child, depth + 1, emit_kv, d);
	walk_done(h, p->child, read_here);
	return rc;
}

typedef struct {
	const hamt_kv **v;
	size_t n, cap;
} kv_list;

static int list_push(kv_list *l, const hamt_kv *kv)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		const hamt_kv **v = cairn_realloc(l->v, cap * sizeof(*v));

		if (!v)
			return CAIRN_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = kv;
	return 0;
}

static int kvp_cmp(const void *x, const void *y)
{
	const hamt_kv *a = *(const hamt_kv *const *)x, *b = *(const hamt_kv *const *)y;

	return cairn_adt__key_cmp(a->key, a->klen, b->key, b->klen);
}

/* Gathers the pairs below a child (left read until `done`) or in a bucket. */
static int gather(cairn_hamt *h, hamt_ptr *p, unsigned depth, kv_list *l, bool *read_here);

static int merge(hdiff_ctx *d, const hamt_kv *const *pv, size_t pn, const hamt_kv *const *cv,
		 size_t cn)
{
	size_t i = 0, j = 0;
	int rc;

	while (i < pn || j < cn) {
		int c = i == pn ? 1 : j == cn ? -1 : kvp_cmp(&pv[i], &cv[j]);
		cairn_hamt_change ch = {CAIRN_ADT_MODIFY, NULL, 0, NULL, 0, NULL, 0};

		if (c < 0) {
			ch.type = CAIRN_ADT_REMOVE;
			ch.key = pv[i]->key;
			ch.klen = pv[i]->klen;
			ch.before = kv_val(pv[i]);
			ch.before_len = pv[i]->vlen;
			i++;
		} else if (c > 0) {
			ch.type = CAIRN_ADT_ADD;
			ch.key = cv[j]->key;
			ch.klen = cv[j]->klen;
			ch.after = kv_val(cv[j]);
			ch.after_len = cv[j]->vlen;
			j++;
		} else {
			const hamt_kv *a = pv[i++], *b = cv[j++];

			if (a->vlen == b->vlen && !memcmp(kv_val(a), kv_val(b), a->vlen))
				continue;
			ch.key = b->key;
			ch.klen = b->klen;
			ch.before = kv_val(a);
			ch.before_len = a->vlen;
			ch.after = kv_val(b);
			ch.after_len = b->vlen;
		}
		if ((rc = d->fn(&ch, d->payload)))
			return rc;
	}
	return 0;
}

static bool same_cid(const hamt_node *p, const hamt_node *c)
{
	return (p->flags & N_HAS_CID) && (c->flags & N_HAS_CID) && !(p->flags & N_DIRTY) &&
	       !(c->flags & N_DIRTY) && cairn_cid_equal(&p->cid, &c->cid);
}

static int hdiff_node(cairn_hamt *ph, cairn_hamt *chm, hdiff_ctx *d, hamt_node *pn, hamt_node *cn,
		      unsigned depth);

/* One slot held on both sides, at least one of them a bucket: compare the
 * pairs by key. */
static int diff_mixed(cairn_hamt *ph, cairn_hamt *chm, hdiff_ctx *d, hamt_ptr *pp, hamt_ptr *cp,
		      unsigned depth)
{
	kv_list pl = {NULL, 0, 0}, cl = {NULL, 0, 0};
	bool pr = false, cr = false;
	int rc;

	if (!(rc = gather(ph, pp, depth, &pl, &pr)) && !(rc = gather(chm, cp, depth, &cl, &cr)))
		rc = merge(d, pl.v, pl.n, cl.v, cl.n);
	if (pp->child)
		walk_done(ph, pp->child, pr);
	if (cp->child)
		walk_done(chm, cp->child, cr);
	cairn_free(pl.v);
	cairn_free(cl.v);
	return rc;
}

static int gather(cairn_hamt *h, hamt_ptr *p, unsigned depth, kv_list *l, bool *read_here)
{
	int rc;

	*read_here = false;
	if (!p->child) {
		for (unsigned j = 0; j < p->nkv; j++)
			if ((rc = list_push(l, &p->kv[j])))
				return rc;
		return 0;
	}
	{
		/* Pairs in a subtree: walk it with every node kept read until
		 * the merge is over (walk_done on the child drops them all). */
		hamt_node *stack_nd[DIGEST_BITS + 1];
		unsigned stack_k[DIGEST_BITS + 1], sp = 0;

		if ((rc = walk_load(h, p->child, depth + 1, read_here)))
			return rc;
		stack_nd[0] = p->child;
		stack_k[0] = 0;
		while (1) {
			hamt_node *nd = stack_nd[sp];
			unsigned k = stack_k[sp];

			if (k == nd->n) {
				if (!sp)
					break;
				sp--;
				continue;
			}
			stack_k[sp]++;
			if (nd->ptrs[k].child) {
				if ((rc = hnode_load(h, nd->ptrs[k].child, depth + 2 + sp)))
					return rc;
				sp++;
				stack_nd[sp] = nd->ptrs[k].child;
				stack_k[sp] = 0;
				continue;
			}
			for (unsigned j = 0; j < nd->ptrs[k].nkv; j++)
				if ((rc = list_push(l, &nd->ptrs[k].kv[j])))
					return rc;
		}
		qsort(l->v, l->n, sizeof(*l->v), kvp_cmp);
	}
	return 0;
}

static int hdiff_node(cairn_hamt *ph, cairn_hamt *chm, hdiff_ctx *d, hamt_node *pn, hamt_node *cn,
		      unsigned depth)
{
	int rc;

	for (unsigned i = 0; i < ph->width; i++) {
		bool pb = bit_get(pn, i), cb = bit_get(cn, i), pr, cr;
		hamt_ptr *pp = pb ? &pn->ptrs[rank(pn, i)] : NULL;
		hamt_ptr *cp = cb ? &cn->ptrs[rank(cn, i)] : NULL;

		if (!pp && !cp)
			continue;
		if (!cp) {
			rc = emit_ptr(ph, d, pp, depth, CAIRN_ADT_REMOVE);
		} else if (!pp) {
			rc = emit_ptr(chm, d, cp, depth, CAIRN_ADT_ADD);
		} else if (pp->child && cp->child) {
			if (same_cid(pp->child, cp->child))
				continue;
			if ((rc = walk_load(ph, pp->child, depth + 1, &pr)))
				return rc;
			if ((rc = walk_load(chm, cp->child, depth + 1, &cr))) {
				walk_done(ph, pp->child, pr);
				return rc;
			}
			rc = hdiff_node(ph, chm, d, pp->child, cp->child, depth + 1);
			walk_done(ph, pp->child, pr);
			walk_done(chm, cp->child, cr);
		} else {
			rc = diff_mixed(ph, chm, d, pp, cp, depth);
		}
		if (rc)
			return rc;
	}
	return 0;
}

int cairn_hamt_diff(cairn_hamt *prev, cairn_hamt *cur, cairn_hamt_diff_fn fn, void *payload)
{
	hdiff_ctx d = {fn, payload, CAIRN_ADT_ADD};

	if (prev->bw != cur->bw)
		return cairn_error_set(CAIRN_EINVAL, "hamt diff: bit widths differ (prev %u, cur %u)",
				       prev->bw, cur->bw);
	if (prev == cur || (!prev->dirty && !cur->dirty &&
			    cairn_cid_equal(&prev->root_cid, &cur->root_cid)))
		return 0;
	return hdiff_node(prev, cur, &d, prev->root, cur->root, 0);
}
