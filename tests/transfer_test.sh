#!/bin/sh
# inorm-transfer end to end, on small generated images and the crafted files
# of tests/data. One scenario per meson test:
#
#   transfer_test.sh TOOL GEN CHECK DATA SCENARIO BACKEND
#
# TOOL inorm-transfer, GEN inorm-transfer-gen, CHECK transfer_check, DATA
# tests/data; BACKEND cpu (--cpu) or vulkan (the default device; exit 77,
# skipped, when there is none and INORM_TEST_ALLOW_NO_VULKAN=1).
#
# Scenarios and their tolerances (8-bit samples; "1/255" = one level):
#   backends    Vulkan and the CPU path give the same image within 1/255 per
#               sample, for every space and option
#   round-trip  --alpha 0 (sRGB -> space -> sRGB, nothing transferred) returns
#               the content within 1/255, for every space
#   self        an image transferred onto itself comes back within 1/255
#   stats       the result's per-channel mean and std in the chosen space are
#               the style's within: rgb 0.01, lab 1.0 (L*, a*, b* units),
#               lalphabeta 0.02 -- what 8-bit rounding and clipping at the
#               edge of the sRGB gamut leave; lab-luma-only keeps a* and b*
#               and --preserve-luminance keeps L* (within 1.0); weights 1,0
#               and 0,1 of a style mix give each style alone, an all-white
#               mask gives --mask-style alone, an all-black one STYLE alone
#   tiled       bands of a few hundred pixels (--tile-pixels) give the image
#               of the whole plan within 1/255, for every option
#   files       supported PNG/JPEG variants are read (alpha kept exactly);
#               corrupt, truncated and unsupported files are refused with a
#               message naming the file and exit status 1 (no crash); a failed
#               run leaves OUT as it was and no temporary file; bad usage is 2
#   figure      docs/transfer/make-figure.sh remakes the README's PNGs within 1/255
#   memcheck    the tool under valgrind: no memory error or leak, on the
#               whole and tiled plans and on the refusal paths
#   big         an 8000 x 6000 content: Vulkan (in bands on lavapipe) and the
#               CPU path (whole) give the same image within 1/255
set -u

tool=$1 gen=$2 check=$3 data=$4 scenario=$5 backend=$6
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# Results go to $tmp/log as "ok: ..." and "FAIL: ..." lines, counted at the end.
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; }

if [ "$backend" = cpu ]; then
    device="--cpu"
else
    device="--device 0"
    "$gen" noise 8 8 "$tmp/probe.png" || exit 1
    if ! "$tool" "$tmp/probe.png" "$tmp/probe.png" "$tmp/probe-out.png" --device 0 2>"$tmp/probe.err"; then
        cat "$tmp/probe.err"
        if [ "${INORM_TEST_ALLOW_NO_VULKAN:-0}" = 1 ]; then
            echo "SKIP: no Vulkan device"
            exit 77
        fi
        echo "FAIL: no Vulkan device (set INORM_TEST_ALLOW_NO_VULKAN=1 to skip)"
        exit 1
    fi
fi

# Images: a content scene, three styles, a mask, a 16-bit content with alpha.
make_images() {
    "$gen" scene 96 64 "$tmp/content.png" &&
    "$gen" sunset 80 60 "$tmp/sunset.png" &&
    "$gen" ocean 64 64 "$tmp/ocean.png" --seed 3 &&
    "$gen" moss 50 40 "$tmp/moss.png" --seed 5 &&
    "$gen" mask 96 64 "$tmp/mask.png" &&
    "$gen" scene 72 48 "$tmp/content16.png" --depth 16 --alpha &&
    "$gen" mask 72 48 "$tmp/mask16.png"
}
if ! make_images; then
    echo "FAIL: generating the images"
    exit 1
fi

