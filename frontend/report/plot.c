/* plot.c — learning curves, validation curves, per-class curves, the
 * confusion matrix heat map and bar charts (see plot.h). PLplot draws into an RGBA buffer
 * through its cairo "memcairo" device, which only paints what is drawn, so
 * the buffer starts white; image_write encodes it. */
#include "plot.h"
#include "image_write.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* cmap0 entries: 0 background, 1 axes and text, 2 grid, 3.. curves
 * (matplotlib's default "tab10" colours, familiar from Keras plots). */
enum { COL_BG = 0, COL_FG = 1, COL_GRID = 2, COL_LINE0 = 3, N_LINE_COLOURS = 10 };
static const int LINE_RGB[N_LINE_COLOURS][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};

#define FONT_PX 17.0 /* text height in pixels (axis labels, legends) */
#define MARKER_SCALE 0.5 /* markers relative to the text */

typedef struct canvas {
    int w, h;
    unsigned char *rgba; /* [h][w][4], what memcairo draws into */
    PLINT stream, previous;
    double px_per_mm; /* to size margins from the font height */
} canvas;

/* ---- canvas -------------------------------------------------------------- */

static int memcairo_available(void)
{
    /* plgDevs fills the caller's arrays through pointers to them */
    const char *menu[64], *names[64], **menu_p = menu, **names_p = names;
    int n = 64;
    plgDevs(&menu_p, &names_p, &n);
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], "memcairo") == 0)
            return 1;
    return 0;
}

static void set_palette(void)
{
    plscmap0n(16);
    plscol0(COL_BG, 255, 255, 255);
    plscol0(COL_FG, 0, 0, 0);
    plscol0(COL_GRID, 220, 220, 220);
    for (int i = 0; i < N_LINE_COLOURS; i++)
        plscol0(COL_LINE0 + i, LINE_RGB[i][0], LINE_RGB[i][1], LINE_RGB[i][2]);
}

/* PLplot sizes text in mm relative to the page, so the same scale gives
 * bigger letters on bigger pictures; fixing the height in pixels keeps text
 * readable and in proportion to the fixed-size panels. */
static void set_font_px(const canvas *cv, double px) { plschr(px / cv->px_per_mm, 1.0); }

/* Height of a character at the current scale, in pixels. */
static double char_px(const canvas *cv)
{
    PLFLT def, ht;
    plgchr(&def, &ht);
    return ht * cv->px_per_mm;
}

/* The white picture, before PLplot: what is put there now (pictures)
 * stays under what PLplot draws. */
static int canvas_alloc(canvas *cv, int w, int h, char *err, size_t err_len)
{
    memset(cv, 0, sizeof *cv);
    /* without the driver plinit would ask for a device on stdin */
    if (!memcairo_available()) {
        snprintf(err, err_len, "PLplot's cairo driver is missing (install plplot-driver-cairo)");
        return -1;
    }
    cv->w = w, cv->h = h;
    cv->rgba = malloc((size_t)w * h * 4);
    if (!cv->rgba) {
        snprintf(err, err_len, "out of memory for a %dx%d picture", w, h);
        return -1;
    }
    memset(cv->rgba, 255, (size_t)w * h * 4);
    return 0;
}

/* Starts PLplot on the picture. */
static void canvas_start(canvas *cv)
{
    int w = cv->w, h = cv->h;
    plgstrm(&cv->previous);
    plmkstrm(&cv->stream);
    plsdev("memcairo");
    plscolbg(255, 255, 255);
    plsmema(w, h, cv->rgba);
    plinit();
    set_palette();
    pladv(0);
    PLFLT xmin, xmax, ymin, ymax;
    plgspa(&xmin, &xmax, &ymin, &ymax); /* the page in mm */
    cv->px_per_mm = w / (xmax - xmin);
    set_font_px(cv, FONT_PX);
}

static int canvas_begin(canvas *cv, int w, int h, char *err, size_t err_len)
{
    if (canvas_alloc(cv, w, h, err, err_len) != 0)
        return -1;
    canvas_start(cv);
    return 0;
}

/* Ends the PLplot stream and writes the picture (without alpha: JPEG has
 * none, and the background is opaque white anyway). */
