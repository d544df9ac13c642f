#!/usr/bin/env bash
# CI: cross-compile inorm for aarch64 Linux (glibc) with cross/aarch64-linux-gnu.ini
# and run the CPU-path test suite under qemu-user. Needs Debian 12; as root it
# installs what is missing through apt (Debian's archive only).
#
#   bash .ci/cross-aarch64.sh          # from anywhere; builds in build-aarch64/
#
# Environment: BUILD_DIR (default build-aarch64), INORM_CONFORMANCE_DIR (default
# ../shared/conformance/onnx when it exists, as in .ci/run).
# Exits non-zero on any failure; ends with "aarch64: N passed, M failed".
# The Vulkan suite is not run: no arm64 Vulkan driver here, and lavapipe under
# qemu would cost minutes for nothing the x86-64 run does not already cover.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD_DIR=${BUILD_DIR:-build-aarch64}
start=$SECONDS
phase() { echo "== $* (at $((SECONDS - start)) s)"; }
# Any early exit (a failed step under set -e included) still ends with the
# closing count line.
counted=0
trap '[ "$counted" -eq 1 ] || echo "aarch64: 0 passed, 1 failed"' EXIT

# Build machine: meson, glslangValidator, Vulkan headers and volk sources
# (architecture-independent; Debian's cross gcc reads /usr/include), the cross
# toolchain and qemu. Host (arm64) side, through multiarch: Check, which pulls
# in libsubunit0/libsubunit-dev and libc6:arm64 (the loader and glibc the
# tests run on), and libstdc++6 for the C++ header test.
HOST_PACKAGES=(meson ninja-build glslang-tools libvulkan-dev libvulkan-volk-dev pkg-config
               gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user)
ARM64_PACKAGES=(check:arm64 libsubunit0:arm64 libc6:arm64 libstdc++6:arm64)

missing=()
for p in "${HOST_PACKAGES[@]}" "${ARM64_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  phase "installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "cross-aarch64: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
  fi
  log=$(mktemp)
  if ! { $sudo apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
       >"$log" 2>&1; then
    cat "$log" >&2
    echo "cross-aarch64: apt-get failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

conformance=$(cd .. && pwd)/shared/conformance/onnx
if [ -z "${INORM_CONFORMANCE_DIR:-}" ] && [ -d "$conformance" ]; then
  export INORM_CONFORMANCE_DIR="$conformance"
fi

phase "configure $BUILD_DIR (cross/aarch64-linux-gnu.ini)"
setup_args=(--cross-file cross/aarch64-linux-gnu.ini -Dtools=false -Dtests=true)
if [ -f "$BUILD_DIR/meson-private/coredata.dat" ]; then
  meson setup --reconfigure "$BUILD_DIR" "${setup_args[@]}"
else
  meson setup "$BUILD_DIR" "${setup_args[@]}"
fi

phase "build"
ninja -C "$BUILD_DIR"

# The library really is aarch64 code.
lib=$(find "$BUILD_DIR/src" -maxdepth 1 -name 'libinorm.so*' -type f | head -n 1)
machine=$(aarch64-linux-gnu-readelf -h "$lib" | sed -n 's/^ *Machine: *//p')
echo "$lib: $machine"
[ "$machine" = "AArch64" ] || { echo "cross-aarch64: $lib is not AArch64" >&2; exit 1; }

# qemu runs the CPU path several times slower than native (family-cpu, the
# longest, took 15-70 s on 2 busy cores alone, 230 s beside .ci/run's ASan
# stage), so the tests get three times their timeouts, as under valgrind.
# test_family's sweeps of shapes picked for the Vulkan plans' geometries are
# more shapes through the same CPU-path loops (as in .ci/run's valgrind stage).
phase "meson test --suite cpu (under qemu-aarch64)"
status=0
CK_EXCLUDE_TAGS=vulkan_geometry meson test -C "$BUILD_DIR" --suite cpu --print-errorlogs --timeout-multiplier 3 ||
  status=1

log="$BUILD_DIR/meson-logs/testlog.json"
passed=0
failed=0
if [ -f "$log" ]; then
  passed=$(grep -c '"result": "OK"' "$log" || true)
  failed=$(grep -c '"result": "\(FAIL\|TIMEOUT\|ERROR\|UNEXPECTEDPASS\)"' "$log" || true)
fi
if [ "$passed" -eq 0 ]; then
  echo "cross-aarch64: no test passed" >&2
  status=1
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
fi
phase "done"
counted=1
echo "aarch64: ${passed} passed, ${failed} failed"
exit "$status"
