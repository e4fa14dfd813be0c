/* chaingen.c: a generator of Filecoin-shaped chains (lotus chain/types,
 * ../shared/reference/amt-migration-export.md section 4), deterministic per seed.
 *
 * Shape. Genesis (height 0, one block) has one parent, a sha2-256 DAG-CBOR
 * block as on mainnet, and the first state. Each later epoch is a null
 * round (no tipset: the next height jumps) or a tipset of 1..max_blocks
 * headers sharing Parents (the previous tipset's key) and Height, in the
 * order of blake2b-256 of their tickets. Per header:
 *   Messages              TxMeta [bls AMT, secpk AMT], legacy AMTs of links
 *                         to Message / SignedMessage blocks
 *   ParentMessageReceipts a legacy AMT of receipts [exit, return, gas,
 *                         events root | null] of the parent tipset's
 *                         messages, some with an events AMT (bitwidth 5)
 *   ParentStateRoot       [5, actors HAMT (bitwidth 5), info `[]`], actors
 *                         [code, head, nonce, balance, null]; the code CIDs
 *                         are raw blake2b blocks (bundles since actors v8)
 * A tipset's messages then "execute": nonces and balances of accounts
 * change in the HAMT, and one miner adds a sector to its sectors AMT
 * (bitwidth 5) and gets a new head. So consecutive state roots differ in a
 * HAMT path, a few actor values, one AMT path and one head.
 */
#include <stdio.h>
#include <string.h>

#include "chaingen.h"

static _Thread_local int oom;

typedef struct gen {
	cairn_store *store;
	chaingen_options o;
	uint64_t rng;
	cairn_hamt *actors;
	cairn_amt **sectors;      /* per miner */
	uint64_t *nonces;         /* per account */
	uint64_t *nsectors;       /* per miner */
	cairn_cid code[2];        /* account, miner */
	cairn_cid info, account_head;
	cairn_cid state;          /* the current state root */
	cairn_buf b, v;
} gen;