# run NAME ARGS...: inorm-transfer with the backend's device option into $tmp/NAME.png
# (Functions share variables in sh: each uses names of its own.)
run() {
    run_name=$1
    shift
    # shellcheck disable=SC2086
    if "$tool" "$@" "$tmp/$run_name.png" $device 2>"$tmp/$run_name.err"; then
        return 0
    fi
    cat "$tmp/$run_name.err"
    bad "inorm-transfer $* failed"
    return 1
}

# check_status $? WHAT DETAIL: ok or FAIL by the status of the command just
# before ($? expands first, before any command substitution in DETAIL)
check_status() {
    if [ "$1" -eq 0 ]; then ok "$2: $3"; else bad "$2: $3"; fi
}

# expect_same NAME A B [MAX]
expect_same() {
    if "$check" diff "$2" "$3" "${4:-1}"; then ok "$1"; else bad "$1"; fi
}

# The option sets every comparison goes through.
cases="lab|--space lab
rgb|--space rgb
lalphabeta|--space lalphabeta
luma|--space lab-luma-only
preserve-lab|--preserve-luminance
preserve-rgb|--space rgb --preserve-luminance
preserve-lab-alpha-beta|--space lalphabeta --preserve-luminance
half|--alpha 0.5
mix|--style2 OCEAN --weights 0.3,0.7
mask|--mask MASK --mask-style OCEAN
mask-mix-lalphabeta|--space lalphabeta --mask MASK --mask-style MOSS --style2 OCEAN --weights 0.5,0.5"

# for_each_case FUNCTION: calls FUNCTION NAME OPTIONS... for each case
for_each_case() {
    echo "$cases" | while IFS='|' read -r case_name opts; do
        opts=$(echo "$opts" | sed "s|OCEAN|$tmp/ocean.png|g; s|MASK|$tmp/mask.png|g; s|MOSS|$tmp/moss.png|g")
        # shellcheck disable=SC2086
        "$1" "$case_name" $opts
    done
}

case "$scenario" in
backends)
    [ "$backend" = vulkan ] || { echo "backends compares Vulkan with the CPU path: run it with vulkan"; exit 2; }
    one() {
        name=$1
        shift
        run "$name-vk" "$tmp/content.png" "$tmp/sunset.png" "$@" &&
        "$tool" "$tmp/content.png" "$tmp/sunset.png" "$@" "$tmp/$name-cpu.png" --cpu &&
        expect_same "Vulkan = CPU path: $name" "$tmp/$name-vk.png" "$tmp/$name-cpu.png"
    }
    for_each_case one > "$tmp/log" 2>&1
    run alpha16-vk "$tmp/content16.png" "$tmp/moss.png" --mask "$tmp/mask16.png" --mask-style "$tmp/ocean.png" >>"$tmp/log" 2>&1 &&
    "$tool" "$tmp/content16.png" "$tmp/moss.png" --mask "$tmp/mask16.png" --mask-style "$tmp/ocean.png" "$tmp/alpha16-cpu.png" --cpu &&
    expect_same "Vulkan = CPU path: 16-bit with alpha and a mask" "$tmp/alpha16-vk.png" "$tmp/alpha16-cpu.png" >>"$tmp/log" 2>&1
    ;;
round-trip)
    for space in rgb lab lab-luma-only lalphabeta; do
        run "rt-$space" "$tmp/content.png" "$tmp/sunset.png" --space "$space" --alpha 0 &&
        expect_same "round trip through $space" "$tmp/content.png" "$tmp/rt-$space.png"
        run "rt16-$space" "$tmp/content16.png" "$tmp/sunset.png" --space "$space" --alpha 0 &&
        expect_same "16-bit round trip through $space" "$tmp/content16.png" "$tmp/rt16-$space.png"
    done > "$tmp/log" 2>&1
    ;;