static int canvas_finish(canvas *cv, const char *path, char *err, size_t err_len)
{
    plend1();
    plsstrm(cv->previous);
    unsigned char *rgb = malloc((size_t)cv->w * cv->h * 3);
    int rc = -1;
    if (!rgb)
        snprintf(err, err_len, "out of memory writing %s", path);
    else {
        for (size_t i = 0; i < (size_t)cv->w * cv->h; i++)
            memcpy(rgb + 3 * i, cv->rgba + 4 * i, 3);
        rc = image_write_rgb(path, cv->w, cv->h, rgb, err, err_len);
    }
    free(rgb), free(cv->rgba);
    cv->rgba = NULL;
    return rc;
}

/* PLplot reads '#' as its escape character; a literal one is "##". */
static void escape_text(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 3 < cap; s++) {
        if (*s == '#')
            out[n++] = '#';
        out[n++] = *s;
    }
    out[n] = 0;
}

/* ---- curves --------------------------------------------------------------- */

typedef struct range {
    double lo, hi;
} range;

static range data_range(const plot_panel *p, int use_x)
{
    range r = {INFINITY, -INFINITY};
    for (int l = 0; l < p->n_lines; l++)
        for (int i = 0; i < p->lines[l].n; i++) {
            double v = use_x ? p->lines[l].x[i] : p->lines[l].y[i];
            if (isfinite(v))
                r.lo = fmin(r.lo, v), r.hi = fmax(r.hi, v);
        }
    if (!isfinite(r.lo)) /* nothing to show: an empty unit frame */
        return (range){0, 1};
    double pad = (r.hi - r.lo) * 0.06;
    if (pad == 0) /* a flat curve still needs a visible range */
        pad = fabs(r.lo) > 0 ? fabs(r.lo) * 0.1 : 0.5;
    return (range){r.lo - pad, r.hi + pad};
}

/* Epochs are integers: ticks every 1, 2, 5, 10, ... so at most ~10 show. */
static double epoch_tick(range x)
{
    double span = x.hi - x.lo, steps[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
    for (int i = 0; i < 10; i++)
        if (span / steps[i] <= 10)
            return steps[i];
    return 0; /* let PLplot choose */
}

static void draw_line(const plot_line *ln, int colour)
{
    plcol0(colour);
    plwidth(2.5);
    for (int i = 0; i + 1 < ln->n; i++) /* segment by segment: NaN leaves a gap */
        if (isfinite(ln->y[i]) && isfinite(ln->y[i + 1])) {
            PLFLT xs[2] = {ln->x[i], ln->x[i + 1]}, ys[2] = {ln->y[i], ln->y[i + 1]};
            plline(2, xs, ys);
        }
    plschr(0, MARKER_SCALE);
    for (int i = 0; i < ln->n; i++)
        if (isfinite(ln->y[i])) {
            PLFLT x = ln->x[i], y = ln->y[i];
            plstring(1, &x, &y, "●"); /* a marker, so one epoch still shows */
        }
    plschr(0, 1.0);
    plwidth(1);
}

/* Where the curves are not: top right unless the right half of the data is
 * high in the frame (rising accuracy), then bottom right. */
static PLINT legend_position(const plot_panel *p, range x, range y)
{
    double sum = 0;
    int n = 0;
    for (int l = 0; l < p->n_lines; l++)
        for (int i = 0; i < p->lines[l].n; i++)
            if (p->lines[l].x[i] >= (x.lo + x.hi) / 2 && isfinite(p->lines[l].y[i]))
                sum += p->lines[l].y[i], n++;
    int high = n && sum / n > (y.lo + y.hi) / 2;
    return PL_POSITION_INSIDE | PL_POSITION_RIGHT | (high ? PL_POSITION_BOTTOM : PL_POSITION_TOP);
}

#define MAX_LINES 16

static void draw_legend(const plot_panel *p, range x, range y)
{
    int n = p->n_lines < MAX_LINES ? p->n_lines : MAX_LINES;
    PLINT opt[MAX_LINES], tcol[MAX_LINES], lcol[MAX_LINES], lsty[MAX_LINES], scol[MAX_LINES], snum[MAX_LINES];
    PLFLT lwid[MAX_LINES], sscale[MAX_LINES];
    const char *text[MAX_LINES], *sym[MAX_LINES];
    char escaped[MAX_LINES][128];
    for (int i = 0; i < n; i++) {
        opt[i] = PL_LEGEND_LINE | PL_LEGEND_SYMBOL;
        tcol[i] = COL_FG;
        lcol[i] = scol[i] = COL_LINE0 + i % N_LINE_COLOURS;
        lsty[i] = 1, lwid[i] = 2.5, sscale[i] = MARKER_SCALE, snum[i] = 1;
        escape_text(p->lines[i].label ? p->lines[i].label : "", escaped[i], sizeof escaped[i]);
        text[i] = escaped[i], sym[i] = "●";
    }
    PLFLT lw, lh;
    pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, legend_position(p, x, y), 0.02, 0.03, 0.08,
             COL_BG, COL_GRID, 1, 0, 0, n, opt, 1.0, 1.0, 1.8, 0.0, tcol, text, NULL, NULL, NULL, NULL, lcol, lsty,
             lwid, scol, sscale, snum, sym);
}

