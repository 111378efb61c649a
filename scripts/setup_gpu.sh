#!/usr/bin/env bash
# Fetches the GPU build of ONNX Runtime from PyPI into <cache>/runtime-gpu/, idempotently:
#   - libonnxruntime.so and its CUDA provider, from the `onnxruntime-gpu` wheel (CUDA 13);
#   - unless --runtime-only, the CUDA and cuDNN libraries that provider needs, from
#     NVIDIA's wheels (the ones `onnxruntime-gpu[cuda,cudnn]` names), as
#     nvidia/<package>/lib/*.so*; embedkit loads them from there (no LD_LIBRARY_PATH).
# Use it with ORT_DYLIB_PATH=<cache>/runtime-gpu and --device cuda (or auto).
# <cache> is $EMBEDKIT_HOME, else $XDG_CACHE_HOME/embedkit, else ~/.cache/embedkit.
# PyPI's newest onnxruntime-gpu is 1.31.1 (the CPU build used elsewhere is 1.32.0).
set -euo pipefail

ORT_GPU_VERSION=1.31.1
NVIDIA=("nvidia-cuda-runtime~=13.0" "nvidia-cuda-nvrtc~=13.0" "nvidia-cufft~=12.0"
    "nvidia-curand~=10.0" "nvidia-cudnn-cu13~=9.0")
CACHE="${EMBEDKIT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/embedkit}"
DIR="$CACHE/runtime-gpu"
PY="${PYTHON:-python3}"
runtime_only=0
[ "${1:-}" = "--runtime-only" ] && runtime_only=1

log() { printf 'setup-gpu: %s\n' "$*" >&2; }

# Extracts the members of a wheel whose names match a regex into a folder, without the
# prefix given, each atomically.
unzip_matching() {
    "$PY" "$(dirname "$0")/unzip.py" "$1" --match "$2" --strip "$3" "$4"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$DIR"

lib="$DIR/libonnxruntime.so.$ORT_GPU_VERSION"
if [ -f "$lib" ] && [ -f "$DIR/libonnxruntime_providers_cuda.so" ]; then
    log "onnxruntime-gpu $ORT_GPU_VERSION already in $DIR"
else
    log "fetching onnxruntime-gpu==$ORT_GPU_VERSION from PyPI"
    "$PY" -m pip download --quiet --no-deps --disable-pip-version-check --only-binary=:all: \
        -d "$work/ort" "onnxruntime-gpu==$ORT_GPU_VERSION" >&2
    wheel=$(ls "$work"/ort/onnxruntime_gpu-*.whl)
    unzip_matching "$wheel" 'onnxruntime/capi/libonnxruntime[^/]*\.so[.0-9]*' \
        onnxruntime/capi/ "$DIR"
fi
ln -sfn "libonnxruntime.so.$ORT_GPU_VERSION" "$DIR/libonnxruntime.so"

if [ "$runtime_only" = 1 ]; then
    log "runtime only: $DIR (CUDA libraries not fetched)"
    exit 0
fi
if [ -f "$DIR/nvidia/.done" ]; then
    log "CUDA libraries already in $DIR/nvidia"
    exit 0
fi
log "fetching ${NVIDIA[*]} (and their NVIDIA dependencies) from PyPI; a few GB"
"$PY" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    -d "$work/nv" "${NVIDIA[@]}" >&2
for wheel in "$work"/nv/nvidia_*.whl; do
    unzip_matching "$wheel" 'nvidia/[^/]+/lib/[^/]+\.so[.0-9]*' "" "$DIR"
done
touch "$DIR/nvidia/.done"
log "done: ORT_DYLIB_PATH=$DIR"