self)
    for space in rgb lab lab-luma-only lalphabeta; do
        run "self-$space" "$tmp/content.png" "$tmp/content.png" --space "$space" &&
        expect_same "content onto itself, $space" "$tmp/content.png" "$tmp/self-$space.png"
        run "self-sunset-$space" "$tmp/sunset.png" "$tmp/sunset.png" --space "$space" --tile-pixels 500 &&
        expect_same "style onto itself in bands, $space" "$tmp/sunset.png" "$tmp/self-sunset-$space.png"
        run "self16-$space" "$tmp/content16.png" "$tmp/content16.png" --space "$space" &&
        expect_same "16-bit with alpha onto itself, $space" "$tmp/content16.png" "$tmp/self16-$space.png"
    done > "$tmp/log" 2>&1
    ;;
stats)
    {
        for spec in rgb:0.01 lab:1.0 lalphabeta:0.02; do
            space=${spec%%:*} tol=${spec#*:}
            run "st-$space" "$tmp/content.png" "$tmp/sunset.png" --space "$space" &&
            if "$check" match "$tmp/st-$space.png" "$tmp/sunset.png" "$space" "$tol" "$tol"; then
                ok "statistics of the result = the style's in $space"
            else
                bad "statistics in $space"
            fi
        done
        run st-luma "$tmp/content.png" "$tmp/sunset.png" --space lab-luma-only &&
        "$check" channel-diff "$tmp/st-luma.png" "$tmp/content.png" lab 1 1.0 1 &&
        "$check" channel-diff "$tmp/st-luma.png" "$tmp/content.png" lab 2 1.0 1 &&
        "$check" match "$tmp/st-luma.png" "$tmp/sunset.png" lab 1.0 100 | head -n 1 | grep -v 'outside'
        check_status $? lab-luma-only "L* moves to the style's, a* and b* stay the content's"
        # The moss style keeps the result inside the sRGB gamut, where no clipping moves L*.
        run st-keep "$tmp/content.png" "$tmp/moss.png" --preserve-luminance &&
        "$check" channel-diff "$tmp/st-keep.png" "$tmp/content.png" lab 0 1.0 1
        check_status $? --preserve-luminance "keeps L* (lab)"
        run st-keep-rgb "$tmp/content.png" "$tmp/moss.png" --space rgb --preserve-luminance &&
        "$check" channel-diff "$tmp/st-keep-rgb.png" "$tmp/content.png" lab 0 2.0 1
        check_status $? --preserve-luminance "keeps L* (rgb, through L*a*b*)"
        run st-sunset "$tmp/content.png" "$tmp/sunset.png" && run st-ocean "$tmp/content.png" "$tmp/ocean.png" &&
        run st-w10 "$tmp/content.png" "$tmp/sunset.png" --style2 "$tmp/ocean.png" --weights 1,0 &&
        run st-w01 "$tmp/content.png" "$tmp/sunset.png" --style2 "$tmp/ocean.png" --weights 0,1 &&
        expect_same "weights 1,0 = the first style alone" "$tmp/st-w10.png" "$tmp/st-sunset.png" &&
        expect_same "weights 0,1 = the second style alone" "$tmp/st-w01.png" "$tmp/st-ocean.png"
        "$gen" white 96 64 "$tmp/white.png" && "$gen" black 96 64 "$tmp/black.png" &&
        run st-white "$tmp/content.png" "$tmp/sunset.png" --mask "$tmp/white.png" --mask-style "$tmp/ocean.png" &&
        run st-black "$tmp/content.png" "$tmp/sunset.png" --mask "$tmp/black.png" --mask-style "$tmp/ocean.png" &&
        expect_same "an all-white mask = --mask-style alone" "$tmp/st-white.png" "$tmp/st-ocean.png" &&
        expect_same "an all-black mask = STYLE alone" "$tmp/st-black.png" "$tmp/st-sunset.png"
    } > "$tmp/log" 2>&1
    ;;
tiled)
    one() {
        name=$1
        shift
        run "$name-whole" "$tmp/content.png" "$tmp/sunset.png" "$@" &&
        run "$name-bands" "$tmp/content.png" "$tmp/sunset.png" "$@" --tile-pixels 300 &&
        expect_same "bands = whole: $name" "$tmp/$name-whole.png" "$tmp/$name-bands.png"
    }
    for_each_case one > "$tmp/log" 2>&1
    {
        run b16-whole "$tmp/content16.png" "$tmp/moss.png" --mask "$tmp/mask16.png" --mask-style "$tmp/ocean.png" &&
        run b16-bands "$tmp/content16.png" "$tmp/moss.png" --mask "$tmp/mask16.png" --mask-style "$tmp/ocean.png" --tile-pixels 200 &&
        expect_same "bands = whole: 16-bit, alpha, mask" "$tmp/b16-whole.png" "$tmp/b16-bands.png" &&
        "$check" alpha-equal "$tmp/b16-bands.png" "$tmp/content16.png" && ok "alpha kept exactly in bands"
    } >> "$tmp/log" 2>&1
    ;;
