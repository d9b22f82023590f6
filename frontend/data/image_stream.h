/* image_stream.h — images decoded and resized ahead of the device, in
 * batches, by a background thread: while the device classifies one batch
 * the next is being decoded (`tlcl predict`). Memory is two batches of
 * pixels whatever the number of files. Unreadable files are skipped with a
 * warning naming them. */
#ifndef TLCL_IMAGE_STREAM_H
#define TLCL_IMAGE_STREAM_H

#include <stddef.h>

typedef struct tlcl_image_batch {
    const float *pixels;   /* [count, h, w, 3] raw RGB 0..255 */
    const int *file;       /* [count] index of each image in the file list */
    int count;             /* decoded images (0 when every file of the batch was unreadable) */
    int next;              /* the file index after this batch: where a resumed run starts */
} tlcl_image_batch;

typedef struct tlcl_image_stream tlcl_image_stream;

/* Streams files[first..n) at h x w, batch files at a time. files must
 * outlive the stream. Returns 0, or -1 (out of memory, or no thread). */
int tlcl_image_stream_open(tlcl_image_stream **out, const char *const *files, int n, int first, int h, int w,
                           int batch);
/* The next batch in file order, or NULL at the end. Valid until the next
 * call (the previous batch's memory is handed back to the decoder then). */
const tlcl_image_batch *tlcl_image_stream_next(tlcl_image_stream *s);
void tlcl_image_stream_close(tlcl_image_stream *s);

#endif