/* One panel inside the page cell [x0,x1] x [y0,y1] (normalised coordinates). */
static void draw_panel(const canvas *cv, const plot_panel *p, double x0, double x1, double y0, double y1)
{
    double ch = char_px(cv), cw = (x1 - x0) * cv->w, chh = (y1 - y0) * cv->h;
    /* margins in characters: tick labels and axis label on the left and
     * bottom, the panel title on top */
    plvpor(x0 + 7.0 * ch / cw * (x1 - x0), x1 - 2.0 * ch / cw * (x1 - x0), y0 + 4.6 * ch / chh * (y1 - y0),
           y1 - 3.4 * ch / chh * (y1 - y0));
    range x = data_range(p, 1), y = data_range(p, 0);
    plwind(x.lo, x.hi, y.lo, y.hi);
    plcol0(COL_GRID);
    plbox("g", epoch_tick(x), 0, "g", 0, 0);
    plcol0(COL_FG);
    plbox("bcnst", epoch_tick(x), 0, "bcnstv", 0, 0);
    char t[256], xl[128], yl[128];
    escape_text(p->title ? p->title : "", t, sizeof t);
    escape_text(p->xlabel ? p->xlabel : "", xl, sizeof xl);
    escape_text(p->ylabel ? p->ylabel : "", yl, sizeof yl);
    pllab(xl, yl, t);
    for (int l = 0; l < p->n_lines; l++)
        draw_line(&p->lines[l], COL_LINE0 + l % N_LINE_COLOURS);
    if (p->n_lines > 1)
        draw_legend(p, x, y);
}

static void draw_figure_title(const char *title, double top)
{
    char t[256];
    escape_text(title, t, sizeof t);
    plvpor(0, 1, 1 - top, 1);
    plwind(0, 1, 0, 1);
    plcol0(COL_FG);
    plschr(0, 1.35);
    plptex(0.5, 0.45, 1, 0, 0.5, t);
    plschr(0, 1.0);
}

int plot_panels(const char *path, int width, int height, const char *title, const plot_panel *panels, int n_panels,
                int columns, char *err, size_t err_len)
{
    if (n_panels < 1 || columns < 1) {
        snprintf(err, err_len, "%s: nothing to plot", path);
        return -1;
    }
    canvas cv;
    if (canvas_begin(&cv, width, height, err, err_len))
        return -1;
    /* the figure title takes a band of 2.6 character heights on top */
    double top = title ? 2.6 * 1.35 * char_px(&cv) / height : 0;
    int rows = (n_panels + columns - 1) / columns;
    for (int i = 0; i < n_panels; i++) {
        int r = i / columns, c = i % columns;
        double x0 = (double)c / columns, x1 = (double)(c + 1) / columns;
        double y1 = (1 - top) * (1 - (double)r / rows), y0 = (1 - top) * (1 - (double)(r + 1) / rows);
        draw_panel(&cv, &panels[i], x0, x1, y0, y1);
    }
    if (title)
        draw_figure_title(title, top);
    return canvas_finish(&cv, path, err, err_len);
}

