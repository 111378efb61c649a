#!/usr/bin/env bash
# A venv with the embedkit Python package built from an earlier commit, for the family
# benchmark's before/after rows:  scripts/bench/before_venv.sh COMMIT DIR
# The source is exported with `git archive` (no worktree left behind); the package is
# built in release mode, against the same onnxruntime as the bench venv.
set -euo pipefail
commit=$1
dir=$2
python=${PYTHON:-python3}
if [ -f "$dir/.done" ] && [ "$(cat "$dir/.done")" = "$(git rev-parse "$commit")" ]; then
    exit 0
fi
rm -rf "$dir"
mkdir -p "$dir/src"
git archive "$commit" | tar -x -C "$dir/src"
"$python" -m venv "$dir/venv"
"$dir/venv/bin/pip" install --quiet --disable-pip-version-check onnxruntime==1.32.0 "$dir/src"
git rev-parse "$commit" > "$dir/.done"