files)
    {
        for f in rgb.png rgb.jpg gray16.png gray_alpha.png palette_trns.png interlaced.png gray.jpg; do
            if run "read-$f" "$data/$f" "$tmp/sunset.png"; then ok "reads $f"; fi
        done
        "$check" alpha-equal "$tmp/read-gray_alpha.png.png" "$data/gray_alpha.png" && ok "grey + alpha: alpha kept"
        "$check" info "$tmp/read-gray16.png.png" | grep -qx '24 16 3 16'
        check_status $? "16-bit grey in" "16-bit RGB out"
        # shellcheck disable=SC2086
        "$tool" "$tmp/content.png" "$tmp/sunset.png" "$tmp/out.jpg" $device 2>/dev/null &&
        "$check" info "$tmp/out.jpg" | grep -qx '96 64 3 8'
        check_status $? "JPEG output" "8-bit RGB"
        echo "previous contents" > "$tmp/keep.png"
        for f in truncated.png no_iend.png bad_crc.png corrupt_idat.png zero_width.png huge.png truncated.jpg \
                 bad_huffman.jpg cmyk.jpg not_an_image.png empty.png; do
            for role in content style; do
                if [ $role = content ]; then set -- "$data/$f" "$tmp/sunset.png"; else set -- "$tmp/content.png" "$data/$f"; fi
                # shellcheck disable=SC2086
                "$tool" "$@" "$tmp/keep.png" $device 2>"$tmp/err"
                status=$?
                if [ $status -eq 1 ] && grep -q "$f" "$tmp/err" && [ "$(cat "$tmp/keep.png")" = "previous contents" ] &&
                   ! grep -q -e Sanitizer -e 'runtime error' "$tmp/err"; then
                    ok "$f as $role refused: $(cat "$tmp/err")"
                else
                    bad "$f as $role: exit $status, message '$(cat "$tmp/err")'"
                fi
            done
        done
        # shellcheck disable=SC2086
        "$tool" "$tmp/content.png" "$tmp/sunset.png" "$tmp/new.png" --mask "$data/rgb.png" --mask-style "$tmp/ocean.png" $device 2>"$tmp/err"
        [ $? -eq 1 ] && [ ! -e "$tmp/new.png" ]
        check_status $? "a mask of another size is refused" "$(cat "$tmp/err")"
        leftovers=$(find "$tmp" -name '.inorm-transfer-*' | wc -l)
        [ "$leftovers" -eq 0 ]
        check_status $? "temporary files left behind" "$leftovers"
        # shellcheck disable=SC2086
        "$tool" "$tmp/content.png" "$tmp/sunset.png" "$tmp/no/such/dir/out.png" $device 2>"$tmp/err"
        [ $? -eq 1 ]
        check_status $? "unwritable output refused" "$(cat "$tmp/err")"
        for args in "" "$tmp/content.png" "a b c.gif" "a b c.png --space hsv" "a b c.png --alpha x" \
                    "a b c.png --weights 1,1" "a b c.png --mask m.png" "a b c.png --quality 0" \
                    "a b c.png --space lab-luma-only --preserve-luminance" "a b c.png --bogus"; do
            # shellcheck disable=SC2086
            "$tool" $args >/dev/null 2>"$tmp/err"
            [ $? -eq 2 ]
            check_status $? "usage error, exit 2 ('$args')" "$(head -n 1 "$tmp/err")"
        done
    } > "$tmp/log" 2>&1
    ;;
