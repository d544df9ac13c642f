/*
 * ONNX backend node test vectors (see shared/conformance/README.md), run on
 * every selected backend. The directory comes from $INORM_CONFORMANCE_DIR
 * (meson.build sets it); a missing directory is a failure unless
 * INORM_CONFORMANCE_OPTIONAL=1.
 *
 * Mapped cases:
 * - InstanceNormalization: x, scale (C), B (C) -> instance_norm.
 * - GroupNormalization opset 21: scale/bias of shape C -> group_norm.
 *   Opset 18 (scale/bias of shape num_groups): each group's value is
 *   expanded to its C/num_groups channels.
 * - LayerNormalization on 4-D input with axis resolved to 1 (normalized over
 *   C, H, W) -> group_norm with 1 group, only when scale and bias are
 *   constant within each channel (the library's affine is per channel);
 *   other LayerNormalization cases are skipped with the reason printed.
 * Comparison: |y - y_onnx| <= 1e-4 + 1e-4 * |y_onnx|.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_util.h"

/* snprintf that may truncate (paths and messages here are far below the sizes). */
static void fmt_to(char *buf, size_t size, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void fmt_to(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------ a minimal JSON reader -- */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
    jtype type;
    double num;
    char *str;          /* J_STR */
    size_t len;         /* items in J_ARR / J_OBJ */
    struct jval *items; /* J_ARR / J_OBJ values */
    char **keys;        /* J_OBJ keys */
} jval;

typedef struct jparser {
    const char *p, *end;
    int err;
} jparser;

static void j_ws(jparser *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static int j_parse(jparser *j, jval *out, int depth);

static char *j_string(jparser *j)
{
    /* at the opening quote; \uXXXX escapes outside ASCII become '?' */
    j->p++;
    size_t cap = 16, n = 0;
    char *s = (char *)malloc(cap);
    while (s && j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\' && j->p < j->end) {
            char e = *j->p++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                for (int k = 0; k < 4 && j->p < j->end; k++, j->p++) {
                    char h = *j->p;
                    v = v * 16 + (unsigned)(h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0');
                }
                c = v < 128 ? (char)v : '?';
                break;
            }
            default: c = e; break; /* \" \\ \/ */
            }
        }
        if (n + 2 > cap) {
            cap *= 2;
            char *t = (char *)realloc(s, cap);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
        }
        s[n++] = c;
    }
    if (!s || j->p >= j->end) {
        free(s);
        j->err = 1;
        return NULL;
    }
    j->p++; /* closing quote */
    s[n] = '\0';
    return s;
}

static int j_list(jparser *j, jval *out, int depth, char close, int is_obj)
{
    j->p++;
    size_t cap = 0;
    out->len = 0;
    out->items = NULL;
    out->keys = NULL;
    j_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return 1;
    }
    for (;;) {
        if (out->len == cap) {
            cap = cap ? cap * 2 : 8;
            jval *ni = (jval *)realloc(out->items, cap * sizeof(jval));
            if (!ni)
                return 0;
            out->items = ni;
            if (is_obj) {
                char **nk = (char **)realloc(out->keys, cap * sizeof(char *));
                if (!nk)
                    return 0;
                out->keys = nk;
            }
        }
        j_ws(j);
        if (is_obj) {
            if (j->p >= j->end || *j->p != '"')
                return 0;
            char *k = j_string(j);
            if (!k)
                return 0;
            out->keys[out->len] = k;
            j_ws(j);
            if (j->p >= j->end || *j->p != ':')
                return 0;
            j->p++;
        }
        if (!j_parse(j, &out->items[out->len], depth + 1))
            return 0;
        out->len++;
        j_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 1;
        }
        return 0;
    }
}

static int j_parse(jparser *j, jval *out, int depth)
{
    memset(out, 0, sizeof *out);
    j_ws(j);
    if (j->p >= j->end || depth > 64)
        return 0;
    char c = *j->p;
    if (c == '{') {
        out->type = J_OBJ;
        return j_list(j, out, depth, '}', 1);
    }
    if (c == '[') {
        out->type = J_ARR;
        return j_list(j, out, depth, ']', 0);
    }
    if (c == '"') {
        out->type = J_STR;
        out->str = j_string(j);
        return out->str != NULL;
    }
    if (!strncmp(j->p, "true", 4) || !strncmp(j->p, "false", 5)) {
        out->type = J_BOOL;
        out->num = c == 't';
        j->p += c == 't' ? 4 : 5;
        return 1;
    }
    if (!strncmp(j->p, "null", 4)) {
        out->type = J_NULL;
        j->p += 4;
        return 1;
    }
    char *e;
    out->type = J_NUM;
    out->num = strtod(j->p, &e);
    if (e == j->p)
        return 0;
    j->p = e;
    return 1;
}

