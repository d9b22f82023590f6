/* plot.h — the pictures of the workflow, drawn with PLplot (its cairo
 * "memcairo" device renders into an RGBA buffer in memory) and written with
 * stb_image_write: .jpg/.jpeg as JPEG (quality 90), .png as PNG. Files are
 * written to a temporary name and renamed into place. Functions return 0, or
 * -1 with a message in err (PLplot's cairo driver missing, nothing to plot,
 * I/O). Not thread-safe: PLplot keeps global state.
 *
 * Pictures, named as the workflow's artefacts:
 * - fit_plots: learning curves, two panels (loss; accuracy), training and
 *   validation per epoch;
 * - validation_plots: one panel per validation metric ("val_*" keys, the
 *   per-class ones excepted) per epoch;
 * - class_validation_plots_dir/<class>.jpg: per-class precision, recall and
 *   F1 per epoch, read from the keys "val_precision_<class>",
 *   "val_recall_<class>" and "val_f1_<class>" (the names Keras gives
 *   Precision(class_id=k, name="precision_<class>") and the like);
 * - the confusion matrix as a heat map with the count in every cell and the
 *   class names on both axes;
 * - bar charts (`tlcl bench --all`: img/s per device), each bar labelled
 *   under the axis and its value printed on top.
 * The x axis is the 1-based epoch, as Keras prints "Epoch 1/N". */
#ifndef TLCL_PLOT_H
#define TLCL_PLOT_H

#include "history.h"

#include <stddef.h>

/* One curve: n points (x[i], y[i]); NaN values leave a gap. */
typedef struct plot_line {
    const char *label;
    const double *x, *y;
    int n;
} plot_line;

/* One panel: axes, labels, a legend when there is more than one line. */
typedef struct plot_panel {
    const char *title, *xlabel, *ylabel;
    const plot_line *lines;
    int n_lines;
} plot_panel;

/* Draws panels on a grid of `columns` columns under a figure title, on a
 * width x height picture written to path (.jpg, .jpeg or .png). */
int plot_panels(const char *path, int width, int height, const char *title, const plot_panel *panels, int n_panels,
                int columns, char *err, size_t err_len);

/* The three history plots return 0 when drawn, 1 when the history holds
 * nothing to draw (err says what is missing; no file is written) and -1
 * when the picture cannot be written (err names the file and the reason). */

/* fit_plots: loss/val_loss and accuracy/val_accuracy from h. */
int plot_fit_curves(const history *h, const char *path, char *err, size_t err_len);

/* validation_plots: every "val_*" key of h except the per-class ones of
 * class_names (which may be NULL when c = 0). */
int plot_validation_curves(const history *h, const char *const *class_names, int c, const char *path, char *err,
                           size_t err_len);

/* class_validation_plots_dir: dir/<class>.jpg for each class (the directory
 * is created if needed; characters other than letters, digits, '-', '_'
 * and '.' in a class name become '_' in the file name). */
int plot_class_curves(const history *h, const char *const *class_names, int c, const char *dir, char *err,
                      size_t err_len);

/* The confusion matrix cm[C*C] (rows true, columns predicted) as a heat map. */
int plot_confusion_matrix(const double *cm, int c, const char *const *class_names, const char *path, char *err,
                          size_t err_len);

/* One bar: label (and an optional second line under it) and its value; a
 * NaN value draws no bar and prints "failed" in its place. */
typedef struct plot_bar {
    const char *label, *sublabel;
    double value;
} plot_bar;

/* A bar chart of n bars from 0 up, one colour per bar. */
int plot_bars(const char *path, const char *title, const char *ylabel, const plot_bar *bars, int n, char *err,
              size_t err_len);

/* One picture of a contact sheet: rgb rows of w pixels (3 bytes each, top
 * row first), a caption under it; rgb NULL leaves the place empty. */
typedef struct plot_tile {
    const unsigned char *rgb;
    int w, h;
    const char *caption;
} plot_tile;

/* A contact sheet: rows of per_row tiles (tiles[row * per_row + k]), each
 * row's label at its left, a title above, the pictures as they are (no
 * scaling, so what the sheet shows is what the model receives). */
int plot_contact_sheet(const char *path, const char *title, const char *const *row_labels, int rows,
                       const plot_tile *tiles, int per_row, char *err, size_t err_len);

#endif
