/*
 * mime_date.c - RFC 5322 date-time (section 3.3) with the obsolete forms
 * of section 4.3: two- and three-digit years, alphabetic zones, CFWS
 * between the tokens, no seconds, and a missing day of week or zone.
 */
#include <string.h>
#include <strings.h>

#include "mime.h"

static int
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static int
is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Up to `max` digits; -1 if none. */
static int
number(const char *s, size_t len, size_t *i, int max, int *ndigits)
{
	int v = 0, n = 0;

	while (*i < len && is_digit(s[*i]) && n < max) {
		v = v * 10 + (s[*i] - '0');
		(*i)++;
		n++;
	}
	if (ndigits != NULL)
		*ndigits = n;
	return n > 0 ? v : -1;
}

static size_t
word(const char *s, size_t len, size_t i)
{
	size_t start = i;

	while (i < len && is_alpha(s[i]))
		i++;
	return i - start;
}

static int
month_number(const char *s, size_t n)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	int m;

	if (n < 3)
		return -1;
	for (m = 0; m < 12; m++)
		if (strncasecmp(s, months + 3 * m, 3) == 0)
			return m + 1;
	return -1;
}

/* Minutes east of UTC of an obsolete zone name (RFC 5322 4.3); military
 * letters are "-0000" (unknown), as RFC 5322 says to treat them. */
static int
zone_name(const char *s, size_t n)
{
	static const struct {
		const char *name;
		int minutes;
	} zones[] = {
		{ "UT", 0 }, { "GMT", 0 }, { "UTC", 0 }, { "Z", 0 },
		{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 },
		{ "CDT", -300 }, { "MST", -420 }, { "MDT", -360 },
		{ "PST", -480 }, { "PDT", -420 },
	};
	size_t i;

	for (i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		if (strlen(zones[i].name) == n &&
		    strncasecmp(s, zones[i].name, n) == 0)
			return zones[i].minutes;
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	                            30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

int
mime_parse_date(const char *s, size_t len, int64_t *when, int *tz_minutes)
{
	size_t i = 0, n;
	int day, month, year, hour, min, sec = 0, zone = 0, nd;

	mime_skip_cfws(s, len, &i);
	/* [day-of-week ","] */
	if ((n = word(s, len, i)) > 0) {
		i += n;
		mime_skip_cfws(s, len, &i);
		if (i < len && s[i] == ',')
			i++;
		mime_skip_cfws(s, len, &i);
	}
	if ((day = number(s, len, &i, 2, NULL)) < 1 || day > 31)
		return -1;
	mime_skip_cfws(s, len, &i);
	if (i < len && s[i] == '-')   /* "1-Jan-2024" occurs */
		i++;
	n = word(s, len, i);
	if ((month = month_number(s + i, n)) < 0)
		return -1;
	i += n;
	mime_skip_cfws(s, len, &i);
	if (i < len && s[i] == '-')
		i++;
	if ((year = number(s, len, &i, 4, &nd)) < 0)
		return -1;
	if (nd == 2)
		year += year < 50 ? 2000 : 1900;   /* RFC 5322 4.3 */
	else if (nd == 3)
		year += 1900;
	mime_skip_cfws(s, len, &i);
	if ((hour = number(s, len, &i, 2, NULL)) < 0 || hour > 23)
		return -1;
	mime_skip_cfws(s, len, &i);
	if (i >= len || s[i] != ':')
		return -1;
	i++;
	mime_skip_cfws(s, len, &i);
	if ((min = number(s, len, &i, 2, NULL)) < 0 || min > 59)
		return -1;
	mime_skip_cfws(s, len, &i);
	if (i < len && s[i] == ':') {
		i++;
		mime_skip_cfws(s, len, &i);
		if ((sec = number(s, len, &i, 2, NULL)) < 0 || sec > 60)
			return -1;
		mime_skip_cfws(s, len, &i);
	}
	if (i < len && (s[i] == '+' || s[i] == '-')) {
		int sign = s[i] == '-' ? -1 : 1, hhmm;

		i++;
		if ((hhmm = number(s, len, &i, 4, &nd)) < 0 || nd != 4 ||
		    hhmm % 100 > 59)
			return -1;
		zone = sign * (hhmm / 100 * 60 + hhmm % 100);
	} else if ((n = word(s, len, i)) > 0) {
		zone = zone_name(s + i, n);
	}
	if (day > days_in_month(year, month))
		return -1;
	*when = days_from_civil(year, month, day) * 86400 + hour * 3600 +
	        min * 60 + sec - (int64_t)zone * 60;
	if (tz_minutes != NULL)
		*tz_minutes = zone;
	return 0;
}
