/* textout.c — Python-compatible float text, CSV/JSON quoting, and
 * write-to-temporary-then-rename. */
#include "textout.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Shortest round-trip digits of a finite non-zero |v|: writes the digits
 * (no point) to digits and returns the decimal exponent of the first one. */
static int shortest_digits(double v, char *digits)
{
    char tmp[40];
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp is "d.ddde[+-]xx": collect the digits, drop trailing zeros */
    char *e = strchr(tmp, 'e');
    int n = 0;
    for (char *p = tmp; p < e; p++)
        if (*p != '.')
            digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = 0;
    return atoi(e + 1);
}

/* Python's float_repr_style 'short' rule: positional for -4 <= exp < 16. */
static void place_point(char *out, const char *digits, int exp)
{
    int n = (int)strlen(digits);
    if (exp < -4 || exp >= 16) {
        out += sprintf(out, "%c", digits[0]);
        if (n > 1)
            out += sprintf(out, ".%s", digits + 1);
        sprintf(out, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    } else if (exp < 0) { /* 0.000ddd */
        out += sprintf(out, "0.");
        for (int i = 0; i < -exp - 1; i++)
            *out++ = '0';
        strcpy(out, digits);
    } else if (n <= exp + 1) { /* ddd000.0 */
        out += sprintf(out, "%s", digits);
        for (int i = 0; i < exp + 1 - n; i++)
            *out++ = '0';
        strcpy(out, ".0");
    } else { /* ddd.ddd */
        sprintf(out, "%.*s.%s", exp + 1, digits, digits + exp + 1);
    }
}

char *textout_pyfloat(double v, char buf[TEXTOUT_FLOAT_MAX])
{
    if (isnan(v))
        return strcpy(buf, "nan");
    if (isinf(v))
        return strcpy(buf, v < 0 ? "-inf" : "inf");
    char *out = buf;
    if (signbit(v))
        *out++ = '-', v = -v;
    if (v == 0)
        return strcpy(out, "0.0"), buf;
    char digits[24];
    int exp = shortest_digits(v, digits);
    place_point(out, digits, exp);
    return buf;
}

char *textout_jsonfloat(double v, char buf[TEXTOUT_FLOAT_MAX])
{
    if (isnan(v))
        return strcpy(buf, "NaN");
    if (isinf(v))
        return strcpy(buf, v < 0 ? "-Infinity" : "Infinity");
    return textout_pyfloat(v, buf);
}

void textout_csv_field(FILE *f, const char *s, char sep)
{
    int quote = strchr(s, sep) || strpbrk(s, "\"\r\n");
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void textout_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

int textout_open(textout_file *t, const char *path, char *err, size_t err_len)
{
    return tlcl_publish_open(t, path, err, err_len) == TLCL_OK ? 0 : -1;
}

int textout_commit(textout_file *t, int ok, char *err, size_t err_len)
{
    if (!ok)
        snprintf(err, err_len, "cannot write %s: its content could not be produced", t->path);
    return tlcl_publish_commit(t, ok, err, err_len) == TLCL_OK ? 0 : -1;
}

int textout_write_all(const char *path, const char *text, char *err, size_t err_len)
{
    textout_file t;
    if (textout_open(&t, path, err, err_len))
        return -1;
    return textout_commit(&t, fputs(text, t.f) >= 0, err, err_len);
}

char *textout_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    char *text = n >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)n + 1) : NULL;
    if (text && fread(text, 1, (size_t)n, f) == (size_t)n) {
        text[n] = '\0';
        if (len)
            *len = (size_t)n;
    } else {
        free(text), text = NULL;
    }
    fclose(f);
    return text;
}