/* ---- from a history ---------------------------------------------------------- */

/* The values of key as a line over 1-based epochs, allocated into xs and ys;
 * 0 points when absent. */
static plot_line history_line(const history *h, const char *key, const char *label, double **xs, double **ys)
{
    const history_key *k = history_find(h, key);
    *xs = malloc((size_t)(h->epochs ? h->epochs : 1) * sizeof **xs);
    *ys = malloc((size_t)(h->epochs ? h->epochs : 1) * sizeof **ys);
    plot_line ln = {label, *xs, *ys, 0};
    for (int e = 0; k && *xs && *ys && e < h->epochs; e++) {
        (*xs)[ln.n] = h->epoch[e] + 1;
        (*ys)[ln.n++] = k->present[e] ? k->values[e] : NAN;
    }
    return ln;
}

/* Up to MAX_LINES keys as lines of one panel; frees nothing (see free_lines). */
typedef struct line_set {
    plot_line lines[MAX_LINES];
    double *xs[MAX_LINES], *ys[MAX_LINES];
    int n;
} line_set;

static void add_line(line_set *s, const history *h, const char *key, const char *label)
{
    if (s->n == MAX_LINES || !history_find(h, key))
        return;
    s->lines[s->n] = history_line(h, key, label, &s->xs[s->n], &s->ys[s->n]);
    s->n++;
}

static void free_lines(line_set *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->xs[i]), free(s->ys[i]);
    s->n = 0;
}

int plot_fit_curves(const history *h, const char *path, char *err, size_t err_len)
{
    line_set loss = {0}, acc = {0};
    add_line(&loss, h, "loss", "training");
    add_line(&loss, h, "val_loss", "validation");
    add_line(&acc, h, "accuracy", "training");
    add_line(&acc, h, "val_accuracy", "validation");
    plot_panel panels[2] = {
        {"Loss", "epoch", "loss", loss.lines, loss.n},
        {"Accuracy", "epoch", "accuracy", acc.lines, acc.n},
    };
    int rc = 1; /* nothing to draw */
    if (loss.n + acc.n == 0)
        snprintf(err, err_len, "%s: the history has no loss or accuracy", path);
    else
        rc = plot_panels(path, 1400, 620, "Learning curves", panels, 2, 2, err, err_len);
    free_lines(&loss), free_lines(&acc);
    return rc;
}

/* "val_precision_<class>" and the like are drawn per class, not here. */
static int is_class_key(const char *key, const char *const *class_names, int c)
{
    const char *metrics[3] = {"val_precision_", "val_recall_", "val_f1_"};
    for (int m = 0; m < 3; m++) {
        size_t n = strlen(metrics[m]);
        for (int k = 0; k < c && strncmp(key, metrics[m], n) == 0; k++)
            if (strcmp(key + n, class_names[k]) == 0)
                return 1;
    }
    return 0;
}

#define MAX_PANELS 24

int plot_validation_curves(const history *h, const char *const *class_names, int c, const char *path, char *err,
                           size_t err_len)
{
    line_set sets[MAX_PANELS];
    plot_panel panels[MAX_PANELS];
    int n = 0;
    for (int k = 0; k < h->n_keys && n < MAX_PANELS; k++) {
        const char *key = h->keys[k].name;
        if (strncmp(key, "val_", 4) != 0 || is_class_key(key, class_names, c))
            continue;
        sets[n].n = 0;
        add_line(&sets[n], h, key, key);
        panels[n] = (plot_panel){key + 4, "epoch", key + 4, sets[n].lines, sets[n].n};
        n++;
    }
    int rc = 1; /* nothing to draw */
    if (n == 0)
        snprintf(err, err_len, "%s: the history has no validation metric", path);
    else {
        int cols = n == 1 ? 1 : (n <= 4 ? 2 : 3), rows = (n + cols - 1) / cols; /* 4 as 2x2, not 3+1 */
        rc = plot_panels(path, 560 * cols, 440 * rows + 70, "Validation metrics per epoch", panels, n, cols, err,
                         err_len);
    }
    for (int i = 0; i < n; i++)
        free_lines(&sets[i]);
    return rc;
}

