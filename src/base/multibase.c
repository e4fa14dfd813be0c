/* multibase.c: the string encodings CIDs travel in: base16, base32 (RFC 4648,
 * lower case, no padding), base58btc and base64 (standard and URL, no padding). */
#include <string.h>

#include "cairn/base.h"

static const char b32_alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char b58_alpha[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
static const char b64_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char hex_alpha[] = "0123456789abcdef";

/* base58 works on numbers as big as the input: quadratic, so bound it.
 * CIDs and keys are far below this. */
#define B58_MAX_INPUT 4096

/* Offset of the text handed to the decoders within the caller's string
 * (1 after a multibase prefix), so messages point at the caller's character. */
static _Thread_local size_t text_off;

static int bad_char(const char *name, size_t off, char c)
{
	return cairn_error_set(CAIRN_ECORRUPT, "%s: at character %zu: '%c' is not in the alphabet",
			       name, text_off + off, (c >= 0x20 && c < 0x7f) ? c : '?');
}

/* Bit-packing codec shared by base16, base32 and base64: `bits` per symbol. */
static int encode_bits(cairn_buf *out, const char *alpha, unsigned bits,
		       const uint8_t *p, size_t n)
{
	uint32_t acc = 0;
	unsigned have = 0;
	size_t i;

	if (cairn_buf_reserve(out, (n * 8 + bits - 1) / bits))
		return out->err;
	for (i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		have += 8;
		while (have >= bits) {
			have -= bits;
			cairn_buf_putc(out, (uint8_t)alpha[(acc >> have) & ((1u << bits) - 1)]);
		}
	}
	if (have)
		cairn_buf_putc(out, (uint8_t)alpha[(acc << (bits - have)) & ((1u << bits) - 1)]);
	return out->err;
}

static int decode_bits(cairn_buf *out, const char *name, const int8_t *table,
		       unsigned bits, const char *s, size_t n)
{
	uint32_t acc = 0;
	unsigned have = 0;
	size_t i;

	if (cairn_buf_reserve(out, n * bits / 8))
		return out->err;
	for (i = 0; i < n; i++) {
		int v = table[(uint8_t)s[i]];

		if (v < 0)
			return bad_char(name, i, s[i]);
		acc = (acc << bits) | (uint32_t)v;
		have += bits;
		if (have >= 8) {
			have -= 8;
			cairn_buf_putc(out, (uint8_t)(acc >> have));
		}
	}
	/* What is left must be fewer bits than a byte, all zero: otherwise
	 * the string has a stray symbol or is not the canonical encoding. */
	if (have >= bits || (acc & ((1u << have) - 1)))
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at character %zu: not a canonical encoding (bad length or trailing bits)",
				       name, text_off + (n ? n - 1 : 0));
	return out->err;
}

static void make_table(int8_t table[256], const char *alpha, bool fold_case)
{
	size_t i;

	memset(table, -1, 256);
	for (i = 0; alpha[i]; i++) {
		table[(uint8_t)alpha[i]] = (int8_t)i;
		if (fold_case && alpha[i] >= 'a' && alpha[i] <= 'z')
			table[(uint8_t)(alpha[i] - 'a' + 'A')] = (int8_t)i;
	}
}

static int encode_b58(cairn_buf *out, const uint8_t *p, size_t n)
{
	size_t zeros = 0, size, i, j, high;
	uint8_t *digits;

	if (n > B58_MAX_INPUT)
		return cairn_error_set(CAIRN_ETOOBIG, "base58: input of %zu bytes is over %d", n, B58_MAX_INPUT);
	while (zeros < n && p[zeros] == 0)
		zeros++;
	size = (n - zeros) * 138 / 100 + 1; /* log(256) / log(58) */
	digits = cairn_calloc(1, size);
	if (!digits)
		return out->err = CAIRN_ENOMEM;
	high = size - 1;
	for (i = zeros; i < n; i++) {
		uint32_t carry = p[i];

		for (j = size - 1; j > high || carry; j--) {
			carry += 256u * digits[j];
			digits[j] = (uint8_t)(carry % 58);
			carry /= 58;
			if (j == 0)
				break;
		}
		high = j;
	}
	for (j = 0; j < size && digits[j] == 0; j++)
		;
	for (i = 0; i < zeros; i++)
		cairn_buf_putc(out, '1');
	for (; j < size; j++)
		cairn_buf_putc(out, (uint8_t)b58_alpha[digits[j]]);
	cairn_free(digits);
	return out->err;
}

static int decode_b58(cairn_buf *out, const char *s, size_t n)
{
	int8_t table[256];
	size_t zeros = 0, size, i, j;
	uint8_t *bytes;

	if (n > B58_MAX_INPUT * 2)
		return cairn_error_set(CAIRN_ETOOBIG, "base58: string of %zu characters is too long", n);
	make_table(table, b58_alpha, false);
	while (zeros < n && s[zeros] == '1')
		zeros++;
	size = (n - zeros) * 733 / 1000 + 1; /* log(58) / log(256) */
	bytes = cairn_calloc(1, size);
	if (!bytes)
		return out->err = CAIRN_ENOMEM;
	for (i = zeros; i < n; i++) {
		int v = table[(uint8_t)s[i]];
		uint32_t carry;

		if (v < 0) {
			cairn_free(bytes);
			return bad_char("base58btc", i, s[i]);
		}
		carry = (uint32_t)v;
		for (j = size; j-- > 0;) {
			carry += 58u * bytes[j];
			bytes[j] = (uint8_t)carry;
			carry >>= 8;
		}
	}
	for (j = 0; j < size && bytes[j] == 0; j++)
		;
	cairn_buf_reserve(out, zeros + size - j);
	for (i = 0; i < zeros; i++)
		cairn_buf_putc(out, 0);
	cairn_buf_append(out, bytes + j, size - j);
	cairn_free(bytes);
	return out->err;
}