static uint64_t rnd(gen *g)
{
	uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void chaingen_put_head(cairn_buf *b, unsigned major, uint64_t arg)
{
	uint8_t h[9];
	size_t n;

	if (arg < 24) {
		h[0] = (uint8_t)(major << 5 | arg);
		n = 1;
	} else if (arg < 0x100) {
		h[0] = (uint8_t)(major << 5 | 24);
		h[1] = (uint8_t)arg;
		n = 2;
	} else if (arg < 0x10000) {
		h[0] = (uint8_t)(major << 5 | 25);
		h[1] = (uint8_t)(arg >> 8);
		h[2] = (uint8_t)arg;
		n = 3;
	} else if (arg < 0x100000000ull) {
		h[0] = (uint8_t)(major << 5 | 26);
		for (int i = 0; i < 4; i++)
			h[1 + i] = (uint8_t)(arg >> (24 - 8 * i));
		n = 5;
	} else {
		h[0] = (uint8_t)(major << 5 | 27);
		for (int i = 0; i < 8; i++)
			h[1 + i] = (uint8_t)(arg >> (56 - 8 * i));
		n = 9;
	}
	if (cairn_buf_append(b, h, n))
		oom = 1;
}

void chaingen_put_bytes(cairn_buf *b, const uint8_t *p, size_t n)
{
	chaingen_put_head(b, 2, n);
	if (n && cairn_buf_append(b, p, n))
		oom = 1;
}

void chaingen_put_link(cairn_buf *b, const cairn_cid *cid)
{
	chaingen_put_head(b, 6, 42);
	chaingen_put_head(b, 2, (uint64_t)cid->len + 1);
	if (cairn_buf_putc(b, 0) || cairn_buf_append(b, cid->bytes, cid->len))
		oom = 1;
}

static void put_int(cairn_buf *b, int64_t v)
{
	if (v < 0)
		chaingen_put_head(b, 1, (uint64_t)(-1 - v));
	else
		chaingen_put_head(b, 0, (uint64_t)v);
}

/* An address: protocol 0 (ID) and the uvarint. */
static void put_id_addr(cairn_buf *b, uint64_t id)
{
	uint8_t a[1 + CAIRN_VARINT_MAX];
	size_t n = 1 + cairn_varint_encode(a + 1, id);

	a[0] = 0;
	chaingen_put_bytes(b, a, n);
}

/* A positive BigInt: 0x00 and the big-endian magnitude; 0 is empty. */
static void put_bigint(cairn_buf *b, uint64_t v)
{
	uint8_t a[9];
	size_t n = 0;

	for (int i = 7; i >= 0; i--)
		if (n || (v >> (8 * i)) & 0xff)
			a[1 + n++] = (uint8_t)(v >> (8 * i));
	a[0] = 0;
	chaingen_put_bytes(b, a, n ? n + 1 : 0);
}

static void put_random(cairn_buf *b, uint64_t *rng, uint8_t prefix, size_t n)
{
	uint8_t a[200];

	a[0] = prefix;
	for (size_t i = 1; i < n; i++) {
		*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
		a[i] = (uint8_t)(*rng >> 56);
	}
	chaingen_put_bytes(b, prefix ? a : a + 1, prefix ? n : n - 1);
}

int chaingen_put(cairn_cid *out, cairn_store *store, uint64_t codec, bool sha256,
		 const cairn_buf *b)
{
	int rc;

	if (oom) {
		oom = 0;
		return CAIRN_ENOMEM;
	}
	if ((rc = cairn_cid_compute(out, 1, codec, sha256 ? CAIRN_MH_SHA2_256 : CAIRN_MH_BLAKE2B_256,
				    b->data, b->len)))
		return rc;
	return cairn_store_put(store, out, b->data, b->len);
}

int chaingen_put_header(cairn_cid *out, uint8_t *ticket_key, cairn_store *store,
			const chaingen_header *h)
{
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t rng = h->seed;
	size_t ticket_at;
	int rc;

	chaingen_put_head(&b, 4, 16);
	put_id_addr(&b, h->miner);                        /* Miner */
	chaingen_put_head(&b, 4, 1);                      /* Ticket */
	ticket_at = b.len;
	put_random(&b, &rng, 0, 97);
	chaingen_put_head(&b, 4, 2);                      /* ElectionProof */
	chaingen_put_head(&b, 0, 1);
	put_random(&b, &rng, 0, 97);
	chaingen_put_head(&b, 4, 1);                      /* BeaconEntries */
	chaingen_put_head(&b, 4, 2);
	chaingen_put_head(&b, 0, 1000000 + (uint64_t)h->height);
	put_random(&b, &rng, 0, 97);
	chaingen_put_head(&b, 4, 1);                      /* WinPoStProof */
	chaingen_put_head(&b, 4, 2);
	chaingen_put_head(&b, 0, 3);
	put_random(&b, &rng, 0, 193);
	chaingen_put_head(&b, 4, h->nparents);            /* Parents */
	for (size_t i = 0; i < h->nparents; i++)
		chaingen_put_link(&b, &h->parents[i]);
	put_bigint(&b, 1000 * (uint64_t)h->height + 7);   /* ParentWeight */
	put_int(&b, h->height);                           /* Height */
	chaingen_put_link(&b, &h->state_root);            /* ParentStateRoot */
	chaingen_put_link(&b, &h->receipts);              /* ParentMessageReceipts */
	chaingen_put_link(&b, &h->messages);              /* Messages */
	put_random(&b, &rng, 2, 97);                      /* BLSAggregate */
	chaingen_put_head(&b, 0, h->timestamp);           /* Timestamp */
	put_random(&b, &rng, 2, 97);                      /* BlockSig */
	chaingen_put_head(&b, 0, 0);                      /* ForkSignaling */
	put_bigint(&b, 100);                              /* ParentBaseFee */
	if (ticket_key && !oom)
		cairn_multihash_sum(ticket_key, CAIRN_MH_BLAKE2B_256, b.data + ticket_at + 2, 96);
	rc = chaingen_put(out, store, CAIRN_CODEC_DAG_CBOR, false, &b);
	cairn_buf_free(&b);
	return rc;
}

int chaingen_put_legacy_amt(cairn_cid *out, cairn_store *store, const uint8_t *vals, size_t len)
{
	cairn_amt_options ao = {3, CAIRN_AMT_LEGACY, CAIRN_MH_BLAKE2B_256};
	cairn_amt *amt = NULL;
	int rc;

	if ((rc = cairn_amt_new(&amt, store, &ao)))
		return rc;
	if ((!len || !(rc = cairn_amt_batch_set(amt, 0, vals, len))))
		rc = cairn_amt_flush(out, amt);
	cairn_amt_free(amt);
	return rc;
}

static int links_amt(cairn_cid *out, cairn_store *store, const cairn_cid *v, size_t n)
{
	cairn_buf b = CAIRN_BUF_INIT;
	int rc;

	for (size_t i = 0; i < n; i++)
		chaingen_put_link(&b, &v[i]);
	rc = oom ? (oom = 0, CAIRN_ENOMEM) : chaingen_put_legacy_amt(out, store, b.data, b.len);
	cairn_buf_free(&b);
	return rc;
}

int chaingen_put_txmeta(cairn_cid *out, cairn_store *store, const cairn_cid *bls, size_t nbls,
			const cairn_cid *secp, size_t nsecp)
{
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_cid r[2];
	int rc;

	if ((rc = links_amt(&r[0], store, bls, nbls)) || (rc = links_amt(&r[1], store, secp, nsecp)))
		return rc;
	chaingen_put_head(&b, 4, 2);
	chaingen_put_link(&b, &r[0]);
	chaingen_put_link(&b, &r[1]);
	rc = chaingen_put(out, store, CAIRN_CODEC_DAG_CBOR, false, &b);
	cairn_buf_free(&b);
	return rc;
}

/* ------------------------------------------------------------ the state */

static void addr_key(uint8_t *k, size_t *n, uint64_t id)
{
	k[0] = 0;
	*n = 1 + cairn_varint_encode(k + 1, id);
}

static uint64_t account_id(const gen *g, unsigned i)
{
	(void)g;
	return 1000 + i;
}

static uint64_t miner_id(const gen *g, unsigned i)
{
	return 1000 + g->o.accounts + i;
}

static int set_actor(gen *g, uint64_t id, const cairn_cid *code, const cairn_cid *head,
		     uint64_t nonce, uint64_t balance)
{
	uint8_t k[1 + CAIRN_VARINT_MAX];
	size_t kn;

	cairn_buf_clear(&g->v);
	chaingen_put_head(&g->v, 4, 5);
	chaingen_put_link(&g->v, code);
	chaingen_put_link(&g->v, head);
	chaingen_put_head(&g->v, 0, nonce);
	put_bigint(&g->v, balance);
	chaingen_put_head(&g->v, 7, 22); /* DelegatedAddress: null */
	if (oom)
		return oom = 0, CAIRN_ENOMEM;
	addr_key(k, &kn, id);
	return cairn_hamt_set(g->actors, NULL, k, kn, g->v.data, g->v.len);
}

/* A miner's head: [owner, sectors AMT root, sector count]. */
static int miner_update(gen *g, unsigned m, bool add_sector)
{
	cairn_cid root, head;
	uint8_t sealed[32];
	int rc;

	if (add_sector) {
		for (size_t i = 0; i < sizeof(sealed); i++)
			sealed[i] = (uint8_t)rnd(g);
		cairn_buf_clear(&g->v);
		chaingen_put_head(&g->v, 4, 3);
		chaingen_put_head(&g->v, 0, g->nsectors[m]);
		chaingen_put_bytes(&g->v, sealed, sizeof(sealed));
		chaingen_put_head(&g->v, 0, 1000000 + g->nsectors[m]);
		if (oom)
			return oom = 0, CAIRN_ENOMEM;
		if ((rc = cairn_amt_set(g->sectors[m], NULL, g->nsectors[m], g->v.data, g->v.len)))
			return rc;
		g->nsectors[m]++;
	}
	if ((rc = cairn_amt_flush(&root, g->sectors[m])))
		return rc;
	cairn_buf_clear(&g->b);
	chaingen_put_head(&g->b, 4, 3);
	put_id_addr(&g->b, account_id(g, m % g->o.accounts));
	chaingen_put_link(&g->b, &root);
	chaingen_put_head(&g->b, 0, g->nsectors[m]);
	if ((rc = chaingen_put(&head, g->store, CAIRN_CODEC_DAG_CBOR, false, &g->b)))
		return rc;
	return set_actor(g, miner_id(g, m), &g->code[1], &head, 0, 1000000 * (m + 1));
}

static int state_flush(gen *g)
{
	cairn_cid hamt;
	int rc;

	if ((rc = cairn_hamt_flush(&hamt, g->actors)))
		return rc;
	cairn_buf_clear(&g->b);
	chaingen_put_head(&g->b, 4, 3);
	chaingen_put_head(&g->b, 0, 5);
	chaingen_put_link(&g->b, &hamt);
	chaingen_put_link(&g->b, &g->info);
	return chaingen_put(&g->state, g->store, CAIRN_CODEC_DAG_CBOR, false, &g->b);
}

static int state_init(gen *g)
{
	cairn_amt_options ao = {5, CAIRN_AMT_V3, CAIRN_MH_BLAKE2B_256};
	static const char *const names[2] = {"fil/8/account", "fil/8/storageminer"};
	int rc;

	for (int i = 0; i < 2; i++) {
		cairn_buf_clear(&g->b);
		/* A stand-in for the actor's wasm: "\0asm" and its name. */
		if (cairn_buf_append(&g->b, "\0asm\1\0\0\0", 8) || cairn_buf_puts(&g->b, names[i]))
			return CAIRN_ENOMEM;
		if ((rc = chaingen_put(&g->code[i], g->store, CAIRN_CODEC_RAW, false, &g->b)))
			return rc;
	}
	cairn_buf_clear(&g->b);
	chaingen_put_head(&g->b, 4, 0); /* StateInfo0 */
	if ((rc = chaingen_put(&g->info, g->store, CAIRN_CODEC_DAG_CBOR, false, &g->b)))
		return rc;
	/* An account's state, [address], one for all: a CBOR (0x51) block,
	 * which the walk writes but does not scan. */
	cairn_buf_clear(&g->b);
	chaingen_put_head(&g->b, 4, 1);
	put_id_addr(&g->b, 99);
	if ((rc = chaingen_put(&g->account_head, g->store, CAIRN_CODEC_CBOR, false, &g->b)))
		return rc;
	if ((rc = cairn_hamt_new(&g->actors, g->store, NULL)))
		return rc;
	for (unsigned i = 0; i < g->o.accounts; i++)
		if ((rc = set_actor(g, account_id(g, i), &g->code[0], &g->account_head, 0,
				    1000000000ull)))
			return rc;
	for (unsigned m = 0; m < g->o.miners; m++) {
		if ((rc = cairn_amt_new(&g->sectors[m], g->store, &ao)) ||
		    (rc = miner_update(g, m, false)))
			return rc;
	}
	return state_flush(g);
}

/* ---------------------------------------------------------- the chain */

typedef struct msgref {
	uint64_t from, gas;
} msgref;

typedef struct tsblock {
	uint8_t key[32];
	cairn_cid cid;
} tsblock;

/* One block's messages: about half BLS (Message), half secp (SignedMessage). */
static int block_messages(gen *g, cairn_cid *txmeta, msgref *refs, size_t *nrefs)
{
	cairn_cid bls[64], secp[64];
	size_t nb = 0, ns = 0;
	unsigned k = g->o.max_messages ? (unsigned)(rnd(g) % (g->o.max_messages + 1)) : 0;
	int rc;

	for (unsigned i = 0; i < k && i < 64; i++) {
		unsigned from = (unsigned)(rnd(g) % g->o.accounts);
		unsigned to = (unsigned)(rnd(g) % g->o.accounts);
		bool is_bls = rnd(g) & 1;
		uint64_t rng = rnd(g);
		cairn_cid *c = is_bls ? &bls[nb++] : &secp[ns++];

		cairn_buf_clear(&g->b);
		if (!is_bls)
			chaingen_put_head(&g->b, 4, 2);
		chaingen_put_head(&g->b, 4, 10);
		chaingen_put_head(&g->b, 0, 0);
		put_id_addr(&g->b, account_id(g, to));
		put_id_addr(&g->b, account_id(g, from));
		chaingen_put_head(&g->b, 0, g->nonces[from]++);
		put_bigint(&g->b, 1 + rnd(g) % 1000);
		put_int(&g->b, 1000000 + (int64_t)(rnd(g) % 1000000));
		put_bigint(&g->b, 100000);
		put_bigint(&g->b, 1000);
		chaingen_put_head(&g->b, 0, 0);
		chaingen_put_bytes(&g->b, NULL, 0);
		if (!is_bls)
			put_random(&g->b, &rng, 1, 66);
		if ((rc = chaingen_put(c, g->store, CAIRN_CODEC_DAG_CBOR, false, &g->b)))
			return rc;
		refs[*nrefs].from = from;
		refs[*nrefs].gas = 500000 + rnd(g) % 400000;
		(*nrefs)++;
	}
	return chaingen_put_txmeta(txmeta, g->store, bls, nb, secp, ns);
}

/* The receipts of the parent tipset's messages, in their order. */
static int receipts(gen *g, cairn_cid *out, const msgref *refs, size_t n)
{
	cairn_amt_options eo = {5, CAIRN_AMT_V3, CAIRN_MH_BLAKE2B_256};
	cairn_buf vals = CAIRN_BUF_INIT;
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		bool events = g->o.events_one_in && rnd(g) % g->o.events_one_in == 0;
		cairn_cid ev;

		if (events) {
			cairn_amt *amt = NULL;

			cairn_buf_clear(&g->v);
			chaingen_put_head(&g->v, 4, 2);                 /* ActorEvent */
			chaingen_put_head(&g->v, 0, account_id(g, (unsigned)refs[i].from));
			chaingen_put_head(&g->v, 4, 1);
			chaingen_put_head(&g->v, 4, 4);                 /* EventEntry */
			chaingen_put_head(&g->v, 0, 3);
			chaingen_put_head(&g->v, 3, 1);
			if (cairn_buf_putc(&g->v, 't'))
				oom = 1;
			chaingen_put_head(&g->v, 0, 0x55);
			chaingen_put_bytes(&g->v, (const uint8_t *)"transfer", 8);
			if (oom)
				rc = (oom = 0, CAIRN_ENOMEM);
			else if (!(rc = cairn_amt_new(&amt, g->store, &eo)) &&
				 !(rc = cairn_amt_set(amt, NULL, 0, g->v.data, g->v.len)))
				rc = cairn_amt_flush(&ev, amt);
			cairn_amt_free(amt);
		}
		chaingen_put_head(&vals, 4, 4);
		chaingen_put_head(&vals, 0, 0);
		chaingen_put_bytes(&vals, NULL, 0);
		chaingen_put_head(&vals, 0, refs[i].gas);
		if (events)
			chaingen_put_link(&vals, &ev);
		else
			chaingen_put_head(&vals, 7, 22);
	}
	if (!rc)
		rc = oom ? (oom = 0, CAIRN_ENOMEM) : chaingen_put_legacy_amt(out, g->store, vals.data,
									     vals.len);
	cairn_buf_free(&vals);
	return rc;
}

