/*
 * inorm-transfer — colour (statistics) transfer between images with AdaIN:
 * the content takes on the per-channel mean and spread of the style, in
 * CIE L*a*b*, Reinhard's lαβ or plain sRGB, on a Vulkan device or inorm's
 * CPU path. PNG (8 and 16 bits, alpha kept) and JPEG in and out.
 *
 *   inorm-transfer CONTENT STYLE OUT [options]     (--help lists them)
 *
 * Exit status: 0 done, 1 a file or the device failed, 2 bad usage.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strncasecmp */

#include "image_io.h"
#include "transfer.h"

#include <inorm.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char usage_text[] =
    "usage: inorm-transfer CONTENT STYLE OUT [options]\n"
    "\n"
    "The content takes on the style's per-channel mean and spread (AdaIN on the image's\n"
    "own channels). PNG (8/16-bit, alpha kept) or JPEG in; OUT's extension picks PNG or JPEG.\n"
    "\n"
    "  --space S             rgb, lab (default), lab-luma-only (only L* moves: the content\n"
    "                        keeps its colours) or lalphabeta (Reinhard et al. 2001)\n"
    "  --alpha A             strength: 0 keeps the content, 1 (default) transfers fully\n"
    "  --style2 FILE         a second style, mixed with STYLE (inorm_adain_mix)\n"
    "  --weights W1,W2       weights of STYLE and --style2 (default 0.5,0.5)\n"
    "  --mask FILE           spatial control, the content's size: where it is white the\n"
    "                        content takes --mask-style, where black STYLE (grey blends);\n"
    "                        each region's statistics are taken over that region\n"
    "  --mask-style FILE     the style inside the mask\n"
    "  --preserve-luminance  keep the content's lightness (L*; with lalphabeta: l), move colour only\n"
    "  --device D            Vulkan device: index or part of its name (default: the best\n"
    "                        device, else the CPU path; also INORM_DEVICE)\n"
    "  --cpu                 inorm's CPU path, no Vulkan\n"
    "  --quality Q           JPEG quality 1..100 (default 92)\n"
    "  --tile-pixels N       process images in bands of at most N pixels (default: as large\n"
    "                        as the device allows; statistics are always of the whole image)\n"
    "  --time                print the time each stage took\n"
    "  --help                this text\n";

#define EXIT_USAGE 2

typedef struct options {
    const char *content, *style, *out;
    const char *style2, *mask, *mask_style;
    transfer_space space;
    float alpha;
    float weights[2];
    bool weights_given;
    bool preserve_luminance;
    const char *device;
    bool cpu;
    int quality;
    uint64_t tile_pixels;
    bool timing;
} options;

static int usage_error(const char *fmt, const char *arg)
{
    fputs("inorm-transfer: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(inorm-transfer --help lists the options)\n", stderr);
    return EXIT_USAGE;
}

