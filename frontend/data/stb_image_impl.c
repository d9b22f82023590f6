/* stb_image_impl.c — stb_image's implementation, alone in its file with
 * the pragmas its code needs. Only the formats a dataset of photographs
 * uses, and the TGA and PNM files the data set reader also lists; the rest
 * is compiled out, JPEG too: JPEG files go to libjpeg-turbo (jpeg_decode.c),
 * after stb 2.27's JPEG decoder gave fuzz_image four memory and UB
 * findings (tests/fuzz/README.md). The checks stb 2.27 lacks for the other
 * formats are in image_load.c, run before stb sees a file. */
#define STB_IMAGE_IMPLEMENTATION
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
