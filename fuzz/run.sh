#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, with AddressSanitizer.
#
#   fuzz/run.sh [SECONDS] [TARGET...]        default: 60 s, every target
#   RCIM_FUZZ_SANITIZER=none fuzz/run.sh 30  without ASan (no RUSTC_BOOTSTRAP needed)
#   RCIM_FUZZ_JOBS=2 fuzz/run.sh 600         two targets at a time
#
# Installs cargo-fuzz if it is missing, seeds the corpora from the golden fixtures
# (seed.sh), and exits non-zero if any target crashes or hangs (one input running
# longer than 25 s), 0 otherwise; the input is in fuzz/artifacts/TARGET/ (replay
# it with `cargo fuzz run TARGET FILE`, and turn it into a regression test in the
# crate whose decoder failed). The logs are in fuzz/logs/. corpus/, artifacts/,
# logs/ and target/ are git-ignored and made when missing. ASan needs
# `-Zsanitizer`, which stable rustc accepts only with RUSTC_BOOTSTRAP=1; this
# script sets it for the cargo-fuzz call only. CI runs
# `RCIM_FUZZ_SANITIZER=none RCIM_FUZZ_JOBS=2 fuzz/run.sh 30` (.ci/run).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(ipc_frame upstream_frame handshake server_api)
fi
jobs=${RCIM_FUZZ_JOBS:-1}
sanitizer=${RCIM_FUZZ_SANITIZER:-address}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
./seed.sh

fuzz() {
    local args=(fuzz run --sanitizer "$sanitizer")
    if [ "$sanitizer" = none ]; then
        cargo "${args[@]}" "$@"
    else
        RUSTC_BOOTSTRAP=1 cargo "${args[@]}" "$@"
    fi
}

# Build once, so the timed runs measure fuzzing only.
if [ "$sanitizer" = none ]; then
    cargo fuzz build --sanitizer none
else
    RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer "$sanitizer"
fi

mkdir -p logs
failed=()
pids=()
names=()
wait_one() {
    local pid=$1 name=$2
    if wait "$pid"; then
        echo "$name: $(grep -E '^Done [0-9]+ runs' "logs/$name.log" | tail -1)"
    else
        echo "$name: FAILED (see fuzz/logs/$name.log and fuzz/artifacts/$name/)" >&2
        tail -40 "logs/$name.log" >&2
        failed+=("$name")
    fi
}
for target in "${targets[@]}"; do
    # -timeout: libFuzzer's default (1200 s for one input) would let a hang hold
    # a short run for 20 minutes; a decoder takes microseconds.
    fuzz "$target" -- -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
        > "logs/$target.log" 2>&1 &
    pids+=($!)
    names+=("$target")
    if [ ${#pids[@]} -ge "$jobs" ]; then
        wait_one "${pids[0]}" "${names[0]}"
        pids=("${pids[@]:1}")
        names=("${names[@]:1}")
    fi
done
for i in "${!pids[@]}"; do
    wait_one "${pids[$i]}" "${names[$i]}"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]}" >&2
    exit 1
fi
echo "all fuzz targets ran ${seconds}s without a crash"