static bool parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v) || fabs(v) > 1e6)
        return false;
    *out = (float)v;
    return true;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)s[0]))
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0 || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Returns 0 when the options are good, else the exit status (help: 0 via *done). */
static int parse_options(int argc, char **argv, options *o, bool *done)
{
    static const char *const spaces[4] = { "rgb", "lab", "lab-luma-only", "lalphabeta" };
    const char *positional[3];
    int positionals = 0;
    *o = (options){ .space = TRANSFER_LAB, .alpha = 1.0f, .weights = { 0.5f, 0.5f }, .quality = 92 };
    *done = false;
    for (int i = 1; i < argc; ++i) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes_value = strcmp(arg, "--space") == 0 || strcmp(arg, "--alpha") == 0 ||
                           strcmp(arg, "--style2") == 0 || strcmp(arg, "--weights") == 0 ||
                           strcmp(arg, "--mask") == 0 || strcmp(arg, "--mask-style") == 0 ||
                           strcmp(arg, "--device") == 0 || strcmp(arg, "--quality") == 0 ||
                           strcmp(arg, "--tile-pixels") == 0;
        if (takes_value && !value)
            return usage_error("%s needs a value", arg);
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            *done = true;
            return 0;
        } else if (strcmp(arg, "--space") == 0) {
            int found = -1;
            for (int s = 0; s < 4; ++s)
                if (strcmp(value, spaces[s]) == 0)
                    found = s;
            if (found < 0)
                return usage_error("--space %s: use rgb, lab, lab-luma-only or lalphabeta", value);
            o->space = (transfer_space)found;
        } else if (strcmp(arg, "--alpha") == 0) {
            if (!parse_float(value, &o->alpha))
                return usage_error("--alpha %s: not a number", value);
        } else if (strcmp(arg, "--style2") == 0) {
            o->style2 = value;
        } else if (strcmp(arg, "--weights") == 0) {
            char first[64];
            const char *comma = strchr(value, ',');
            if (!comma || (size_t)(comma - value) >= sizeof first)
                return usage_error("--weights %s: give two numbers, as in 0.7,0.3", value);
            memcpy(first, value, (size_t)(comma - value));
            first[comma - value] = '\0';
            if (!parse_float(first, &o->weights[0]) || !parse_float(comma + 1, &o->weights[1]))
                return usage_error("--weights %s: give two numbers, as in 0.7,0.3", value);
            o->weights_given = true;
        } else if (strcmp(arg, "--mask") == 0) {
            o->mask = value;
        } else if (strcmp(arg, "--mask-style") == 0) {
            o->mask_style = value;
        } else if (strcmp(arg, "--preserve-luminance") == 0) {
            o->preserve_luminance = true;
        } else if (strcmp(arg, "--device") == 0) {
            o->device = value;
        } else if (strcmp(arg, "--cpu") == 0) {
            o->cpu = true;
        } else if (strcmp(arg, "--quality") == 0) {
            uint64_t q;
            if (!parse_u64(value, 1, 100, &q))
                return usage_error("--quality %s: give 1 to 100", value);
            o->quality = (int)q;
        } else if (strcmp(arg, "--tile-pixels") == 0) {
            if (!parse_u64(value, 1, UINT64_MAX / 2, &o->tile_pixels))
                return usage_error("--tile-pixels %s: give a number of pixels", value);
        } else if (strcmp(arg, "--time") == 0) {
            o->timing = true;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return usage_error("unknown option %s", arg);
        } else {
            if (positionals == 3)
                return usage_error("one argument too many: %s", arg);
            positional[positionals++] = arg;
        }
        if (takes_value)
            ++i;
    }
    if (positionals < 3)
        return usage_error("%s", "give CONTENT STYLE OUT");
    o->content = positional[0];
    o->style = positional[1];
    o->out = positional[2];
    if (o->weights_given && !o->style2)
        return usage_error("%s", "--weights mixes STYLE with --style2; give --style2 too");
    if (!o->mask != !o->mask_style)
        return usage_error("%s", "--mask and --mask-style go together");
    if (o->preserve_luminance && o->space == TRANSFER_LAB_LUMA_ONLY)
        return usage_error("%s", "--preserve-luminance keeps L*, and lab-luma-only moves only L*: pick one");
    if (o->cpu && o->device)
        return usage_error("%s", "--cpu and --device exclude each other");
    image_format format;
    if (!image_format_from_name(o->out, &format))
        return usage_error("%s: name the output .png, .jpg or .jpeg", o->out);
    return 0;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The context the options ask for. --device and --cpu override the
 * environment (INORM_BACKEND, INORM_DEVICE); INORM_VALIDATION still counts. */
static inorm_context *open_context(const options *o)
{
    inorm_context_desc desc = INORM_CONTEXT_DESC_DEFAULT;
    const char *validation = getenv("INORM_VALIDATION");
    char why[512] = "";
    if (o->cpu || o->device) {
        desc.flags |= INORM_CONTEXT_IGNORE_ENVIRONMENT;
        desc.validation = validation && strcmp(validation, "1") == 0;
        desc.backend = o->cpu ? INORM_BACKEND_CPU : INORM_BACKEND_VULKAN;
    }
    if (o->device) {
        uint64_t index;
        uint32_t count = 0;
        if (parse_u64(o->device, 0, INT32_MAX, &index)) {
            desc.device_index = (int)index;
        } else if (inorm_enumerate_devices(NULL, &count) == INORM_SUCCESS && count > 0) {
            inorm_device_info *infos = calloc(count, sizeof *infos);
            if (infos && inorm_enumerate_devices(infos, &count) == INORM_SUCCESS)
                for (uint32_t i = 0; i < count && desc.device_index < 0; ++i)
                    for (const char *p = infos[i].name; *p && desc.device_index < 0; ++p)
                        if (strncasecmp(p, o->device, strlen(o->device)) == 0)
                            desc.device_index = infos[i].device_index;
            free(infos);
        }
        if (desc.device_index < 0) {
            fprintf(stderr, "inorm-transfer: no Vulkan device matches \"%s\" (inorm-info lists them)\n", o->device);
            return NULL;
        }
    }
    inorm_context *ctx = NULL;
    if (inorm_context_create_ex(&desc, &ctx, why, sizeof why) != INORM_SUCCESS) {
        fprintf(stderr, "inorm-transfer: no device: %s\n", why);
        return NULL;
    }
    return ctx;
}

