#!/usr/bin/env bash
# The crates as crates.io would get them: `cargo package` packs the library, the server and
# the CLI, then they are built from their packed sources alone (no tests, test data or
# expected outputs), as `cargo package`'s own verify step would build them.
#
# Why not cargo's verify step: it builds each crate alone, and a crate alone resolves other
# features of shared dependencies (libc, log, syn, regex-automata, ...) than the workspace
# does, so three verify builds recompiled most of the dependency graph (320 s of a CI run).
# Here the three packed crates form one workspace, patched to each other as cargo's verify
# patches them to its local registry; the CLI pulls in every feature the workspace uses, so
# the build reuses what the tests compiled and compiles only the three packed crates.
# The library and the server without the CLI's features are compiled by the fuzz build.
set -euo pipefail
cd "$(dirname "$0")/.."

crates=(embedkit embedkit-server embedkit-cli)
cargo package --workspace --exclude embedkit-bench --exclude embedkit-py --allow-dirty --no-verify

version=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "embedkit"))')
dir=target/package/verify
rm -rf "$dir"
mkdir -p "$dir"
for c in "${crates[@]}"; do
    ls -l "target/package/$c-$version.crate"
    tar -xzf "target/package/$c-$version.crate" -C "$dir"
done
cat >"$dir/Cargo.toml" <<EOF
[workspace]
resolver = "2"
members = [$(printf '"%s-'"$version"'", ' "${crates[@]}")]

[patch.crates-io]
embedkit = { path = "embedkit-$version" }
embedkit-server = { path = "embedkit-server-$version" }
EOF
# The workspace's lock file: the versions the tests ran with.
cp Cargo.lock "$dir/Cargo.lock"

# A build must not write into its sources (cargo's verify step checks the same).
sources() { (cd "$dir" && find . -path ./Cargo.lock -prune -o -type f -print0 | sort -z | xargs -0 sha256sum); }
before=$(sources)
# From this folder, so .cargo/config.toml's dev profile applies as it does to the tests.
cargo build --manifest-path "$dir/Cargo.toml" --target-dir target --workspace
after=$(sources)
if [ "$before" != "$after" ]; then
    echo "package: the build changed the packed sources:" >&2
    diff <(echo "$before") <(echo "$after") >&2 || true
    exit 1
fi
echo "package: ${crates[*]} build from their packed sources"
