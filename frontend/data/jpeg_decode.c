/* jpeg_decode.c — see jpeg_decode.h. libjpeg-turbo's libjpeg API (not
 * TurboJPEG's): it is the API TensorFlow calls (tensorflow/core/lib/jpeg/
 * jpeg_mem.cc), so the same choices give the same pixels. */
#include "jpeg_decode.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#ifndef LIBJPEG_TURBO_VERSION
#error "tlcl decodes JPEG with libjpeg-turbo (Debian: libjpeg62-turbo-dev, installed by tools/setup.sh)"
#endif

/* One decode's state. libjpeg's callbacks receive only the decompressor,
 * so the error manager comes first and the callbacks find the rest
 * through cinfo->err. */
typedef struct jpeg_job {
    struct jpeg_error_mgr err;
    struct jpeg_progress_mgr progress;
    jmp_buf escape;
    char reason[JMSG_LENGTH_MAX + 64];
    /* volatile: written after setjmp, freed after the longjmp */
    unsigned char *volatile rgb;
    unsigned char *volatile cmyk_row;
} jpeg_job;

/* libjpeg's default error_exit calls exit(); this one returns to
 * tlcl_jpeg_decode with libjpeg's message. */
static void escape_on_error(j_common_ptr cinfo)
{
    jpeg_job *job = (jpeg_job *)cinfo->err;
    cinfo->err->format_message(cinfo, job->reason);
    longjmp(job->escape, 1);
}

/* Warnings (level -1) are not printed. The end of the data in the middle
 * of the image is an error, as in TensorFlow (libjpeg would go on with a
 * grey rest); other damage is decoded as libjpeg and TensorFlow decode it. */
static void on_message(j_common_ptr cinfo, int level)
{
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        escape_on_error(cinfo);
}

/* Called between scans and rows: refuses the scan past the bound. */
static void limit_scans(j_common_ptr cinfo)
{
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > TLCL_JPEG_MAX_SCANS) {
        jpeg_job *job = (jpeg_job *)cinfo->err;
        snprintf(job->reason, sizeof job->reason, "more than %d scans: a real JPEG has about ten",
                 TLCL_JPEG_MAX_SCANS);
        longjmp(job->escape, 1);
    }
}

int tlcl_jpeg_signature(const unsigned char *data, size_t len)
{
    return len >= 2 && data[0] == 0xFF && data[1] == 0xD8;
}

/* TensorFlow's CMYK to RGB (jpeg_mem.cc): with an Adobe marker the file
 * holds inverted CMYK (Photoshop's), without one plain CMYK. */
static void cmyk_to_rgb(const unsigned char *cmyk, unsigned char *rgb, size_t w, int adobe)
{
    for (size_t i = 0; i < w; i++) {
        int k = cmyk[4 * i + 3];
        for (int c = 0; c < 3; c++) {
            int v = cmyk[4 * i + c];
            rgb[3 * i + c] = (unsigned char)(adobe ? k * v / 255 : (255 - k) * (255 - v) / 255);
        }
    }
}

/* From the header to the last row; any libjpeg error longjmps to the
 * caller. Returns 0, or -1 with err set (the pixel limit, no memory). */
static int decode_rows(j_decompress_ptr cinfo, jpeg_job *job, const char *name, long long max_pixels,
                       tlcl_image *img, char *err, size_t err_len)
{
    jpeg_read_header(cinfo, TRUE);
    if (tlcl_image_size_problem(name, (long long)cinfo->image_width, (long long)cinfo->image_height, max_pixels,
                                err, err_len))
        return -1;
    int cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_RGB; /* grey is replicated by libjpeg */
    cinfo->dct_method = JDCT_IFAST;                      /* TensorFlow's default */
    cinfo->do_fancy_upsampling = TRUE;
    jpeg_start_decompress(cinfo);
    size_t w = cinfo->output_width, h = cinfo->output_height;
    job->rgb = malloc(w * h * 3);
    job->cmyk_row = cmyk ? malloc(w * 4) : NULL;
    if (!job->rgb || (cmyk && !job->cmyk_row)) {
        snprintf(err, err_len, "%s: out of memory decoding a JPEG of %zu x %zu pixels", name, w, h);
        return -1;
    }
    while (cinfo->output_scanline < h) {
        unsigned char *out = job->rgb + (size_t)cinfo->output_scanline * w * 3;
        JSAMPROW row = cmyk ? job->cmyk_row : out;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) { /* a memory source never suspends; still */
            snprintf(err, err_len, "%s: cannot decode JPEG (no data for row %u of %zu)", name,
                     cinfo->output_scanline, h);
            return -1;
        }
        if (cmyk)
            cmyk_to_rgb(job->cmyk_row, out, w, cinfo->saw_Adobe_marker);
    }
    img->w = (int)w, img->h = (int)h, img->rgb = job->rgb;
    job->rgb = NULL;
    return 0;
}

int tlcl_jpeg_decode(const unsigned char *data, size_t len, const char *name, long long max_pixels,
                     tlcl_image *img, char *err, size_t err_len)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_job job;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&job, 0, sizeof job);
    memset(img, 0, sizeof *img);
    cinfo.err = jpeg_std_error(&job.err);
    job.err.error_exit = escape_on_error;
    job.err.emit_message = on_message;
    job.progress.progress_monitor = limit_scans;
    int rc = -1;
    if (setjmp(job.escape)) {
        snprintf(err, err_len, "%s: cannot decode JPEG (%s)", name, job.reason);
    } else {
        jpeg_create_decompress(&cinfo);
        cinfo.progress = &job.progress;
        jpeg_mem_src(&cinfo, data, (unsigned long)len);
        rc = decode_rows(&cinfo, &job, name, max_pixels, img, err, err_len);
    }
    /* no jpeg_finish_decompress: what follows the last row (EOI) does not
     * change the pixels, and TensorFlow ignores it too */
    jpeg_destroy_decompress(&cinfo);
    free(job.rgb);
    free(job.cmyk_row);
    return rc;
}
