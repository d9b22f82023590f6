/* image_write.h — pictures to files: an RGB buffer encoded by
 * stb_image_write as JPEG (.jpg/.jpeg, quality 90) or PNG (.png), written to
 * a temporary name and renamed into place. stb's implementation lives in
 * image_write.c alone (built without UBSan's shift check: stb's JPEG bit
 * writer shifts a signed int past its sign bit, harmlessly). */
#ifndef TLCL_IMAGE_WRITE_H
#define TLCL_IMAGE_WRITE_H

#include <stddef.h>

/* rgb: h rows of w pixels, 3 bytes each, top row first. Returns 0, or -1
 * with a message in err (unknown extension, I/O). */
int image_write_rgb(const char *path, int w, int h, const unsigned char *rgb, char *err, size_t err_len);

#endif
