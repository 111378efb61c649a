#!/usr/bin/env bash
# The test tiers, one timed step after another; at the end, pass or fail, a table of each
# step's wall time and the disk in use after it.
#
#   scripts/ci.sh check   fmt, clippy, unit tests and the fast integration tests (the loop
#                         while working: minutes)
#   scripts/ci.sh test    every Rust and Python test, parity with fastembed included
#                         (`make test`, the README's test command)
#   scripts/ci.sh ci      test, plus what only packaging needs: the README's quick starts,
#                         `cargo package`, and the fuzz targets under AddressSanitizer
#                         (`make ci`, what .ci/run runs)
#
# Each step is a make target of its own, so one can be re-run alone. The Python virtual
# environments are made in the background while the CPU compiles (they wait on the
# network); steps that need them wait for them first.
set -uo pipefail
cd "$(dirname "$0")/.."

tier=${1:-}
case "$tier" in
check | test | ci) ;;
*)
    echo "usage: scripts/ci.sh check|test|ci" >&2
    exit 2
    ;;
esac

MAKE=${MAKE:-make}
mkdir -p target/ci
table=target/ci/steps-$tier.tsv
: >"$table"
t0=$(date +%s)
declare -A bg_pid=() bg_start=()

disk() {
    # What the builds and venvs of this checkout occupy, and the disk's free space.
    local used
    used=$(du -shc target fuzz/target .venv-* 2>/dev/null | tail -1 | cut -f1)
    printf '%s (%s free)' "${used:-0}" "$(df -h . | awk 'NR==2 {print $4}')"
}

report() {
    local rc=$? pid
    # A step that failed leaves no background step running on.
    for pid in "${bg_pid[@]}"; do
        kill -- "-$pid" 2>/dev/null || true
    done
    {
        echo
        echo "== scripts/ci.sh $tier: $( ((rc == 0)) && echo passed || echo FAILED) in $(($(date +%s) - t0)) s"
        printf '%-24s %8s  %-6s  %s\n' step seconds result "disk used after it"
        while IFS=$'\t' read -r name secs result used; do
            printf '%-24s %8s  %-6s  %s\n' "$name" "$secs" "$result" "$used"
        done <"$table"
    } >&2
    exit "$rc"
}
trap report EXIT

# step NAME COMMAND...: runs COMMAND, records its time; a failure ends the run.
step() {
    local name=$1 s rc
    shift
    echo "== step $name: $*" >&2
    s=$(date +%s)
    "$@"
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" $(($(date +%s) - s)) "$( ((rc == 0)) && echo ok || echo FAIL)" "$(disk)" >>"$table"
    ((rc == 0)) || exit "$rc"
}

# bg NAME COMMAND...: runs COMMAND in the background, its output in target/ci/NAME.log;
# bg_wait NAME waits for it, records its time and fails the run if it failed.
bg() {
    local name=$1
    shift
    echo "== background $name: $* (log: target/ci/$name.log)" >&2
    bg_start[$name]=$(date +%s)
    # A process group of its own (setsid), so that a failed run can stop all of it.
    setsid "$@" >"target/ci/$name.log" 2>&1 &
    bg_pid[$name]=$!
}
bg_wait() {
    local name=$1 rc=0
    wait "${bg_pid[$name]}" || rc=$?
    unset "bg_pid[$name]"
    printf '%s\t%s\t%s\t%s\n' "$name (background)" $(($(date +%s) - ${bg_start[$name]})) \
        "$( ((rc == 0)) && echo ok || echo FAIL)" "$(disk)" >>"$table"
    if ((rc != 0)); then
        echo "== background step $name failed; the end of target/ci/$name.log:" >&2
        tail -40 "target/ci/$name.log" >&2
        exit "$rc"
    fi
}

# target NAME: the step NAME, which is the make target of that name.
target() { step "$1" $MAKE --no-print-directory "$1"; }

target setup
target setup-gpu-runtime
if [ "$tier" = check ]; then
    target test-models
    target fmt
    target clippy
    target rust-check
    exit 0
fi

# The venvs' pip installs wait on the network more than the CPU: made while clippy runs,
# all three at once (they took as long as clippy, doc and the test build one after another).
bg venvs $MAKE --no-print-directory -j3 venvs
target fmt
target clippy
target doc
target rust-build
bg_wait venvs
target test-models
target rust-test
if [ "$tier" = ci ]; then
    target quickstart
    target package
fi
target wheel
target python-test
[ "$tier" = ci ] || exit 0

# Not overlapped with the Python tests: tried, the tests (ONNX Runtime's thread pools)
# slowed by as much as the build gained, even with the build at nice 15.
target fuzz-build
target fuzz-smoke
