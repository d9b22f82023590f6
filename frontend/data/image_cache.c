/* image_cache.c — see image_cache.h. The file is header + status bytes +
 * pixels; workers claim images with a shared counter and write disjoint
 * slices of the mapping, so no lock guards the pixels. */
#include "image_cache.h"
#include "image_load.h"
#include "tlcl_cl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "TLCLIMG1"
enum { HEADER_BYTES = 64 };

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t cache_key(const char *const *files, int n, int h, int w, int crop)
{
    uint64_t k = 0xcbf29ce484222325ULL;
    int dims[3] = {h, w, crop};
    k = fnv(k, dims, sizeof dims);
    for (int i = 0; i < n; i++) {
        struct stat st;
        long long meta[2] = {-1, -1};
        if (stat(files[i], &st) == 0)
            meta[0] = (long long)st.st_size, meta[1] = (long long)st.st_mtime;
        k = fnv(k, files[i], strlen(files[i]) + 1);
        k = fnv(k, meta, sizeof meta);
    }
    return k;
}

static int map_file(tlcl_image_cache *c, uint64_t key, char *err, size_t len)
{
    size_t pixels = (size_t)c->n * c->h * c->w * 3;
    c->map_len = HEADER_BYTES + (size_t)c->n + pixels;
    int fd = open(c->path, O_RDWR | O_CREAT, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, len, "cannot open the image cache %s: %s%s", c->path, strerror(errno), tlcl_io_hint(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int fresh = (size_t)st.st_size != c->map_len;
    if (fresh && ftruncate(fd, 0) != 0) {
        snprintf(err, len, "cannot size the image cache %s: %s", c->path, strerror(errno));
        close(fd);
        return -1;
    }
    /* the blocks are reserved before the mapping is written: a file system
     * that fills up then fails here, with a message, not with SIGBUS on a
     * write through the mapping (also when a sparse cache of the right size
     * is there from an older tlcl) */
    int rc = posix_fallocate(fd, 0, (off_t)c->map_len);
    if (rc != 0) {
        snprintf(err, len,
                 "cannot reserve %.1f MiB for the image cache %s: %s (free space on that file system, or set "
                 "train.data_dir.cache_dir to a folder on one with room)",
                 c->map_len / 1048576.0, c->path, strerror(rc));
        if (fresh)
            unlink(c->path); /* no empty cache of the wrong size is left behind */
        close(fd);
        return -1;
    }
    c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (c->map == MAP_FAILED) {
        c->map = NULL;
        snprintf(err, len, "cannot map the image cache %s: %s", c->path, strerror(errno));
        return -1;
    }
    if (fresh || memcmp(c->map, CACHE_MAGIC, 8) != 0 || memcmp(c->map + 8, &key, 8) != 0) {
        memset(c->map, 0, HEADER_BYTES + (size_t)c->n); /* every image still to decode */
        memcpy(c->map, CACHE_MAGIC, 8);
        memcpy(c->map + 8, &key, 8);
    }
    c->status = c->map + HEADER_BYTES;
    c->pixels = c->status + c->n;
    return 0;
}

int tlcl_image_cache_open(tlcl_image_cache *c, const char *dir, const char *const *files, int n, int h, int w,
                          int crop_to_aspect, char *err, size_t err_len)
{
    memset(c, 0, sizeof *c);
    c->n = n, c->h = h, c->w = w, c->crop_to_aspect = crop_to_aspect, c->files = files;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create the image cache directory %s: %s", dir, strerror(errno));
        return -1;
    }
    uint64_t key = cache_key(files, n, h, w, crop_to_aspect);
    snprintf(c->path, sizeof c->path, "%s/images-%dx%d-%016llx.cache", dir, h, w, (unsigned long long)key);
    return map_file(c, key, err, err_len);
}

/* Keras smart_resize: the largest centred crop with the target's aspect. */
static void crop_to_aspect(tlcl_image *img, int th, int tw)
{
    int ch = img->h, cw = (int)((double)img->h * tw / th);
    if (cw > img->w) {
        cw = img->w;
        ch = (int)((double)img->w * th / tw);
    }
    ch = ch < 1 ? 1 : ch > img->h ? img->h : ch;
    cw = cw < 1 ? 1 : cw;
    int y0 = (img->h - ch) / 2, x0 = (img->w - cw) / 2;
    for (int y = 0; y < ch; y++)
        memmove(img->rgb + (size_t)y * cw * 3, img->rgb + ((size_t)(y + y0) * img->w + x0) * 3, (size_t)cw * 3);
    img->h = ch, img->w = cw;
}

static int decode_one(tlcl_image_cache *c, int i, float *tmp, char *err, size_t len)
{
    tlcl_image img;
    if (tlcl_image_load_limited(c->files[i], c->max_pixels, &img, err, len) != 0)
        return -1;
    if (c->crop_to_aspect)
        crop_to_aspect(&img, c->h, c->w);
    tlcl_image_resize(&img, c->h, c->w, tmp);
    tlcl_image_free(&img);
    unsigned char *dst = c->pixels + (size_t)i * c->h * c->w * 3;
    for (size_t k = 0; k < (size_t)c->h * c->w * 3; k++)
        dst[k] = (unsigned char)lrintf(tmp[k] < 0 ? 0 : tmp[k] > 255 ? 255 : tmp[k]);
    return 0;
}

typedef struct fill_job {
    tlcl_image_cache *c;
    pthread_mutex_t lock;
    int next, done, failed, progress;
    void (*warn)(void *ctx, const char *msg);
    void *ctx;
} fill_job;

static void *fill_worker(void *arg)
{
    fill_job *j = arg;
    float *tmp = malloc((size_t)j->c->h * j->c->w * 3 * sizeof *tmp);
    char err[1200];
    for (;;) {
        pthread_mutex_lock(&j->lock);
        int i = j->next++;
        pthread_mutex_unlock(&j->lock);
        if (i >= j->c->n || !tmp)
            break;
        if (j->c->status[i] == 1)
            continue; /* unreadable ones are tried again: the limit may have been raised */
        int ok = decode_one(j->c, i, tmp, err, sizeof err) == 0;
        j->c->status[i] = ok ? 1 : 2;
        pthread_mutex_lock(&j->lock);
        j->done++;
        if (!ok) {
            j->failed++;
            if (j->warn)
                j->warn(j->ctx, err);
        }
        if (j->progress && (j->done % 200 == 0))
            fprintf(stderr, "\rdecoding images: %d", j->done);
        pthread_mutex_unlock(&j->lock);
    }
    free(tmp);
    return NULL;
}

int tlcl_image_cache_fill(tlcl_image_cache *c, int threads, int progress,
                          void (*warn)(void *ctx, const char *msg), void *ctx)
{
    fill_job j = {.c = c, .progress = progress, .warn = warn, .ctx = ctx};
    pthread_mutex_init(&j.lock, NULL);
    threads = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    pthread_t tid[64];
    int started = 0;
    for (int t = 0; t < threads; t++)
        started += pthread_create(&tid[started], NULL, fill_worker, &j) == 0;
    if (started == 0)
        fill_worker(&j);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&j.lock);
    if (progress && j.done >= 200)
        fprintf(stderr, "\rdecoding images: %d done\n", j.done);
    msync(c->map, c->map_len, MS_ASYNC);
    int unreadable = 0;
    for (int i = 0; i < c->n; i++)
        unreadable += c->status[i] == 2;
    return unreadable;
}

void tlcl_image_cache_get(const tlcl_image_cache *c, int i, float *dst)
{
    const unsigned char *src = c->pixels + (size_t)i * c->h * c->w * 3;
    for (size_t k = 0; k < (size_t)c->h * c->w * 3; k++)
        dst[k] = src[k];
}

void tlcl_image_cache_close(tlcl_image_cache *c)
{
    if (c->map)
        munmap(c->map, c->map_len);
    memset(c, 0, sizeof *c);
}
