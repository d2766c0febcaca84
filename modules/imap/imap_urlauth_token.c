/*
 * imap_urlauth_token.c - the token of URLAUTH's INTERNAL mechanism (RFC
 * 4467 7): HMAC-SHA1 (RFC 2104) of the rump URL under the mailbox
 * access key (storage 1.7 access_key, 256 random bits), in lower-case
 * hex: 40 digits, above the 128 bits (32 digits) enc-urlauth needs.
 * RFC 4467 leaves the algorithm to the server and recommends HMAC-SHA1;
 * SHA-1's collisions do not touch HMAC's use as a MAC.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "imap_url.h"

int
imap_urlauth_token(const unsigned char *key, size_t keylen,
                   const char *rump, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (HMAC(EVP_sha1(), key, (int)keylen, (const unsigned char *)rump,
	         len, md, &mdlen) == NULL ||
	    mdlen * 2 != IMAP_URLAUTH_TOKEN_HEX)
		return -1;
	for (i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[2 * mdlen] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

int
imap_urlauth_verify(const unsigned char *key, size_t keylen,
                    const char *rump, size_t len, const char *token,
                    size_t tlen)
{
	char want[IMAP_URLAUTH_TOKEN_HEX + 1], got[IMAP_URLAUTH_TOKEN_HEX];
	size_t i;
	int ok;

	/* The length is no secret: every token has the same. */
	if (tlen != IMAP_URLAUTH_TOKEN_HEX ||
	    imap_urlauth_token(key, keylen, rump, len, want) < 0)
		return 0;
	/* Lower case without a branch on the octets (HEXDIG is
	 * case-insensitive); a non-hex octet only makes a mismatch. */
	for (i = 0; i < tlen; i++)
		got[i] = (char)(token[i] |
		                (((unsigned)(token[i] - 'A') < 6u) << 5));
	ok = CRYPTO_memcmp(want, got, IMAP_URLAUTH_TOKEN_HEX) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

/* The decoy key: made once per process, on whichever job thread asks
 * first.  Were RAND_bytes to fail it stays zero: a token made for it
 * is never accepted anyway (the caller ignores the answer). */
static unsigned char dummy_key[POSTERN_ACCESS_KEY_LEN];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
dummy_make(void)
{
	if (RAND_bytes(dummy_key, sizeof(dummy_key)) != 1)
		memset(dummy_key, 0, sizeof(dummy_key));
}

const unsigned char *
imap_urlauth_dummy_key(void)
{
	pthread_once(&dummy_once, dummy_make);
	return dummy_key;
}
