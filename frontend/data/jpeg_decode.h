/* jpeg_decode.h — JPEG files through libjpeg-turbo, decoded as TensorFlow's
 * tf.io.decode_jpeg and tf.io.decode_image (what Keras's
 * image_dataset_from_directory calls) decode them by default: the fast
 * integer DCT, fancy upsampling, grey to RGB by replication, CMYK and YCCK
 * to RGB with TensorFlow's formula; a truncated file is an error, other
 * damage libjpeg reports as a warning is decoded as TensorFlow does. Used by
 * image_load.c, which keeps stb_image for the other formats. */
#ifndef TLCL_JPEG_DECODE_H
#define TLCL_JPEG_DECODE_H

#include "image_load.h"

#include <stddef.h>

/* The most scans a JPEG may have (TurboJPEG's TJFLAG_LIMITSCANS bound):
 * every scan of a progressive file walks the whole image again, so a small
 * hostile file of thousands of scans would take minutes; real files have
 * about ten. */
#define TLCL_JPEG_MAX_SCANS 500

/* 1 when the data starts as a JPEG does (SOI, FF D8). */
int tlcl_jpeg_signature(const unsigned char *data, size_t len);

/* Decodes a JPEG held in memory to 8-bit RGB (name: for errors). The size
 * from the header is checked against max_pixels (tlcl_image_size_problem)
 * before anything is decompressed. Returns 0, or -1 with the reason in err;
 * libjpeg never exits the process. */
int tlcl_jpeg_decode(const unsigned char *data, size_t len, const char *name, long long max_pixels,
                     tlcl_image *img, char *err, size_t err_len);

#endif
