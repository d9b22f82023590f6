/* utf8.c — where a string stops being UTF-8. tlcl writes names it does not
 * choose (class folders, image file names) into JSON: checkpoint headers,
 * split files, class-weight files. JSON text is UTF-8 (RFC 8259) and cJSON
 * copies bytes as they are, so a Latin-1 folder name would make a file that
 * no strict parser reads back; such names are refused where they enter. */
#include "model.h"

#include <stdio.h>

/* Length of the UTF-8 sequence at s (1-4), or 0 when it is not one: a bad
 * lead byte, a missing continuation, an overlong form, a surrogate or a code
 * point above U+10FFFF (Unicode 15, table 3-7). */
static int sequence_length(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4)
        return 0;
    unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (int i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

long tlcl_utf8_invalid_at(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (long i = 0; p[i];) {
        int n = sequence_length(p + i);
        if (n == 0)
            return i;
        i += n;
    }
    return -1;
}

void tlcl_utf8_printable(char *dst, size_t len, const char *s)
{
    size_t off = 0;
    const unsigned char *p = (const unsigned char *)s;
    if (len)
        dst[0] = '\0';
    for (size_t i = 0; p[i] && off + 5 < len;) {
        int n = sequence_length(p + i);
        if (n == 0) {
            off += (size_t)snprintf(dst + off, len - off, "\\x%02X", p[i]);
            i++;
            continue;
        }
        for (int k = 0; k < n; k++)
            dst[off++] = (char)p[i++];
        dst[off] = '\0';
    }
}