static void print_timing(const inorm_context *ctx, const transfer_report *report, double decode, double device,
                         double encode, double total)
{
    inorm_device_info info;
    if (inorm_context_info(ctx, &info) == INORM_SUCCESS)
        fprintf(stderr, "inorm-transfer: %s (%s), %s plan, %u band%s\n", info.name,
                info.backend == INORM_BACKEND_CPU ? "CPU path" : "Vulkan", report->plan, report->bands,
                report->bands == 1 ? "" : "s");
    fprintf(stderr, "  %-11s %9.1f ms\n", "decode", decode * 1e3);
    fprintf(stderr, "  %-11s %9.1f ms\n", "device init", device * 1e3);
    for (int s = 0; s < STAGE_COUNT; ++s)
        fprintf(stderr, "  %-11s %9.1f ms\n", transfer_stage_name((transfer_stage)s), report->seconds[s] * 1e3);
    fprintf(stderr, "  %-11s %9.1f ms\n", "encode", encode * 1e3);
    fprintf(stderr, "  %-11s %9.1f ms\n", "total", total * 1e3);
}

int main(int argc, char **argv)
{
    options o;
    bool done;
    int status = parse_options(argc, argv, &o, &done);
    if (status != 0 || done)
        return status;
    const double start = now_seconds();
    char error[IMAGE_ERROR_SIZE] = "";
    image_format format;
    image_format_from_name(o.out, &format);
    image_output output;
    if (!image_output_open(&output, o.out, error)) {
        fprintf(stderr, "inorm-transfer: %s\n", error);
        return EXIT_FAILURE;
    }

    image content = { 0 }, style = { 0 }, style2 = { 0 }, mask = { 0 }, mask_style = { 0 }, result = { 0 };
    inorm_context *ctx = NULL;
    transfer_report report = { 0 };
    bool good = image_read(o.content, &content, error) && image_read(o.style, &style, error) &&
                (!o.style2 || image_read(o.style2, &style2, error)) && (!o.mask || image_read(o.mask, &mask, error)) &&
                (!o.mask_style || image_read(o.mask_style, &mask_style, error));
    const double decoded = now_seconds();
    if (good && !(ctx = open_context(&o))) {
        good = false;
        error[0] = '\0';  /* open_context said why */
    }
    const double opened = now_seconds();
    if (good) {
        transfer_request request = {
            .space = o.space, .alpha = o.alpha, .content = &content, .style = &style,
            .style2 = o.style2 ? &style2 : NULL, .weights = { o.weights[0], o.weights[1] },
            .mask = o.mask ? &mask : NULL, .mask_style = o.mask_style ? &mask_style : NULL,
            .preserve_luminance = o.preserve_luminance, .tile_pixels = o.tile_pixels, .timing = o.timing,
        };
        good = transfer_run(ctx, &request, &result, &report, error);
    }
    if (good && inorm_context_validation_message_count(ctx) > 0) {
        snprintf(error, sizeof error, "the Vulkan validation layer reported %u message(s) (a bug in inorm)",
                 inorm_context_validation_message_count(ctx));
        good = false;
    }
    const double transferred = now_seconds();
    if (good && format == IMAGE_JPEG && image_has_alpha(&result))
        fprintf(stderr, "inorm-transfer: note: JPEG has no alpha channel; %s is written without it\n", o.out);
    if (good)
        good = image_output_commit(&output, &result, format, o.quality, error);
    else
        image_output_abandon(&output);
    const double end = now_seconds();
    if (good && o.timing)
        print_timing(ctx, &report, decoded - start, opened - decoded, end - transferred, end - start);
    if (!good && error[0])
        fprintf(stderr, "inorm-transfer: %s\n", error);
    inorm_context_destroy(ctx);
    image_free(&content);
    image_free(&style);
    image_free(&style2);
    image_free(&mask);
    image_free(&mask_style);
    image_free(&result);
    return good ? EXIT_SUCCESS : EXIT_FAILURE;
}
