/* chain.c: the ranged chain export (Lotus's `chain export-range`) as a
 * links callback for the parallel export, and the BlockHeader reader it needs.
 *
 * Design notes.
 *
 * The walk is Lotus's (chain/store/snapshot.go, lotus#10145): each queued
 * CID carries a task type, here the export's tag:
 *   TAG_HEADER    a block header: parents as headers; above the tail, the
 *                 messages, receipts and state root as the flags ask;
 *                 genesis: its parents and state root, always
 *   TAG_DAG       below messages and state: every link, completely
 *   TAG_RECEIPTS  below receipts: the same, but a missing block is skipped
 *                 (lotus#10535: event AMTs may be absent)
 * The roots (the head tipset) get tag 0, a header. As in Lotus the seen-set
 * is one for all types: a CID is walked once, with the type it was first
 * met with. Links are followed only to CBOR, DAG-CBOR and raw blocks, never
 * to identity CIDs (enqueueIfNew), and only DAG-CBOR blocks are scanned.
 * A header is decoded twice (once for its height, once to emit its parents
 * with the right tag): a few hundred bytes, cheaper than keeping parents.
 *
 * What differs from Lotus: the export engine's termination (no worker quits
 * early at genesis; the walk ends when no work is left anywhere), so
 * nothing is left to a single-threaded drain.
 */
#include <stdio.h>
#include <string.h>

#include "cairn/export.h"

enum { TAG_HEADER = 0, TAG_DAG = 1, TAG_RECEIPTS = 2 };

#define MAX_NEST 64

/* ------------------------------------------------- the header's CBOR */

typedef struct rd {
	const uint8_t *p;
	size_t len, off;
} rd;

static int bad(const rd *r, const char *what)
{
	return cairn_error_set(CAIRN_ECORRUPT, "chain: block header: at byte %zu: %s", r->off, what);
}

/* One head: major type and argument (definite lengths only). */
static int head(rd *r, unsigned *major, uint64_t *arg)
{
	unsigned minor, n;
	uint64_t v = 0;

	if (r->off >= r->len)
		return bad(r, "truncated");
	*major = r->p[r->off] >> 5;
	minor = r->p[r->off] & 31;
	r->off++;
	if (minor < 24) {
		*arg = minor;
		return 0;
	}
	if (minor > 27)
		return bad(r, "indefinite length or reserved head");
	n = 1u << (minor - 24);
	if (r->len - r->off < n)
		return bad(r, "truncated");
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | r->p[r->off + i];
	r->off += n;
	*arg = v;
	return 0;
}

static int skip(rd *r, int nest)
{
	unsigned major = 0;
	uint64_t arg = 0;
	int rc;

	if (nest > MAX_NEST)
		return bad(r, "nested too deep");
	if ((rc = head(r, &major, &arg)))
		return rc;
	switch (major) {
	case 2:
	case 3:
		if (arg > r->len - r->off)
			return bad(r, "string past the end");
		r->off += (size_t)arg;
		return 0;
	case 4:
	case 5:
		if (arg > r->len - r->off)
			return bad(r, "array or map past the end");
		for (uint64_t i = 0; i < arg * (major == 5 ? 2 : 1); i++)
			if ((rc = skip(r, nest + 1)))
				return rc;
		return 0;
	case 6:
		return skip(r, nest + 1);
	default:
		return 0; /* integers, simple values, floats: the head is all */
	}
}

static int link(rd *r, cairn_cid *cid, const char *what)
{
	unsigned major = 0;
	uint64_t arg = 0;
	size_t used = 0;
	int rc;

	if ((rc = head(r, &major, &arg)))
		return rc;
	if (major != 6 || arg != 42)
		return bad(r, what);
	if ((rc = head(r, &major, &arg)))
		return rc;
	if (major != 2 || arg < 2 || arg > r->len - r->off || r->p[r->off])
		return bad(r, what);
	if (cairn_cid_decode(cid, &used, r->p + r->off + 1, (size_t)arg - 1) ||
	    used != (size_t)arg - 1)
		return bad(r, what);
	r->off += (size_t)arg;
	return 0;
}

