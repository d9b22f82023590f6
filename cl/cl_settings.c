/* cl_settings.c — tlcl's environment variables, read in one place: a
 * context takes a copy at creation and every module below the frontend
 * reads its settings from there, never from the environment. */
#include "cl_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int env_flag(const char *name, int unset)
{
    const char *v = getenv(name);
    return v && v[0] ? strcmp(v, "0") != 0 : unset;
}

static void env_text(char *dst, size_t len, const char *name)
{
    const char *v = getenv(name);
    snprintf(dst, len, "%s", v ? v : "");
}

static void cache_dir_default(char *dst, size_t len)
{
    const char *env = getenv("TLCL_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (env && env[0])
        snprintf(dst, len, "%s", env);
    else if (xdg && xdg[0])
        snprintf(dst, len, "%s/tlcl", xdg);
    else if (home && home[0])
        snprintf(dst, len, "%s/.cache/tlcl", home);
    else
        dst[0] = '\0';
}

tlcl_settings tlcl_settings_from_env(void)
{
    tlcl_settings s;
    memset(&s, 0, sizeof s);
    cache_dir_default(s.cache_dir, sizeof s.cache_dir);
    s.fast_math = env_flag("TLCL_FAST_MATH", 0);
    const char *vw = getenv("TLCL_VECTOR_WIDTH");
    s.vector_width_cap = vw ? atoi(vw) : 0;
    s.fma = env_flag("TLCL_FMA", -1);
    s.log_builds = env_flag("TLCL_LOG_BUILDS", 0);
    env_text(s.gemm, sizeof s.gemm, "TLCL_GEMM");
    env_text(s.gemm_tune, sizeof s.gemm_tune, "TLCL_GEMM_TUNE");
    const char *conv = getenv("TLCL_CONV");
    s.conv_im2col = conv && strcmp(conv, "im2col") == 0;
    const char *col = getenv("TLCL_CONV_COL_BYTES");
    s.conv_col_bytes = col ? (size_t)strtoull(col, NULL, 10) : 0;
    s.bn_column = env_flag("TLCL_BN_COLUMN", -1);
    env_text(s.device_profile, sizeof s.device_profile, "TLCL_DEVICE_PROFILE");
    s.compile_helper = env_flag("TLCL_COMPILE_HELPER", 1);
    const char *fd = getenv("TLCL_HELPER_FD");
    s.helper_fd = fd && fd[0] ? atoi(fd) : -1;
    const char *wait = getenv("TLCL_HELPER_WAIT_S");
    s.helper_wait_s = wait && atof(wait) > 0 ? atof(wait) : 30.0;
    env_text(s.helper_fault, sizeof s.helper_fault, "TLCL_TEST_HELPER_FAULT");
    return s;
}

const tlcl_settings *tlcl_cl_settings(const tlcl_cl *cl) { return &cl->settings; }

void tlcl_cl_settings_override(tlcl_cl *cl, const tlcl_settings *s) { cl->settings = *s; }
