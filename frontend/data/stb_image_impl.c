/* stb_image_impl.c — stb_image's implementation, alone in its file so
 * that the sanitizer builds can drop two checks for stb's code only: on a
 * damaged JPEG stream stb 2.27's bit reader shifts by a negative count
 * (stbi__grow_buffer_unsafe, UBSan "shift exponent 34") and its DC decoder
 * overflows an int multiplying by the quantizer (stbi__jpeg_decode_block);
 * both found by fuzz_image, both fixed in stb 2.28. The results are garbage
 * values of a damaged image, no memory access, and ASan still checks every
 * access.
 * Only the formats a dataset of photographs uses, and the TGA and PNM files
 * the data set reader also lists; the rest is compiled out. The checks stb
 * 2.27 lacks are in image_load.c, run before stb sees a file. */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA /* tlcl also reads .tga and .pnm .ppm .pgm (dataset_dir.c), fuzzed too */
#define STBI_ONLY_PNM
#define STBI_FAILURE_USERMSG
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
