#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ with cargo-fuzz (libFuzzer, AddressSanitizer).
#
#   scripts/fuzz.sh --runs 2000 [target ...]      a fixed number of inputs each (CI)
#   scripts/fuzz.sh --seconds 600 [target ...]    a fixed time each
#   scripts/fuzz.sh --build-only                  only build them
#   FUZZ_JOBS=N: targets run at once (default: the number of cores)
#   --quick-build (first): optimized at opt-level 1 in 16 codegen units instead of
#   cargo-fuzz's opt-level 3 in one (a fifth less build time for CI's smoke run, which
#   runs a fixed number of inputs; the same sanitizer, instrumentation and assertions)
#
# The machine has only the stable toolchain; cargo-fuzz needs nightly's -Z flags, which
# RUSTC_BOOTSTRAP=1 lets stable rustc take. New inputs go to fuzz/corpus/<target>
# (ignored by git), seeds come from fuzz/seeds/<target>, and a crash is written to
# fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

budget=(-runs=2000)
build_only=
build=()
if [ "${1:-}" = --quick-build ]; then
    build=(--codegen-units 16)
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=1
    shift
fi
case "${1:-}" in
--runs) budget=("-runs=$2"); shift 2 ;;
--seconds) budget=("-max_total_time=$2"); shift 2 ;;
--build-only) build_only=1; shift ;;
esac
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    # The slowest first (tokenize_cut: about 125 of the 130 s a CI smoke run takes), so
    # that the others run beside it on the other core.
    targets=(tokenize_cut image tokenizer_files archive text_embed server_request bm25)
fi

fuzz=$(bash scripts/tool.sh cargo-fuzz)
if [ ! -f target/test-models/manifest.json ]; then
    echo "fuzz: the seeded test models are missing; run \`make test-models\` first" >&2
    exit 1
fi

export RUSTC_BOOTSTRAP=1
(cd fuzz && "$fuzz" fuzz build "${build[@]}")
[ -z "$build_only" ] || exit 0
# The targets run side by side, one per core (libFuzzer without -jobs is one process on
# one core; run one after another they left the other core idle), each into a log of its
# own that is printed when it ends; any failure fails the script after all have ended.
logs=fuzz/logs
mkdir -p "$logs"
run_target() {
    local t=$1
    mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t"
    if (cd fuzz && "$fuzz" fuzz run "${build[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        "${budget[@]}" -timeout=60 -rss_limit_mb=4096 -max_len=131072 -print_final_stats=1) \
        >"$logs/$t.log" 2>&1; then
        echo "fuzz: $t (${budget[*]}): ok, $(grep -c . "$logs/$t.log") lines in $logs/$t.log"
        grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' "$logs/$t.log" | sed "s/^/  $t: /"
    else
        echo "fuzz: $t FAILED; the end of $logs/$t.log:"
        tail -60 "$logs/$t.log"
        return 1
    fi
}
export -f run_target
export fuzz logs
export FUZZ_BUILD="${build[*]}" FUZZ_BUDGET="${budget[*]}"
jobs=${FUZZ_JOBS:-$(nproc)}
printf '%s\n' "${targets[@]}" |
    xargs -P "$jobs" -I{} bash -c 'build=($FUZZ_BUILD); budget=($FUZZ_BUDGET); run_target "$1"' _ {}