/* A class name as a file name: unusual characters become '_'. */
static void safe_file_name(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    for (; *name && n + 1 < cap; name++) {
        unsigned char ch = (unsigned char)*name;
        out[n++] = (isalnum(ch) || ch == '-' || ch == '_' || ch == '.') ? (char)ch : '_';
    }
    out[n] = 0;
    if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        snprintf(out, cap, "class");
}

static int class_picture(const history *h, const char *name, const char *path, char *err, size_t err_len)
{
    char key[3][512], title[300];
    snprintf(key[0], sizeof key[0], "val_precision_%s", name);
    snprintf(key[1], sizeof key[1], "val_recall_%s", name);
    snprintf(key[2], sizeof key[2], "val_f1_%s", name);
    line_set s = {0};
    add_line(&s, h, key[0], "precision");
    add_line(&s, h, key[1], "recall");
    add_line(&s, h, key[2], "F1");
    snprintf(title, sizeof title, "Class %s: validation precision, recall and F1", name);
    plot_panel panel = {title, "epoch", "score", s.lines, s.n};
    int rc = 1; /* nothing to draw */
    if (s.n == 0)
        snprintf(err, err_len, "%s: the history has no val_precision_%s, val_recall_%s or val_f1_%s", path, name,
                 name, name);
    else
        rc = plot_panels(path, 900, 600, NULL, &panel, 1, 1, err, err_len);
    free_lines(&s);
    return rc;
}

int plot_class_curves(const history *h, const char *const *class_names, int c, const char *dir, char *err,
                      size_t err_len)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int k = 0; k < c && rc >= 0; k++) {
        char file[256], path[4096];
        safe_file_name(class_names[k], file, sizeof file);
        snprintf(path, sizeof path, "%s/%s.jpg", dir, file);
        int one = class_picture(h, class_names[k], path, err, err_len);
        rc = one < 0 ? -1 : one > 0 ? 1 : rc;
    }
    return rc;
}

/* ---- confusion matrix ------------------------------------------------------------ */

static void count_text(double v, char *out, size_t cap)
{
    if (v == floor(v) && fabs(v) < 1e9)
        snprintf(out, cap, "%.0f", v);
    else
        snprintf(out, cap, "%.4g", v);
}

/* Cells from white to dark blue (matplotlib's "Blues"), darker = more. */
static void set_heat_colours(void)
{
    PLFLT pos[2] = {0, 1}, r[2] = {247 / 255.0, 8 / 255.0}, g[2] = {251 / 255.0, 48 / 255.0},
          b[2] = {255 / 255.0, 107 / 255.0};
    plscmap1n(256);
    plscmap1l(1, 2, pos, r, g, b, NULL);
}

static void draw_cells(const double *cm, int c)
{
    double max = 0;
    for (int i = 0; i < c * c; i++)
        max = fmax(max, cm[i]);
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            double v = cm[i * c + j], t = max > 0 ? v / max : 0;
            PLFLT y = c - 1 - i; /* true class 0 on top, as sklearn draws it */
            PLFLT xs[4] = {j, j + 1, j + 1, j}, ys[4] = {y, y, y + 1, y + 1};
            plcol1(t);
            plfill(4, xs, ys);
            char txt[32];
            count_text(v, txt, sizeof txt);
            plcol0(t > 0.5 ? COL_BG : COL_FG); /* white on dark cells */
            plptex(j + 0.5, y + 0.5, 1, 0, 0.5, txt);
        }
}

static void draw_class_names(const char *const *names, int c, int vertical_x)
{
    char t[256];
    for (int k = 0; k < c; k++) {
        escape_text(names[k], t, sizeof t);
        double pos = (k + 0.5) / c;
        if (vertical_x)
            plmtex("bv", 0.8, pos, 1.0, t);
        else
            plmtex("b", 1.5, pos, 0.5, t);
        plmtex("lv", 0.8, 1 - pos, 1.0, t);
    }
}

