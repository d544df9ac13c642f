#!/bin/sh
# Makes the README's before/after figure with inorm-transfer itself, from
# images that inorm-transfer-gen draws. Run from the repository root:
#
#   sh docs/transfer/make-figure.sh [BUILD_DIR [OUT_DIR]]
#
# BUILD_DIR defaults to build, OUT_DIR to docs/transfer (where the committed
# PNGs live; the test transfer-figure remakes them elsewhere and compares).
# INORM_TRANSFER and INORM_TRANSFER_GEN, if set, name the two programs.
set -eu
build=${1:-build}
out=${2:-docs/transfer}
gen=${INORM_TRANSFER_GEN:-$build/tools/transfer/inorm-transfer-gen}
transfer=${INORM_TRANSFER:-$build/tools/transfer/inorm-transfer}

"$gen" scene 256 160 "$out/content.png"
"$gen" sunset 256 160 "$out/style.png"
"$gen" ocean 256 160 "$out/style-ocean.png"
"$gen" mask 256 160 "$out/mask.png"
"$transfer" "$out/content.png" "$out/style.png" "$out/result.png" --space lab
"$transfer" "$out/content.png" "$out/style.png" "$out/result-lalphabeta.png" --space lalphabeta
"$transfer" "$out/content.png" "$out/style.png" "$out/result-mask.png" \
    --mask "$out/mask.png" --mask-style "$out/style-ocean.png"
