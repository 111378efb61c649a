#!/usr/bin/env bash
# Runs a command as a user without a Rust toolchain would: no directory on PATH holds
# cargo, rustc or rustup, and cargo's environment is unset. Then the embedkit a Python
# imports can only be the installed wheel (nothing could build one from source).
set -euo pipefail
clean=()
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [[ -z "$d" || -e "$d/cargo" || -e "$d/rustc" || -e "$d/rustup" ]] && continue
  clean+=("$d")
done
PATH="$(IFS=:; echo "${clean[*]}")"
export PATH
unset CARGO CARGO_HOME RUSTUP_HOME RUSTC RUSTUP_TOOLCHAIN CARGO_TARGET_DIR
if command -v cargo >/dev/null || command -v rustc >/dev/null; then
  echo "without_rust.sh: a Rust toolchain is still on PATH" >&2
  exit 1
fi
exec "$@"