int plot_confusion_matrix(const double *cm, int c, const char *const *class_names, const char *path, char *err,
                          size_t err_len)
{
    if (c < 1) {
        snprintf(err, err_len, "%s: empty confusion matrix", path);
        return -1;
    }
    size_t longest = 1;
    for (int k = 0; k < c; k++)
        longest = strlen(class_names[k]) > longest ? strlen(class_names[k]) : longest;
    int cell = c <= 6 ? 120 : (c <= 12 ? 80 : 48);
    /* Sizes in characters of about 15 px (PLplot's default height here). */
    double name_px = 9.0 * (double)(longest < 40 ? longest : 40);
    int vertical_x = name_px > cell * 0.95;
    int left = (int)(name_px + 70), bottom = (vertical_x ? (int)name_px : 20) + 80, top = 70, right = 40;
    int w = left + c * cell + right, h = top + c * cell + bottom;
    canvas cv;
    if (canvas_begin(&cv, w, h, err, err_len))
        return -1;
    set_heat_colours();
    if (c > 12)
        plschr(0, 0.8);
    plvpor((double)left / w, (double)(left + c * cell) / w, (double)bottom / h, (double)(bottom + c * cell) / h);
    plwind(0, c, 0, c);
    draw_cells(cm, c);
    plcol0(COL_FG);
    plbox("bc", 0, 0, "bc", 0, 0);
    draw_class_names(class_names, c, vertical_x);
    double ch = char_px(&cv);
    plmtex("b", (bottom - 30) / ch, 0.5, 0.5, "Predicted label");
    plmtex("l", (left - 25) / ch, 0.5, 0.5, "True label");
    plschr(0, 1.35);
    plmtex("t", 1.2, 0.5, 0.5, "Confusion matrix");
    return canvas_finish(&cv, path, err, err_len);
}

/* ---- bar chart --------------------------------------------------------------- */

#define BAR_PX 400     /* width per bar: room for a device name under it */
#define BAR_LABEL_MAX 38 /* characters of a label that fit under a bar */

static double bars_max(const plot_bar *bars, int n)
{
    double max = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(bars[i].value))
            max = fmax(max, bars[i].value);
    return max > 0 ? max : 1;
}

/* Escaped, and shortened with "..." when it would run into the next bar. */
static void bar_label(const char *s, char *out, size_t cap)
{
    char shown[BAR_LABEL_MAX + 1];
    s = s ? s : "";
    if (strlen(s) > BAR_LABEL_MAX)
        snprintf(shown, sizeof shown, "%.*s...", BAR_LABEL_MAX - 3, s);
    else
        snprintf(shown, sizeof shown, "%s", s);
    escape_text(shown, out, cap);
}

static void draw_bar(const plot_bar *b, int i, int n, double top)
{
    char t[256];
    if (isfinite(b->value) && b->value > 0) {
        PLFLT xs[4] = {i + 0.15, i + 0.85, i + 0.85, i + 0.15}, ys[4] = {0, 0, b->value, b->value};
        plcol0(COL_LINE0 + i % N_LINE_COLOURS);
        plfill(4, xs, ys);
    }
    plcol0(COL_FG);
    if (isfinite(b->value))
        snprintf(t, sizeof t, "%.4g", b->value);
    else
        snprintf(t, sizeof t, "failed");
    plptex(i + 0.5, (isfinite(b->value) ? b->value : 0) + top * 0.05, 1, 0, 0.5, t); /* text is centred on y */
    bar_label(b->label, t, sizeof t);
    plmtex("b", 1.4, (i + 0.5) / n, 0.5, t);
    if (b->sublabel) {
        bar_label(b->sublabel, t, sizeof t);
        plmtex("b", 2.8, (i + 0.5) / n, 0.5, t);
    }
}