static void j_free(jval *v)
{
    if (v->type == J_STR)
        free(v->str);
    if (v->type == J_ARR || v->type == J_OBJ) {
        for (size_t i = 0; i < v->len; i++) {
            j_free(&v->items[i]);
            if (v->keys)
                free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
    }
}

static const jval *j_get(const jval *o, const char *key)
{
    if (!o || o->type != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->len; i++)
        if (!strcmp(o->keys[i], key))
            return &o->items[i];
    return NULL;
}

static const char *j_str(const jval *v) { return v && v->type == J_STR ? v->str : NULL; }

/* ------------------------------------------------------------- files -- */

static char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? (char *)malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *size = (size_t)n;
    }
    return buf;
}

/* One tensor of a case: its shape (up to 8 dims) and data. */
typedef struct ctensor {
    int rank;
    uint32_t dims[8];
    size_t count;
    float *data;
} ctensor;

/* Loads entry `which` of meta's "inputs" or "outputs" list. */
static int load_tensor(const char *dir, const jval *list, size_t which, ctensor *t, char *why,
                       size_t why_size)
{
    memset(t, 0, sizeof *t);
    if (!list || list->type != J_ARR || which >= list->len) {
        fmt_to(why, why_size, "meta.json lacks tensor #%zu", which);
        return 0;
    }
    const jval *e = &list->items[which];
    const char *file = j_str(j_get(e, "file"));
    const jval *shape = j_get(e, "shape");
    const char *dtype = j_str(j_get(e, "dtype"));
    if (!file || !shape || shape->type != J_ARR || shape->len > 8) {
        fmt_to(why, why_size, "tensor #%zu: no file or shape", which);
        return 0;
    }
    if (dtype && strcmp(dtype, "float32") != 0) {
        fmt_to(why, why_size, "tensor %s: dtype %s", file, dtype);
        return 0;
    }
    t->rank = (int)shape->len;
    t->count = 1;
    for (size_t i = 0; i < shape->len; i++) {
        t->dims[i] = (uint32_t)shape->items[i].num;
        t->count *= t->dims[i];
    }
    char path[4096];
    fmt_to(path, sizeof path, "%s/%s", dir, file);
    size_t size = 0;
    char *raw = read_file(path, &size);
    if (!raw || size != t->count * 4) {
        fmt_to(why, why_size, "%s: %s (%zu bytes, want %zu)", path, raw ? "wrong size" : "unreadable",
                 size, t->count * 4);
        free(raw);
        return 0;
    }
    t->data = (float *)malloc(t->count * sizeof(float));
    if (!t->data) {
        free(raw);
        return 0;
    }
    /* little-endian float32, C order */
    for (size_t i = 0; i < t->count; i++) {
        const unsigned char *b = (const unsigned char *)raw + 4 * i;
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(&t->data[i], &u, 4);
    }
    free(raw);
    return 1;
}

/* N, C, then the remaining dims flattened into W (H = 1); rank 4 kept as is. */
static o_shape nchw_of(const ctensor *t)
{
    o_shape s = tu_shape(t->dims[0], t->rank > 1 ? t->dims[1] : 1, 1, 1);
    if (t->rank == 4) {
        s.h = t->dims[2];
        s.w = t->dims[3];
    } else {
        for (int i = 2; i < t->rank; i++)
            s.w *= t->dims[i];
    }
    return s;
}

/* ------------------------------------------------------------- cases -- */

typedef enum { RUN_OK, RUN_SKIP } run_result;

typedef struct plan {
    o_shape s;
    uint32_t groups;    /* instance norm: 0 */
    float eps;
    float *gamma, *beta; /* C floats each */
    ctensor x, y;
} plan;

static void plan_free(plan *p)
{
    free(p->gamma);
    free(p->beta);
    free(p->x.data);
    free(p->y.data);
}

