/*
 * base64.h - the base64 alphabet (RFC 4648 section 4), for the decoders
 * of the core: strict SASL responses (sasl.c) and tolerant MIME bodies and
 * encoded words (mime_decode.c).  Each keeps its own rules for padding and
 * stray characters; the alphabet is one.
 */
#ifndef POSTERN_CORE_BASE64_H
#define POSTERN_CORE_BASE64_H

/* The 6-bit value of a base64 character, or -1 for any other octet
 * ('=' included: padding is the caller's business). */
static inline int
b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

#endif /* POSTERN_CORE_BASE64_H */
