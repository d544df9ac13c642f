/*
 * The statistics (colour) transfer of inorm-transfer, on an inorm context:
 * the content takes on the per-channel mean and spread of the style, in the
 * chosen colour space. Image data goes to the device once (as sRGB floats)
 * and comes back once; colour conversion, statistics, AdaIN and blends all
 * run there. Only per-channel statistics (a few floats) visit the host.
 *
 * Two plans give the same result (within rounding):
 * - whole: every image is one tensor; the library's ops do it all:
 *   inorm_adain or inorm_adain_mix (statistics over masks for the regions),
 *   inorm_blend for the regions and for channels kept from the content;
 * - tiled: for images larger than one tensor may be (maxStorageBufferRange;
 *   lavapipe: 128 MiB, i.e. about 11 M RGB pixels of fp32), or when asked
 *   (--tile-pixels). Every image is cut into bands of whole rows. Statistics
 *   of each band come from inorm_stats (masked where weights apply) and are
 *   merged on the host with Chan's formula, so they are those of the whole
 *   image. The transfer is then one affine map per channel, y = A x + B,
 *   applied to each band with inorm_adain_modulate (whose scale and bias are
 *   chosen from the band's own statistics so that the band's normalization
 *   cancels out). Content bands stay on the device between the passes, so
 *   the content is still uploaded and downloaded once.
 */
#ifndef INORM_TRANSFER_TRANSFER_H
#define INORM_TRANSFER_TRANSFER_H

#include "image_io.h"

#include <inorm.h>

typedef enum transfer_space {
    TRANSFER_RGB,            /* sRGB values as they are */
    TRANSFER_LAB,            /* CIE L*a*b* */
    TRANSFER_LAB_LUMA_ONLY,  /* L*a*b*, only L* moves: the content keeps its colours */
    TRANSFER_LALPHABETA      /* Reinhard's lαβ */
} transfer_space;

typedef enum transfer_stage {
    STAGE_UPLOAD, STAGE_TO_SPACE, STAGE_STATISTICS, STAGE_TRANSFER, STAGE_TO_SRGB, STAGE_DOWNLOAD, STAGE_COUNT
} transfer_stage;

typedef struct transfer_request {
    transfer_space space;
    float alpha;                /* y = alpha * transferred + (1 - alpha) * content (in the space) */
    const image *content;
    const image *style;
    const image *style2;        /* NULL, or mixed with style by weights */
    float weights[2];           /* of style and style2 */
    const image *mask;          /* NULL, or the content's size: white takes mask_style */
    const image *mask_style;    /* with mask */
    bool preserve_luminance;    /* the content keeps its L* (lab, rgb) or l (lαβ) */
    uint64_t tile_pixels;       /* > 0: the tiled plan with bands of at most this many pixels */
    bool timing;                /* finish the device after each stage, to time it */
} transfer_request;

typedef struct transfer_report {
    const char *plan;           /* "whole" or "tiled" */
    uint32_t bands;             /* bands of the content */
    double seconds[STAGE_COUNT];
} transfer_report;

const char *transfer_stage_name(transfer_stage stage);

/* Runs the transfer into out (allocated here: the content's size, RGB plus
 * the content's alpha, the content's depth). False with a message on failure. */
bool transfer_run(inorm_context *ctx, const transfer_request *request, image *out, transfer_report *report,
                  char error[IMAGE_ERROR_SIZE]);

#endif