int plot_bars(const char *path, const char *title, const char *ylabel, const plot_bar *bars, int n, char *err,
              size_t err_len)
{
    if (n < 1) {
        snprintf(err, err_len, "%s: nothing to plot", path);
        return -1;
    }
    int w = 160 + BAR_PX * n, h = 560;
    canvas cv;
    if (canvas_begin(&cv, w, h, err, err_len))
        return -1;
    double ch = char_px(&cv), top = bars_max(bars, n) * 1.15;
    /* margins in characters: tick labels and the y label on the left, two
     * label lines below, the title on top */
    plvpor(8.0 * ch / w, 1 - 2.0 * ch / w, 5.5 * ch / h, 1 - 3.6 * ch / h);
    plwind(0, n, 0, top);
    plcol0(COL_GRID);
    plbox("", 0, 0, "g", 0, 0);
    for (int i = 0; i < n; i++)
        draw_bar(&bars[i], i, n, top);
    plcol0(COL_FG);
    plbox("bc", 0, 0, "bcnstv", 0, 0);
    char t[256], yl[128];
    escape_text(title ? title : "", t, sizeof t);
    escape_text(ylabel ? ylabel : "", yl, sizeof yl);
    pllab("", yl, t);
    return canvas_finish(&cv, path, err, err_len);
}

/* ---- contact sheet ---------------------------------------------------------- */

enum { SHEET_MARGIN = 12, SHEET_TITLE_PX = 44, SHEET_ROW_LABEL_PX = 190, SHEET_CAPTION_PX = 20 };

/* Copies an RGB tile into the picture at (x, y), top-left. */
static void blit(canvas *cv, const plot_tile *t, int x, int y)
{
    for (int r = 0; r < t->h && y + r < cv->h; r++)
        for (int c = 0; c < t->w && x + c < cv->w; c++) {
            unsigned char *px = cv->rgba + 4 * ((size_t)(y + r) * cv->w + (size_t)(x + c));
            memcpy(px, t->rgb + 3 * ((size_t)r * t->w + (size_t)c), 3);
            px[3] = 255;
        }
}

/* Text at picture pixel (x, y) from the top, left- (0) or centre- (0.5) justified. */
static void sheet_text(const canvas *cv, double x, double y, double just, const char *text)
{
    char t[512];
    escape_text(text, t, sizeof t);
    plptex(x, cv->h - y, 1, 0, just, t);
}

int plot_contact_sheet(const char *path, const char *title, const char *const *row_labels, int rows,
                       const plot_tile *tiles, int per_row, char *err, size_t err_len)
{
    int tw = 0, th = 0;
    for (int i = 0; i < rows * per_row; i++)
        if (tiles[i].rgb)
            tw = tiles[i].w > tw ? tiles[i].w : tw, th = tiles[i].h > th ? tiles[i].h : th;
    int cell_w = (tw > 150 ? tw : 150) + SHEET_MARGIN, cell_h = th + SHEET_CAPTION_PX + SHEET_MARGIN;
    int w = SHEET_ROW_LABEL_PX + per_row * cell_w + SHEET_MARGIN, h = SHEET_TITLE_PX + rows * cell_h + SHEET_MARGIN;
    int title_w = (int)(strlen(title) * FONT_PX * 0.6) + 2 * SHEET_MARGIN; /* about 0.6 em a character */
    w = w > title_w ? w : title_w;
    canvas cv;
    if (canvas_alloc(&cv, w, h, err, err_len) != 0)
        return -1;
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < per_row; k++)
            if (tiles[r * per_row + k].rgb)
                blit(&cv, &tiles[r * per_row + k], SHEET_ROW_LABEL_PX + k * cell_w, SHEET_TITLE_PX + r * cell_h);
    canvas_start(&cv);
    plvpor(0, 1, 0, 1);
    plwind(0, w, 0, h);
    plcol0(COL_FG);
    sheet_text(&cv, w / 2.0, SHEET_TITLE_PX / 2.0, 0.5, title);
    set_font_px(&cv, 13.0);
    for (int r = 0; r < rows; r++) {
        double top = SHEET_TITLE_PX + r * cell_h;
        sheet_text(&cv, SHEET_MARGIN, top + th / 2.0, 0, row_labels[r]);
        for (int k = 0; k < per_row; k++) {
            const plot_tile *t = &tiles[r * per_row + k];
            if (t->rgb && t->caption)
                sheet_text(&cv, SHEET_ROW_LABEL_PX + k * cell_w + t->w / 2.0, top + th + SHEET_CAPTION_PX * 0.6, 0.5,
                           t->caption);
        }
    }
    return canvas_finish(&cv, path, err, err_len);
}
