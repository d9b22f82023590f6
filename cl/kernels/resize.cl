/* resize.cl — TensorFlow bilinear resize (half-pixel centres, antialias
 * off) in NHWC, forward and a gathering backward without atomics. */

/* The two source rows (or columns) of output o and the weight of hi. The
 * backward calls this too, so it re-derives exactly the forward's indices
 * and weights. scale = in / out in float, as TF. */
inline void resize_src(int o, float scale, int in, int *lo, int *hi, float *frac)
{
    float s = ((float)o + 0.5f) * scale - 0.5f;
    float f = floor(s);
    *lo = max((int)f, 0);
    *hi = min((int)ceil(s), in - 1);
    *frac = s - f;
}

/* Work-item (c, ox, n*OH + oy): interpolate along x, then along y. */
__kernel void resize_bilinear_forward(__global float *out, __global const float *in, int rows, int H, int W, int C,
                                      int OH, int OW, float scale_y, float scale_x)
{
    int c = get_global_id(0), ox = get_global_id(1), r = get_global_id(2);
    if (c >= C || ox >= OW || r >= rows)
        return;
    int n = r / OH, y0, y1, x0, x1;
    float fy, fx;
    resize_src(r % OH, scale_y, H, &y0, &y1, &fy);
    resize_src(ox, scale_x, W, &x0, &x1, &fx);
    __global const float *top = in + (n * H + y0) * W * C, *bot = in + (n * H + y1) * W * C;
    float t = top[x0 * C + c] + (top[x1 * C + c] - top[x0 * C + c]) * fx;
    float b = bot[x0 * C + c] + (bot[x1 * C + c] - bot[x0 * C + c]) * fx;
    out[(r * OW + ox) * C + c] = t + (b - t) * fy;
}

/* Weight with which output o reads input i along one axis (0 when it does not). */
inline float resize_weight(int o, float scale, int in, int i)
{
    int lo, hi;
    float f;
    resize_src(o, scale, in, &lo, &hi, &f);
    return (lo == i ? 1.0f - f : 0.0f) + (hi == i ? f : 0.0f);
}

/* Outputs [*o0, *o1) along an axis that can read input i: their source
 * position lies in (i - 1, i + 1), widened by one for rounding (outside
 * ones get weight 0). Position < 0 clamps to input 0, which the range for
 * i = 0 already starts at. */
inline void resize_range(int i, float scale, int out, int *o0, int *o1)
{
    *o0 = max(0, (int)floor(((float)i - 0.5f) / scale - 0.5f) - 1);
    *o1 = min(out, (int)ceil(((float)i + 1.5f) / scale - 0.5f) + 2);
}

/* Work-item (c, x, n*H + y) sums, over the outputs that can read it, the
 * output gradient times the forward's weight. */
__kernel void resize_bilinear_backward(__global float *din, __global const float *dout, int rows, int H, int W,
                                       int C, int OH, int OW, float scale_y, float scale_x)
{
    int c = get_global_id(0), x = get_global_id(1), r = get_global_id(2);
    if (c >= C || x >= W || r >= rows)
        return;
    int n = r / H, y = r % H, oy0, oy1, ox0, ox1;
    resize_range(y, scale_y, OH, &oy0, &oy1);
    resize_range(x, scale_x, OW, &ox0, &ox1);
    float acc = 0.0f;
    for (int oy = oy0; oy < oy1; oy++) {
        float wy = resize_weight(oy, scale_y, H, y);
        if (wy == 0.0f)
            continue;
        float row = 0.0f;
        for (int ox = ox0; ox < ox1; ox++)
            row += resize_weight(ox, scale_x, W, x) * dout[((n * OH + oy) * OW + ox) * C + c];
        acc += wy * row;
    }
    din[(r * W + x) * C + c] = acc;
}
