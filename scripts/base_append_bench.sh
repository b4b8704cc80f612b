#!/usr/bin/env bash
# Times `hyper-cli base append` of one value into a base that already holds
# N values (real processes, a real store in a temp dir), for each N given.
#   scripts/base_append_bench.sh BINARY N...
# BATCH=1 fills the base with one `base append` process per value (N
# batches in the order, each with its acks); the default fills it with one
# process reading N lines (batches of up to 4,096 values).
# OTHER=BINARY also times that binary's append into the same filled base
# (before/after comparisons on the same store), before this one's.
# Prints one line per N: seconds of the fill and of 3 appends of each binary.
set -euo pipefail
bin=$1
shift
time_appends() {
    local out=() start
    for i in 1 2 3; do
        start=$(date +%s.%N)
        "$1" --store "$dir" base append b "one more $i"
        out+=("$(echo "$(date +%s.%N) - $start" | bc)")
    done
    echo "${out[*]}"
}
for n in "$@"; do
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    "$bin" --store "$dir" base create --name b >/dev/null
    start=$(date +%s.%N)
    if [ "${BATCH:-}" = 1 ]; then
        for i in $(seq 1 "$n"); do "$bin" --store "$dir" base append b "$i"; done
    else
        seq 1 "$n" | "$bin" --store "$dir" base append b
    fi
    fill=$(echo "$(date +%s.%N) - $start" | bc)
    other=""
    if [ -n "${OTHER:-}" ]; then
        other=" other_append_s=$(time_appends "$OTHER" | tr ' ' ,)"
    fi
    appends=$(time_appends "$bin" | tr ' ' ,)
    length=$("$bin" --store "$dir" base info b --json | sed 's/.*"length":\([0-9]*\).*/\1/')
    echo "n=$n batch=${BATCH:-0} fill_s=$fill$other append_s=$appends length=$length load=$(cut -d' ' -f1-3 /proc/loadavg)"
    rm -rf "$dir"
    trap - EXIT
done