figure)
    # The README's figure: docs/transfer/make-figure.sh again, into $tmp; every
    # PNG must match the committed one within 1/255.
    docs=$(cd "$data/../../docs/transfer" && pwd)
    {
        mkdir "$tmp/figure" &&
        INORM_TRANSFER=$tool INORM_TRANSFER_GEN=$gen sh "$docs/make-figure.sh" unused "$tmp/figure"
        check_status $? "make-figure.sh" "runs"
        for png in "$docs"/*.png; do
            expect_same "the committed $(basename "$png") is what the tool makes" "$png" "$tmp/figure/$(basename "$png")"
        done
    } > "$tmp/log" 2>&1
    ;;
memcheck)
    # The tool itself under valgrind (the cpu suite's valgrind wrapper would
    # check the shell instead): the whole and tiled plans, a mask, a style mix,
    # 16-bit alpha, JPEG out, and the refusal paths (longjmp out of libpng and
    # libjpeg) leak nothing and touch no bad memory. VALGRIND is its path.
    vg="${VALGRIND:-valgrind} --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,indirect --quiet"
    {
        for opts in "" "--tile-pixels 700 --space lalphabeta" "--mask $tmp/mask.png --mask-style $tmp/ocean.png" \
                    "--style2 $tmp/ocean.png --weights 0.4,0.6 --space rgb --preserve-luminance" "--space lab-luma-only"; do
            # shellcheck disable=SC2086
            $vg "$tool" "$tmp/content.png" "$tmp/sunset.png" "$tmp/m.png" $opts $device
            check_status $? "memcheck" "inorm-transfer $opts"
        done
        # shellcheck disable=SC2086
        $vg "$tool" "$tmp/content16.png" "$tmp/moss.png" "$tmp/m.jpg" --mask "$tmp/mask16.png" --mask-style "$tmp/ocean.png" $device
        check_status $? "memcheck" "16-bit alpha content, JPEG out"
        for f in truncated.png bad_crc.png huge.png truncated.jpg bad_huffman.jpg cmyk.jpg empty.png; do
            # shellcheck disable=SC2086
            $vg "$tool" "$data/$f" "$tmp/sunset.png" "$tmp/m.png" $device 2>"$tmp/err"
            check_status "$(( $? == 1 ? 0 : 1 ))" "memcheck" "$f refused cleanly: $(cat "$tmp/err")"
        done
    } > "$tmp/log" 2>&1
    ;;
big)
    # 8000 x 6000: 576 MB of fp32 RGB, more than lavapipe binds in one tensor
    # (128 MiB), so Vulkan cuts it into bands; the CPU path takes it whole.
    [ "$backend" = vulkan ] || { echo "big compares Vulkan's bands with the CPU path: run it with vulkan"; exit 2; }
    {
        "$gen" scene 8000 6000 "$tmp/big.png" && "$gen" sunset 640 480 "$tmp/big-style.png" &&
        run big-vk "$tmp/big.png" "$tmp/big-style.png" --time && cat "$tmp/big-vk.err" &&
        "$tool" "$tmp/big.png" "$tmp/big-style.png" "$tmp/big-cpu.png" --cpu --time &&
        expect_same "8000x6000: Vulkan in bands = the CPU path whole" "$tmp/big-vk.png" "$tmp/big-cpu.png"
    } > "$tmp/log" 2>&1
    ;;
*)
    echo "unknown scenario $scenario"
    exit 2
    ;;
esac

cat "$tmp/log"
passed=$(grep -c '^ok: ' "$tmp/log")
failed=$(grep -c '^FAIL: ' "$tmp/log")
echo "transfer $scenario ($backend): $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