/* Reads a case directory into a plan; RUN_SKIP with the reason in why. */
static run_result make_plan(const char *dir, plan *p, char *why, size_t why_size)
{
    memset(p, 0, sizeof *p);
    char path[4096];
    fmt_to(path, sizeof path, "%s/meta.json", dir);
    size_t size;
    char *text = read_file(path, &size);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    jparser jp = {text, text + size, 0};
    jval meta;
    int ok = j_parse(&jp, &meta, 0) && !jp.err;
    ck_assert_msg(ok && meta.type == J_OBJ, "%s: not valid JSON", path);

    run_result res = RUN_SKIP;
    const char *op = j_str(j_get(&meta, "op"));
    const jval *attrs = j_get(&meta, "attributes");
    const jval *inputs = j_get(&meta, "inputs"), *outputs = j_get(&meta, "outputs");
    const jval *eps_v = j_get(attrs, "epsilon");
    p->eps = eps_v ? (float)eps_v->num : 1e-5f;
    ctensor sc = {0}, bi = {0};

    if (!op) {
        fmt_to(why, why_size, "meta.json has no op");
        goto done;
    }
    int is_in = !strcmp(op, "InstanceNormalization"), is_gn = !strcmp(op, "GroupNormalization");
    int is_ln = !strcmp(op, "LayerNormalization");
    if (!is_in && !is_gn && !is_ln) {
        fmt_to(why, why_size, "op %s is not mapped", op);
        goto done;
    }
    if (!load_tensor(dir, inputs, 0, &p->x, why, why_size) ||
        !load_tensor(dir, inputs, 1, &sc, why, why_size) ||
        !load_tensor(dir, inputs, 2, &bi, why, why_size) ||
        !load_tensor(dir, outputs, 0, &p->y, why, why_size))
        goto done;
    if (p->x.rank < 2 || p->y.count != p->x.count) {
        fmt_to(why, why_size, "input rank %d / output size mismatch", p->x.rank);
        goto done;
    }
    p->s = nchw_of(&p->x);
    uint32_t C = p->s.c;
    p->gamma = (float *)malloc(C * sizeof(float));
    p->beta = (float *)malloc(C * sizeof(float));
    ck_assert(p->gamma && p->beta);

    if (is_in) {
        if (sc.count != C || bi.count != C) {
            fmt_to(why, why_size, "InstanceNormalization scale/bias not of size C");
            goto done;
        }
        memcpy(p->gamma, sc.data, C * sizeof(float));
        memcpy(p->beta, bi.data, C * sizeof(float));
        p->groups = 0;
        res = RUN_OK;
    } else if (is_gn) {
        const jval *g = j_get(attrs, "num_groups");
        if (!g || g->num < 1 || C % (uint32_t)g->num) {
            fmt_to(why, why_size, "GroupNormalization without a valid num_groups");
            goto done;
        }
        p->groups = (uint32_t)g->num;
        uint32_t per = C / p->groups;
        if (sc.count == C && bi.count == C) { /* opset 21 */
            memcpy(p->gamma, sc.data, C * sizeof(float));
            memcpy(p->beta, bi.data, C * sizeof(float));
        } else if (sc.count == p->groups && bi.count == p->groups) { /* opset 18 */
            for (uint32_t c = 0; c < C; c++) {
                p->gamma[c] = sc.data[c / per];
                p->beta[c] = bi.data[c / per];
            }
        } else {
            fmt_to(why, why_size, "GroupNormalization scale of %zu values for C %u, %u groups",
                     sc.count, C, p->groups);
            goto done;
        }
        res = RUN_OK;
    } else {
        const jval *ar = j_get(&meta, "axis_resolved");
        const jval *ax = j_get(attrs, "axis");
        int axis = ar ? (int)ar->num : ax ? (int)ax->num : -1;
        if (axis < 0)
            axis += p->x.rank;
        if (p->x.rank != 4 || axis != 1) {
            fmt_to(why, why_size,
                     "LayerNormalization over axes [%d, %d) of a rank-%d input: not the (C, H, W) "
                     "of a 4-D tensor",
                     axis, p->x.rank, p->x.rank);
            goto done;
        }
        /* scale/bias of shape (C, H, W) must be constant per channel */
        size_t hw = o_plane(p->s);
        if (sc.count != C * hw || bi.count != C * hw) {
            fmt_to(why, why_size, "LayerNormalization scale of %zu values, want C*H*W = %zu",
                     sc.count, C * hw);
            goto done;
        }
        for (uint32_t c = 0; c < C; c++) {
            for (size_t i = 1; i < hw; i++) {
                if (sc.data[c * hw + i] != sc.data[c * hw] || bi.data[c * hw + i] != bi.data[c * hw]) {
                    fmt_to(why, why_size,
                             "LayerNormalization axis 1 with a scale/bias that varies within a "
                             "channel: needs an elementwise affine, which inorm does not have");
                    goto done;
                }
            }
            p->gamma[c] = sc.data[c * hw];
            p->beta[c] = bi.data[c * hw];
        }
        p->groups = 1;
        res = RUN_OK;
    }
done:
    free(sc.data);
    free(bi.data);
    j_free(&meta);
    free(text);
    return res;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(onnx_cases)
{
    inorm_backend be = tu_backend(_i);
    const char *root = getenv("INORM_CONFORMANCE_DIR");
    struct stat st;
    if (!root || !root[0] || stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (tu_env_flag("INORM_CONFORMANCE_OPTIONAL")) {
            printf("SKIP conformance: directory \"%s\" missing and INORM_CONFORMANCE_OPTIONAL=1\n",
                   root ? root : "(unset)");
            return;
        }
        ck_abort_msg("conformance directory \"%s\" (INORM_CONFORMANCE_DIR) is missing; set "
                     "INORM_CONFORMANCE_OPTIONAL=1 to skip",
                     root ? root : "(unset)");
    }

    DIR *d = opendir(root);
    ck_assert_msg(d != NULL, "cannot open %s", root);
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char meta[4096];
        fmt_to(meta, sizeof meta, "%s/%s/meta.json", root, de->d_name);
        if (stat(meta, &st) != 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 32;
            names = (char **)realloc(names, cap * sizeof(char *));
            ck_assert(names != NULL);
        }
        names[count] = strdup(de->d_name);
        ck_assert(names[count] != NULL);
        count++;
    }
    closedir(d);
    if (count)
        qsort(names, count, sizeof(char *), cmp_names);

    TU_CTX(ctx, be);
    int ran = 0, skipped = 0;
    for (size_t k = 0; k < count; k++) {
        char dir[4096], why[512] = "";
        fmt_to(dir, sizeof dir, "%s/%s", root, names[k]);
        plan p;
        if (make_plan(dir, &p, why, sizeof why) == RUN_SKIP) {
            printf("  skip %-48s %s\n", names[k], why);
            skipped++;
            plan_free(&p);
            continue;
        }
        o_shape s = p.s, cs = tu_shape(1, s.c, 1, 1);
        size_t n = o_count(s);
        float *y = tu_floats(n);
        double *want = tu_doubles(n);
        for (size_t i = 0; i < n; i++)
            want[i] = (double)p.y.data[i];
        inorm_tensor *tx = tu_tensor(ctx, s, p.x.data), *ty = tu_tensor(ctx, s, NULL);
        inorm_tensor *tg = tu_tensor(ctx, cs, p.gamma), *tb = tu_tensor(ctx, cs, p.beta);
        inorm_norm_params np = {.eps = p.eps, .unbiased = 0};
        if (p.groups == 0)
            TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, &np, ty));
        else
            TU_OK(ctx, inorm_group_norm(ctx, tx, p.groups, tg, tb, &np, ty));
        tu_download(ctx, ty, y, n);
        tu_cmp c = tu_compare_absrel(y, want, n, 1e-4, 1e-4);
        tu_assert_cmp(tu_fmt("conformance %s [%s]", names[k], tu_backend_name(be)), s, &c,
                      "1e-4 abs + 1e-4 rel");
        printf("  ok   %-48s %s, %s eps %g\n", names[k], tu_shape_str(s),
               p.groups ? tu_fmt("group_norm groups %u", p.groups) : "instance_norm",
               (double)p.eps);
        ran++;
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        inorm_tensor_destroy(tg);
        inorm_tensor_destroy(tb);
        free(y), free(want);
        plan_free(&p);
    }
    printf("conformance [%s]: %d cases ran, %d skipped, of %zu in %s\n", tu_backend_name(be), ran,
           skipped, count, root);
    ck_assert_msg(ran > 0, "no conformance case ran from %s (%zu directories)", root, count);
    for (size_t k = 0; k < count; k++)
        free(names[k]);
    free(names);
    tu_ctx_destroy(ctx);
}
END_TEST

int main(void)
{
    tu_init();
    Suite *s = suite_create("conformance");
    TCase *tc = tcase_create("onnx");
    tcase_set_timeout(tc, 300);
    TU_ADD_BACKEND_TEST(tc, onnx_cases);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
