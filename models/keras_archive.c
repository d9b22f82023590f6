/* keras_archive.c — a `.keras` archive around a Keras 3 weights file: the
 * zip Keras's model.load_weights("x.keras") opens, holding
 * model.weights.h5 and a metadata.json. It has no config.json (tlcl's
 * model is not a Keras model config), so keras.models.load_model cannot
 * rebuild it; load_weights into the model keras_export.c describes can.
 * Entries are stored (method 0), as Keras stores its own. */
#include "keras_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct zip_entry {
    const char *name;
    const void *data;
    size_t size;
    uint32_t crc;
    size_t local; /* offset of its local header */
} zip_entry;

static unsigned char *put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    return p + 2;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    return put16(put16(p, v & 0xffff), v >> 16);
}

/* The fields a local and a central header share, from "version needed". */
static unsigned char *common_fields(unsigned char *p, const zip_entry *e)
{
    p = put16(p, 20);   /* version needed: 2.0 */
    p = put16(p, 0);    /* flags */
    p = put16(p, 0);    /* stored */
    p = put16(p, 0);    /* time 00:00 */
    p = put16(p, 0x21); /* date 1980-01-01 */
    p = put32(p, e->crc);
    p = put32(p, (uint32_t)e->size);
    p = put32(p, (uint32_t)e->size);
    p = put16(p, (unsigned)strlen(e->name));
    return put16(p, 0); /* extra field length */
}

unsigned char *kw_keras_archive(const void *weights, size_t weights_size, const char *metadata, size_t *out_size)
{
    zip_entry e[2] = {{"metadata.json", metadata, strlen(metadata), 0, 0}, {"model.weights.h5", weights, weights_size, 0, 0}};
    if (weights_size > 0xfffffff0u) /* no zip64: Keras's own archives of such size would need it */
        return NULL;
    size_t total = 22;
    for (int i = 0; i < 2; i++) {
        e[i].crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), e[i].data, (uInt)e[i].size);
        total += 30 + 46 + 2 * strlen(e[i].name) + e[i].size;
    }
    unsigned char *zip = malloc(total), *p = zip;
    if (!zip)
        return NULL;
    for (int i = 0; i < 2; i++) {
        e[i].local = (size_t)(p - zip);
        p = common_fields(put32(p, 0x04034b50), &e[i]);
        memcpy(p, e[i].name, strlen(e[i].name)), p += strlen(e[i].name);
        memcpy(p, e[i].data, e[i].size), p += e[i].size;
    }
    size_t central = (size_t)(p - zip);
    for (int i = 0; i < 2; i++) {
        p = common_fields(put16(put32(p, 0x02014b50), 20), &e[i]); /* made by: 2.0 */
        p = put16(put16(put16(p, 0), 0), 0);                       /* comment, disk, internal attributes */
        p = put32(put32(p, 0), (uint32_t)e[i].local);              /* external attributes, offset */
        memcpy(p, e[i].name, strlen(e[i].name)), p += strlen(e[i].name);
    }
    size_t central_size = (size_t)(p - zip) - central;
    p = put16(put16(put32(p, 0x06054b50), 0), 0); /* this disk, the central directory's disk */
    p = put16(put16(p, 2), 2);
    p = put16(put32(put32(p, (uint32_t)central_size), (uint32_t)central), 0);
    *out_size = (size_t)(p - zip);
    return zip;
}
