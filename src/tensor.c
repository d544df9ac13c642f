/* Tensors: descriptor checks, creation, host transfers. Storage belongs to
 * the backend; this file owns the bookkeeping. */
#include "internal.h"

#include <stdlib.h>

size_t inorm_dtype_size(inorm_dtype dtype)
{
    switch (dtype) {
    case INORM_FLOAT32: return 4;
    case INORM_FLOAT16: return 2;
    }
    return 0;
}

/* Number of elements, 0 when a dimension is 0 or the byte count overflows. */
static size_t checked_elements(const inorm_tensor_desc *desc, size_t element_size)
{
    const uint32_t dims[4] = { desc->n, desc->c, desc->h, desc->w };
    size_t elements = 1;
    for (int i = 0; i < 4; ++i) {
        if (dims[i] == 0 || elements > SIZE_MAX / dims[i])
            return 0;
        elements *= dims[i];
    }
    if (element_size == 0 || elements > SIZE_MAX / element_size)
        return 0;
    return elements;
}

size_t inorm_tensor_desc_bytes(const inorm_tensor_desc *desc)
{
    if (!desc || (desc->layout != INORM_NCHW && desc->layout != INORM_NHWC))
        return 0;
    size_t element_size = inorm_dtype_size(desc->dtype);
    return checked_elements(desc, element_size) * element_size;
}

inorm_status inorm_tensor_create(inorm_context *ctx, const inorm_tensor_desc *desc, inorm_tensor **out)
{
    return inorm_tensor_new(ctx, desc, true, out);
}

inorm_status inorm_tensor_new(inorm_context *ctx, const inorm_tensor_desc *desc, bool allocate, inorm_tensor **out)
{
    if (out)
        *out = NULL;
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (!desc || !out)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "inorm_tensor_create: %s is NULL",
                          !desc ? "desc" : "out");
    if (ctx->sticky_status != INORM_SUCCESS)
        return inorm_fail(ctx, ctx->sticky_status, "the device was lost earlier; destroy this context");
    inorm_clear_error(ctx);
    size_t element_size = inorm_dtype_size(desc->dtype);
    if (element_size == 0)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "inorm_tensor_create: dtype %d is not an inorm_dtype",
                          (int)desc->dtype);
    if (desc->layout != INORM_NCHW && desc->layout != INORM_NHWC)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "inorm_tensor_create: layout %d is not an inorm_layout",
                          (int)desc->layout);
    if (!desc->n || !desc->c || !desc->h || !desc->w)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "inorm_tensor_create: shape %ux%ux%ux%u has a zero dimension",
                          desc->n, desc->c, desc->h, desc->w);
    size_t elements = checked_elements(desc, element_size);
    if (elements == 0)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "inorm_tensor_create: shape %ux%ux%ux%u of %zu-byte elements overflows size_t",
                          desc->n, desc->c, desc->h, desc->w, element_size);

    inorm_tensor *t = inorm_calloc(1, sizeof *t);
    if (!t)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "out of host memory allocating a tensor");
    t->ctx = ctx;
    t->desc = *desc;
    t->elements = elements;
    t->bytes = elements * element_size;
    inorm_status status = allocate ? ctx->backend->tensor_create(ctx, t) : INORM_SUCCESS;
    if (status != INORM_SUCCESS) {
        inorm_free(t);
        return status;
    }
    t->next = ctx->tensors;
    if (ctx->tensors)
        ctx->tensors->prev = t;
    ctx->tensors = t;
    *out = t;
    return INORM_SUCCESS;
}

void inorm_tensor_destroy(inorm_tensor *t)
{
    if (!t)
        return;
    inorm_context *ctx = t->ctx;
    ctx->backend->tensor_destroy(ctx, t);
    if (t->prev)
        t->prev->next = t->next;
    else
        ctx->tensors = t->next;
    if (t->next)
        t->next->prev = t->prev;
    inorm_free(t);
}

static inorm_status check_transfer(inorm_context *ctx, const char *fn, const inorm_tensor *t, const void *data,
                                   size_t bytes)
{
    if (ctx->sticky_status != INORM_SUCCESS)
        return inorm_fail(ctx, ctx->sticky_status, "the device was lost earlier; destroy this context");
    inorm_clear_error(ctx);
    if (!data)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: the host pointer is NULL", fn);
    if (bytes != t->bytes)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: bytes is %zu but the %ux%ux%ux%u tensor holds %zu bytes", fn, bytes, t->desc.n,
                          t->desc.c, t->desc.h, t->desc.w, t->bytes);
    return INORM_SUCCESS;
}

inorm_status inorm_tensor_write(inorm_tensor *t, const void *src, size_t bytes)
{
    if (!t)
        return INORM_ERROR_INVALID_ARGUMENT;
    inorm_status status = check_transfer(t->ctx, "inorm_tensor_write", t, src, bytes);
    if (status != INORM_SUCCESS)
        return status;
    t->generation++;
    return t->ctx->backend->tensor_write(t->ctx, t, src);
}

inorm_status inorm_tensor_read(const inorm_tensor *t, void *dst, size_t bytes)
{
    if (!t)
        return INORM_ERROR_INVALID_ARGUMENT;
    inorm_status status = check_transfer(t->ctx, "inorm_tensor_read", t, dst, bytes);
    if (status != INORM_SUCCESS)
        return status;
    return t->ctx->backend->tensor_read(t->ctx, t, dst);
}

inorm_status inorm_tensor_get_desc(const inorm_tensor *t, inorm_tensor_desc *out)
{
    if (!t)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (!out)
        return inorm_fail(t->ctx, INORM_ERROR_INVALID_ARGUMENT, "inorm_tensor_get_desc: out is NULL");
    *out = t->desc;
    return INORM_SUCCESS;
}