int cairn_chain_header_decode(cairn_chain_header *out, const uint8_t *p, size_t len,
			      cairn_link_fn parent_fn, void *payload)
{
	rd r = {p, len, 0};
	unsigned major = 0;
	uint64_t arg = 0, n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = head(&r, &major, &arg)))
		return rc;
	if (major != 4 || arg != 16)
		return bad(&r, "not an array of 16 fields");
	for (int f = 0; f < 5; f++) /* Miner, Ticket, ElectionProof, BeaconEntries, WinPoStProof */
		if ((rc = skip(&r, 1)))
			return rc;
	if ((rc = head(&r, &major, &n)))
		return rc;
	if (major != 4 || n > r.len - r.off)
		return bad(&r, "Parents is not an array");
	out->nparents = (size_t)n;
	for (uint64_t i = 0; i < n; i++) {
		cairn_cid parent;

		if ((rc = link(&r, &parent, "a parent is not a link")))
			return rc;
		if (parent_fn && (rc = parent_fn(&parent, payload)))
			return rc;
	}
	if ((rc = skip(&r, 1))) /* ParentWeight */
		return rc;
	if ((rc = head(&r, &major, &arg)))
		return rc;
	if ((major != 0 && major != 1) || arg > INT64_MAX)
		return bad(&r, "Height is not an int64");
	out->height = major ? -1 - (int64_t)arg : (int64_t)arg;
	if ((rc = link(&r, &out->state_root, "ParentStateRoot is not a link")) ||
	    (rc = link(&r, &out->receipts, "ParentMessageReceipts is not a link")) ||
	    (rc = link(&r, &out->messages, "Messages is not a link")) ||
	    (rc = skip(&r, 1))) /* BLSAggregate */
		return rc;
	if ((rc = head(&r, &major, &arg)))
		return rc;
	if (major != 0)
		return bad(&r, "Timestamp is not a uint64");
	out->timestamp = arg;
	for (int f = 0; f < 3; f++) /* BlockSig, ForkSignaling, ParentBaseFee */
		if ((rc = skip(&r, 1)))
			return rc;
	if (r.off != r.len)
		return bad(&r, "bytes after the header");
	return 0;
}

/* ------------------------------------------------------------- the walk */

typedef struct emitter {
	cairn_export_emit_fn emit;
	void *ctx;
	uint32_t tag;
} emitter;

/* enqueueIfNew's filter: no identity CIDs; CBOR, DAG-CBOR and raw only. */
static int emit_if(const cairn_cid *link, void *payload)
{
	emitter *e = payload;

	if (link->mh_code == CAIRN_MH_IDENTITY)
		return 0;
	if (link->codec != CAIRN_CODEC_CBOR && link->codec != CAIRN_CODEC_DAG_CBOR &&
	    link->codec != CAIRN_CODEC_RAW)
		return 0;
	return e->emit(link, e->tag, e->ctx);
}