/* The tipset's messages change the state: nonces and balances of their
 * senders, and one miner's sectors. */
static int execute(gen *g, const msgref *refs, size_t n, int64_t height)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		unsigned a = (unsigned)refs[i].from;

		if ((rc = set_actor(g, account_id(g, a), &g->code[0], &g->account_head,
				    g->nonces[a], 1000000000ull - refs[i].gas)))
			return rc;
	}
	if ((rc = miner_update(g, (unsigned)((uint64_t)height % g->o.miners), true)))
		return rc;
	return state_flush(g);
}

int chaingen_run(chaingen_result *out, cairn_store *store, const chaingen_options *opts)
{
	gen g;
	tsblock ts[CHAINGEN_MAX_BLOCKS];
	cairn_cid parents[CHAINGEN_MAX_BLOCKS], gparent, txmeta, rcpt;
	msgref *prev = NULL, *cur = NULL;
	size_t nparents = 0, nprev = 0, cap;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&g, 0, sizeof(g));
	g.store = store;
	g.o = *opts;
	g.rng = opts->seed;
	if (g.o.max_blocks < 1 || g.o.max_blocks > CHAINGEN_MAX_BLOCKS || g.o.accounts < 2 ||
	    g.o.miners < 1 || g.o.max_messages > 64 || g.o.epochs < 1)
		return cairn_error_set(CAIRN_EINVAL, "chaingen: bad options");
	cap = (size_t)CHAINGEN_MAX_BLOCKS * 64;
	g.sectors = cairn_calloc(g.o.miners, sizeof(*g.sectors));
	g.nsectors = cairn_calloc(g.o.miners, sizeof(*g.nsectors));
	g.nonces = cairn_calloc(g.o.accounts, sizeof(*g.nonces));
	prev = cairn_malloc(cap * sizeof(msgref));
	cur = cairn_malloc(cap * sizeof(msgref));
	if (!g.sectors || !g.nsectors || !g.nonces || !prev || !cur) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	if ((rc = state_init(&g)))
		goto out;
	/* Genesis: its parent is a sha2-256 DAG-CBOR block, as on mainnet. */
	cairn_buf_clear(&g.b);
	chaingen_put_head(&g.b, 3, 14);
	if (cairn_buf_append(&g.b, "genesis ticket", 14))
		oom = 1;
	if ((rc = chaingen_put(&gparent, store, CAIRN_CODEC_DAG_CBOR, true, &g.b)) ||
	    (rc = chaingen_put_txmeta(&txmeta, store, NULL, 0, NULL, 0)) ||
	    (rc = chaingen_put_legacy_amt(&rcpt, store, NULL, 0)))
		goto out;
	{
		chaingen_header h = {&gparent, 1, 0, g.state, rcpt, txmeta, 0, 1598306400, rnd(&g)};

		if ((rc = chaingen_put_header(&parents[0], NULL, store, &h)))
			goto out;
		nparents = 1;
		out->tipsets = out->headers = 1;
	}
	for (int64_t height = 1; height < g.o.epochs; height++) {
		size_t nb, ncur = 0;

		if (g.o.null_one_in && height + 1 < g.o.epochs && rnd(&g) % g.o.null_one_in == 0) {
			out->nulls++;
			continue;
		}
		if ((rc = receipts(&g, &rcpt, prev, nprev)))
			goto out;
		nb = 1 + (size_t)(rnd(&g) % g.o.max_blocks);
		for (size_t i = 0; i < nb; i++) {
			chaingen_header h = {parents, nparents, height, g.state, rcpt, {0},
					     miner_id(&g, (unsigned)(i % g.o.miners)),
					     1598306400 + 30 * (uint64_t)height, rnd(&g)};
			tsblock t;
			size_t j;

			if ((rc = block_messages(&g, &h.messages, cur, &ncur)) ||
			    (rc = chaingen_put_header(&t.cid, t.key, store, &h)))
				goto out;
			/* Insertion in ticket order (blake2b of the VRF proof). */
			for (j = i; j > 0 && memcmp(ts[j - 1].key, t.key, 32) > 0; j--)
				ts[j] = ts[j - 1];
			ts[j] = t;
		}
		for (size_t i = 0; i < nb; i++)
			parents[i] = ts[i].cid;
		nparents = nb;
		out->tipsets++;
		out->headers += nb;
		out->messages += ncur;
		out->height = height;
		/* The state after the head is in no header: not made. */
		if (height + 1 < g.o.epochs && (rc = execute(&g, cur, ncur, height)))
			goto out;
		memcpy(prev, cur, ncur * sizeof(msgref));
		nprev = ncur;
	}
	memcpy(out->head, parents, nparents * sizeof(cairn_cid));
	out->nhead = nparents;
out:
	cairn_hamt_free(g.actors);
	for (unsigned m = 0; g.sectors && m < g.o.miners; m++)
		cairn_amt_free(g.sectors[m]);
	cairn_free(g.sectors);
	cairn_free(g.nsectors);
	cairn_free(g.nonces);
	cairn_free(prev);
	cairn_free(cur);
	cairn_buf_free(&g.b);
	cairn_buf_free(&g.v);
	return rc;
}
