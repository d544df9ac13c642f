/* Weighted blend on the CPU path, in double:
 *   y = weight * a + (1 - weight) * b
 * with the weight broadcast over N, C or H x W (shaders/blend.comp on Vulkan). */
#include "internal.h"


/* The weight of element (n, c, p) of the data. */
static double weight_at(const inorm_tensor *weight, size_t n, size_t c, size_t p)
{
    const inorm_tensor_desc *w = &weight->desc;
    size_t wn = w->n == 1 ? 0 : n, wc = w->c == 1 ? 0 : c, wp = w->h * w->w == 1 ? 0 : p;
    return ((const float *)weight->host)[inorm_element_index(w, wn, wc, wp)];
}

/* Pixels [first, last) of N x H x W, every channel. */
static void blend_pixels(void *arg, size_t first, size_t last)
{
    const inorm_op *op = arg;
    const inorm_tensor_desc *d = &op->x->desc;
    const size_t plane = (size_t)d->h * d->w;
    for (size_t pixel = first; pixel < last; ++pixel) {
        size_t n = pixel / plane, p = pixel % plane;
        for (size_t c = 0; c < d->c; ++c) {
            size_t i = inorm_element_index(d, n, c, p);
            double w = weight_at(op->blend_weight, n, c, p);
            inorm_host_store(op->y, i, w * inorm_host_load(op->x, i) + (1.0 - w) * inorm_host_load(op->blend_b, i));
        }
    }
}

void inorm_cpu_blend(const inorm_op *op)
{
    inorm_cpu_for_range(op->x->ctx, (size_t)op->x->desc.n * op->x->desc.h * op->x->desc.w, blend_pixels, (void *)op);
}