int cairn_chain_range_links(const cairn_cid *cid, uint32_t tag, const uint8_t *data, size_t len,
			    cairn_export_emit_fn emit, void *ctx, void *payload)
{
	const cairn_chain_range *range = payload;
	emitter e = {emit, ctx, TAG_DAG};
	cairn_chain_header h;
	char str[CAIRN_CID_MAX_STRING];
	int rc;

	if (!data)
		return tag == TAG_RECEIPTS ? 0 : 1;
	if (cid->codec != CAIRN_CODEC_DAG_CBOR || cid->mh_code == CAIRN_MH_IDENTITY)
		return 0; /* a leaf */
	if (tag != TAG_HEADER) {
		e.tag = tag;
		rc = cairn_block_links(CAIRN_CODEC_DAG_CBOR, data, len, emit_if, &e);
		return rc;
	}
	if ((rc = cairn_chain_header_decode(&h, data, len, NULL, NULL)))
		goto fail;
	e.tag = h.height == 0 ? TAG_DAG : TAG_HEADER;
	if ((rc = cairn_chain_header_decode(&h, data, len, emit_if, &e)))
		goto fail;
	e.tag = TAG_DAG;
	if (h.height == 0)
		return emit_if(&h.state_root, &e); /* genesis state, always */
	if (h.height <= range->tail)
		return 0; /* below the tail only headers go on */
	if (range->messages && (rc = emit_if(&h.messages, &e)))
		return rc;
	if (range->receipts) {
		e.tag = TAG_RECEIPTS;
		if ((rc = emit_if(&h.receipts, &e)))
			return rc;
		e.tag = TAG_DAG;
	}
	if (range->stateroots && (rc = emit_if(&h.state_root, &e)))
		return rc;
	return 0;
fail:
	if (rc != CAIRN_ECORRUPT)
		return rc;
	if (cairn_cid_to_string(str, cid) < 0)
		strcpy(str, "(unprintable CID)");
	return cairn_error_prefix("%s: ", str);
}

/* ------------------------------------------------------------- helpers */

int cairn_chain_tipset_height(int64_t *height_out, cairn_store *store, const cairn_cid *head,
			      size_t nhead)
{
	cairn_buf b = CAIRN_BUF_INIT;
	char str[CAIRN_CID_MAX_STRING];
	int rc = 0;

	*height_out = 0;
	if (!nhead)
		return cairn_error_set(CAIRN_EINVAL, "chain: a tipset of no blocks");
	for (size_t i = 0; i < nhead && !rc; i++) {
		cairn_chain_header h;

		if (cairn_cid_to_string(str, &head[i]) < 0)
			strcpy(str, "(unprintable CID)");
		if ((rc = cairn_store_get(store, &b, &head[i]))) {
			if (rc == CAIRN_ENOTFOUND)
				rc = cairn_error_set(rc, "chain: block %s is not in the %s store", str,
						     cairn_store_name(store));
			break;
		}
		if ((rc = cairn_chain_header_decode(&h, b.data, b.len, NULL, NULL))) {
			rc = cairn_error_prefix("%s: ", str);
			break;
		}
		if (i && h.height != *height_out)
			rc = cairn_error_set(CAIRN_EINVAL, "chain: block %s is at height %lld, the "
					     "tipset's first at %lld", str, (long long)h.height,
					     (long long)*height_out);
		*height_out = h.height;
	}
	cairn_buf_free(&b);
	return rc;
}

int cairn_chain_snapshot_name(char *out, size_t cap, int64_t tail, int64_t head, int64_t unix_time)
{
	return snprintf(out, cap, "snapshot_%lld_%lld_%lld.car", (long long)tail, (long long)head,
			(long long)unix_time);
}

int cairn_chain_export_range(cairn_export_stats *stats_out, cairn_store *store,
			     const cairn_cid *head, size_t nhead, const cairn_chain_range *range,
			     const cairn_export_options *opts, const char *path)
{
	cairn_export_options o = CAIRN_EXPORT_OPTIONS_INIT;
	cairn_export *ex = NULL;
	int64_t height;
	int rc;

	if (stats_out)
		memset(stats_out, 0, sizeof(*stats_out));
	if (!store || !range || !path || (!head && nhead))
		return cairn_error_set(CAIRN_EINVAL, "chain: export-range: invalid argument");
	if ((rc = cairn_chain_tipset_height(&height, store, head, nhead)))
		return rc;
	if (range->tail > height)
		return cairn_error_set(CAIRN_EINVAL, "chain: the tail (%lld) is above the head (%lld)",
				       (long long)range->tail, (long long)height);
	if (opts)
		o = *opts;
	o.links = cairn_chain_range_links;
	o.links_payload = (void *)range;
	if ((rc = cairn_export_new(&ex, store, &o)))
		return rc;
	rc = cairn_export_run(stats_out, ex, head, nhead, path);
	cairn_export_free(ex);
	return rc;
}
