/* testdata.c — see testdata.h. */
#include "testdata.h"
#include "image_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

const char *const testdata_class_names[TESTDATA_CLASSES] = {"circles", "stripes", "squares"};

/* Pixel value of image i of class k at (x, y). */
static int shape(int k, int i, int salt, int x, int y)
{
    int dx = x - TESTDATA_SIDE / 2, dy = y - TESTDATA_SIDE / 2;
    if (k == 0)
        return (dx * dx + dy * dy) % (40 + i + salt) < 20 ? 230 : 30;
    if (k == 1)
        return ((x + i + salt) / 3) % 2 ? 220 : 40;
    return (abs(dx) < 6 + i % 4 && abs(dy) < 6 + salt % 3) ? 200 : 50;
}

void testdata_shapes(const char *dir, int per_class, int salt)
{
    enum { S = TESTDATA_SIDE };
    unsigned char px[S * S * 3];
    char cls[1024], path[1200];
    mkdir(dir, 0755);
    for (int k = 0; k < TESTDATA_CLASSES; k++) {
        snprintf(cls, sizeof cls, "%s/%s", dir, testdata_class_names[k]);
        mkdir(cls, 0755);
        for (int i = 0; i < per_class; i++) {
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    for (int c = 0; c < 3; c++)
                        px[(y * S + x) * 3 + c] = (unsigned char)(shape(k, i, salt, x, y) + 7 * c + i);
            snprintf(path, sizeof path, "%s/img%02d.png", cls, i);
            image_write_rgb(path, S, S, px, NULL, 0);
        }
    }
}