int cairn_base_encode(cairn_buf *out, cairn_multibase base, const uint8_t *p, size_t n)
{
	int rc;

	switch (base) {
	case CAIRN_BASE16: rc = encode_bits(out, hex_alpha, 4, p, n); break;
	case CAIRN_BASE32: rc = encode_bits(out, b32_alpha, 5, p, n); break;
	case CAIRN_BASE64: rc = encode_bits(out, b64_alpha, 6, p, n); break;
	case CAIRN_BASE64URL: rc = encode_bits(out, b64url_alpha, 6, p, n); break;
	case CAIRN_BASE58BTC: rc = encode_b58(out, p, n); break;
	default: return cairn_error_set(CAIRN_EINVAL, "multibase: unknown base '%c'", (char)base);
	}
	if (!rc)
		rc = cairn_buf_append(out, "", 0); /* NUL even for empty input */
	return rc;
}

int cairn_base_decode(cairn_buf *out, cairn_multibase base, const char *s, size_t n)
{
	int8_t table[256];

	switch (base) {
	case CAIRN_BASE16:
		make_table(table, hex_alpha, true);
		return decode_bits(out, "base16", table, 4, s, n);
	case CAIRN_BASE32:
		make_table(table, b32_alpha, true);
		return decode_bits(out, "base32", table, 5, s, n);
	case CAIRN_BASE64:
		make_table(table, b64_alpha, false);
		return decode_bits(out, "base64", table, 6, s, n);
	case CAIRN_BASE64URL:
		make_table(table, b64url_alpha, false);
		return decode_bits(out, "base64url", table, 6, s, n);
	case CAIRN_BASE58BTC:
		return decode_b58(out, s, n);
	default:
		return cairn_error_set(CAIRN_EINVAL, "multibase: unknown base '%c'", (char)base);
	}
}

int cairn_multibase_encode(cairn_buf *out, cairn_multibase base, const uint8_t *p, size_t n)
{
	if (cairn_buf_putc(out, (uint8_t)base))
		return out->err;
	return cairn_base_encode(out, base, p, n);
}

int cairn_multibase_decode(cairn_buf *out, cairn_multibase *base_out, const char *s, size_t n)
{
	cairn_multibase base;
	int rc;

	if (n == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "multibase: empty string");
	switch (s[0]) {
	case 'f': case 'F': base = CAIRN_BASE16; break;
	case 'b': case 'B': base = CAIRN_BASE32; break;
	case 'z': base = CAIRN_BASE58BTC; break;
	case 'm': base = CAIRN_BASE64; break;
	case 'u': base = CAIRN_BASE64URL; break;
	default:
		return cairn_error_set(CAIRN_EUNSUPPORTED,
			"multibase: at character 0: unsupported prefix '%c' (cairn reads f, b, z, m, u)",
			(s[0] >= 0x20 && s[0] < 0x7f) ? s[0] : '?');
	}
	/* The upper-case prefixes promise upper-case text; mixed case is an error. */
	if (s[0] == 'B' || s[0] == 'F') {
		size_t i;
		for (i = 1; i < n; i++)
			if (s[i] >= 'a' && s[i] <= 'z')
				return cairn_error_set(CAIRN_ECORRUPT,
					"multibase: at character %zu: lower case after an upper-case prefix", i);
	} else if (base == CAIRN_BASE16 || base == CAIRN_BASE32) {
		size_t i;
		for (i = 1; i < n; i++)
			if (s[i] >= 'A' && s[i] <= 'Z')
				return cairn_error_set(CAIRN_ECORRUPT,
					"multibase: at character %zu: upper case after a lower-case prefix", i);
	}
	text_off = 1;
	rc = cairn_base_decode(out, base, s + 1, n - 1);
	text_off = 0;
	if (rc)
		return rc;
	if (base_out)
		*base_out = base;
	return 0;
}

static const struct {
	const char *name;
	cairn_multibase base;
} names[] = {
	{"base16", CAIRN_BASE16}, {"base32", CAIRN_BASE32}, {"base58btc", CAIRN_BASE58BTC},
	{"base64", CAIRN_BASE64}, {"base64url", CAIRN_BASE64URL},
};

int cairn_multibase_from_name(cairn_multibase *out, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i].name) ||
		    (strlen(name) == 1 && name[0] == (char)names[i].base)) {
			*out = names[i].base;
			return 0;
		}
	}
	if (!strcmp(name, "base58"))
		return *out = CAIRN_BASE58BTC, 0;
	return cairn_error_set(CAIRN_EINVAL,
		"unknown base '%s' (use base16, base32, base58btc, base64 or base64url)", name);
}

const char *cairn_multibase_name(cairn_multibase base)
{
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].base == base)
			return names[i].name;
	return "unknown";
}
