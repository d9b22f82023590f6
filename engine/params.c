/* params.c — the flat parameter store: one buffer each for values,
 * gradients and the two optimizer moments, with a table of aligned offsets
 * and one sub-buffer view per tensor. */
#include "engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tlcl_params_init(tlcl_params *p) { memset(p, 0, sizeof *p); }

int tlcl_params_declare(tlcl_params *p, const char *name, int n, int h, int w, int c, int is_state)
{
    if (p->values)
        return -1; /* the layout is fixed once allocated */
    if (p->count == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        tlcl_param_entry *grown = realloc(p->entries, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        p->entries = grown;
        p->cap = cap;
    }
    tlcl_param_entry *e = &p->entries[p->count];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->shape[0] = n, e->shape[1] = h, e->shape[2] = w, e->shape[3] = c;
    e->count = (size_t)n * h * w * c;
    e->ndims = 4;
    e->is_state = is_state;
    e->trainable = !is_state;
    return p->count++;
}

static tlcl_status make_view(tlcl_engine *e, cl_mem parent, const tlcl_param_entry *pe, tlcl_tensor *t)
{
    cl_buffer_region region = {pe->offset * sizeof(float), (pe->count ? pe->count : 1) * sizeof(float)};
    cl_int rc;
    memset(t, 0, sizeof *t);
    t->buf = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &rc);
    if (rc != CL_SUCCESS)
        return ENG_FAIL(e, TLCL_ERR_CL, "clCreateSubBuffer failed for parameter '%s': %s", pe->name,
                        tlcl_cl_error_name(rc));
    t->n = pe->shape[0], t->h = pe->shape[1], t->w = pe->shape[2], t->c = pe->shape[3];
    t->name = pe->name;
    t->is_view = 1;
    return TLCL_OK;
}

static tlcl_status zero_buffer(tlcl_engine *e, cl_mem buf, size_t count)
{
    tlcl_tensor t = {.buf = buf, .n = (int)count, .h = 1, .w = 1, .c = 1, .name = "parameter store"};
    return tlcl_tensor_fill(e, &t, 0.0f);
}

void tlcl_params_layout(tlcl_params *p, size_t align)
{
    if (align == 0)
        align = 1;
    size_t off = 0;
    for (int i = 0; i < p->count; i++) {
        p->entries[i].offset = off;
        off += (p->entries[i].count + align - 1) / align * align;
        if (p->entries[i].count == 0)
            off += align;
    }
    p->total = off ? off : align;
}

void tlcl_engine_set_param_align(tlcl_engine *e, size_t floats) { e->param_align = floats; }

tlcl_status tlcl_params_alloc(tlcl_engine *e, tlcl_params *p)
{
    size_t align = tlcl_cl_device(e->cl)->mem_base_addr_align_bytes / sizeof(float);
    tlcl_params_layout(p, align > e->param_align ? align : e->param_align);
    size_t bytes = p->total * sizeof(float);
    TLCL_TRY(tlcl_cl_buffer(e->cl, bytes, "parameters", &p->values));
    TLCL_TRY(tlcl_cl_buffer(e->cl, bytes, "gradients", &p->grads));
    TLCL_TRY(tlcl_cl_buffer(e->cl, bytes, "optimizer moment m", &p->m));
    TLCL_TRY(tlcl_cl_buffer(e->cl, bytes, "optimizer moment v", &p->v));
    cl_mem all[4] = {p->values, p->grads, p->m, p->v};
    for (int i = 0; i < 4; i++)
        TLCL_TRY(zero_buffer(e, all[i], p->total));
    p->value_views = calloc((size_t)p->count + 1, sizeof *p->value_views);
    p->grad_views = calloc((size_t)p->count + 1, sizeof *p->grad_views);
    if (!p->value_views || !p->grad_views)
        return ENG_FAIL(e, TLCL_ERR_OOM, "out of host memory for the parameter table");
    for (int i = 0; i < p->count; i++) {
        TLCL_TRY(make_view(e, p->values, &p->entries[i], &p->value_views[i]));
        TLCL_TRY(make_view(e, p->grads, &p->entries[i], &p->grad_views[i]));
    }
    return TLCL_OK;
}

void tlcl_params_free(tlcl_engine *e, tlcl_params *p)
{
    for (int i = 0; p->value_views && i < p->count; i++) {
        tlcl_tensor_release(e, &p->value_views[i]);
        tlcl_tensor_release(e, &p->grad_views[i]);
    }
    cl_mem all[4] = {p->values, p->grads, p->m, p->v};
    for (int i = 0; i < 4; i++)
        if (all[i])
            clReleaseMemObject(all[i]);
    free(p->value_views);
    free(p->grad_views);
    free(p->entries);
    memset(p, 0, sizeof *p);
}

tlcl_tensor *tlcl_params_value(tlcl_params *p, int id) { return &p->value_views[id]; }
tlcl_tensor *tlcl_params_grad(tlcl_params *p, int id) { return &p->grad_views[id]; }

int tlcl_params_find(const tlcl_params *p, const char *name)
{
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->entries[i].name, name) == 0)
            return i;
    return -1;
}

tlcl_status tlcl_params_zero_grads(tlcl_engine *e, tlcl_params *p)
{
    return zero_buffer(e, p->grads, p->total);
}
