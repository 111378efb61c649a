#!/usr/bin/env bash
# Runs the README's quick starts as a newcomer would: `cargo install --path
# crates/embedkit-cli` into a scratch root, then the README's Shell block verbatim (taken
# from README.md, so the two cannot drift) with that `embedkit` on PATH, and the Rust
# example. Assumes `make setup` ran. The install is a debug build into the workspace's
# target folder (the tests' artifacts are reused); release differs only in optimization.
set -euo pipefail
cd "$(dirname "$0")/.."
root=target/install
cargo install --quiet --locked --debug --force --path crates/embedkit-cli --root "$root" --target-dir target
block=$(python3 - <<'PY'
import re
text = open("README.md").read()
after = text[text.index("**Shell**"):]
print(re.search(r"```sh\n(.*?)```", after, re.S).group(1))
PY
)
out=$(PATH="$PWD/$root/bin:$PATH" bash -euo pipefail -c "$(grep -v '^cargo install' <<<"$block")")
cut -c1-100 <<<"$out"
# The search ranks the cat sentence first for "pets", then prints one 384-number vector.
first=$(grep -m1 '^ *1\. ' <<<"$out" || true)
[[ "$first" == *"Cats purr"* ]] || { echo "quickstart: expected the cat sentence first, got: $first" >&2; exit 1; }
n=$(tail -1 <<<"$out" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["embedding"]))')
[[ "$n" == 384 ]] || { echo "quickstart: expected a 384-number vector, got $n" >&2; exit 1; }
# Not `tee /dev/stderr`: when stderr is a file (a CI log), opening it again truncates it.
# The example is built as the tests build it (the workspace's features, minus the Python
# extension's): `cargo run -p embedkit` would resolve embedkit's features alone and
# rebuild half the dependency graph for one small binary.
cargo build --quiet --workspace --exclude embedkit-py --example quickstart
example=$(target/debug/examples/quickstart)
printf '%s\n' "$example"
grep -qx "2 vectors of 384 numbers" <<<"$example" || { echo "quickstart: the Rust example printed: $example" >&2; exit 1; }
echo "quickstart: the README's shell and Rust quick starts work"
