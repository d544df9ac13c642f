#!/bin/sh
# inorm as a meson subproject: a tiny app finds it with dependency('inorm'),
# which the project provides through meson.override_dependency, builds, runs.
# Usage: subproject_test.sh SOURCE_ROOT
set -eu
source_root=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/app/subprojects"
ln -s "$source_root" "$work/app/subprojects/inorm"
cat > "$work/app/meson.build" <<'MESON'
project('inorm-subproject-app', 'c')
subproject('inorm', default_options : ['tests=false', 'tools=false'])
executable('app', 'app.c', dependencies : dependency('inorm'))
MESON
cat > "$work/app/app.c" <<'C'
#include <inorm.h>
#include <stdio.h>
int main(void)
{
    inorm_context_desc desc = INORM_CONTEXT_DESC_DEFAULT;
    desc.backend = INORM_BACKEND_CPU;
    inorm_context *ctx;
    if (inorm_context_create(&desc, &ctx) != INORM_SUCCESS)
        return 1;
    const float data[4] = { 1, 2, 3, 4 };
    inorm_tensor_desc td = { 1, 1, 2, 2, INORM_FLOAT32, INORM_NCHW };
    inorm_tensor *x;
    float y[4];
    int ok = inorm_tensor_create(ctx, &td, &x) == INORM_SUCCESS &&
             inorm_tensor_write(x, data, sizeof data) == INORM_SUCCESS &&
             inorm_instance_norm(ctx, x, NULL, NULL, NULL, x) == INORM_SUCCESS &&
             inorm_tensor_read(x, y, sizeof y) == INORM_SUCCESS;
    inorm_context_destroy(ctx);
    /* (1 - 2.5) / sqrt(1.25 + 1e-5) */
    if (!ok || y[0] > -1.3416f || y[0] < -1.3417f) {
        fprintf(stderr, "subproject app: unexpected result %g\n", (double)y[0]);
        return 1;
    }
    printf("subproject app: ok\n");
    return 0;
}
C
cd "$work/app"
meson setup build >/dev/null
ninja -C build >/dev/null
./build/app
