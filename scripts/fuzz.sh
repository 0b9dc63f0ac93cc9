#!/usr/bin/env bash
# Builds the libFuzzer targets of the nested Fuzz/ package with AddressSanitizer and runs
# each for a bounded time (docs/fuzzing.md).
#
#   bash scripts/fuzz.sh                     # every target, 60 s each, in each configuration
#   bash scripts/fuzz.sh 10                  # the CI smoke run: 10 s per target and configuration
#   bash scripts/fuzz.sh 300 FuzzProviderABI # one target, 5 minutes
#
# For each configuration (FUZZ_CONFIGURATIONS, default "release debug": optimised builds
# first, since unoptimised Swift hides some memory accesses from ASan inside runtime calls):
#   1. swift build -c <configuration> -Xswiftc -sanitize=fuzzer,address (Fuzz/.build-fuzz),
#      after touching the fuzz targets' Swift sources: SwiftPM does not always recompile them
#      when a library module or a C header they import changes, and a stale target then
#      crashes on a changed type layout (seen with MapError and fzp_behavior_t growing).
#   2. replays Fuzz/Regressions/<target> (every crash ever found) and Fuzz/Corpus/<target>
#   3. fuzzes each target for the given seconds on a temporary copy of Fuzz/Corpus/<target>
#      (the committed corpus never grows by itself), and prints its executions.
# A crash, a leak of epoch memory, a model mismatch or a hang (-timeout) fails the target;
# the other targets still run, and the script then exits with a non-zero status. The input
# is kept in Fuzz/Artifacts/<configuration>/ (add it to Fuzz/Regressions/<target>/ once
# understood: then every later run replays it).
#
# Environment: FUZZ_CONFIGURATIONS ("release", "debug" or both), FUZZ_ARGS (extra libFuzzer
# flags), RCUMAPS_FUZZ_INCLUDE_KNOWN_DEFECTS (input classes excluded until fixed, see
# Fuzz/Sources/FuzzSupport/KnownDefects.swift; with a class included the targets expect the
# fixed behaviour, so the regressions of open defects fail until they are fixed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${1:-60}
shift || true
all_targets=(FuzzMapOperations FuzzProviderABI FuzzMapDefinitions FuzzSpecializedMaps FuzzDictionary)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi
configurations=(${FUZZ_CONFIGURATIONS:-release debug})
# A list of only spaces split into nothing, and the step passed having run nothing.
if [ ${#configurations[@]} -eq 0 ]; then echo "FUZZ_CONFIGURATIONS names no configuration (release, debug)" >&2; exit 2; fi
for configuration in "${configurations[@]}"; do
    case $configuration in
        release|debug) ;;
        *) echo "unknown configuration $configuration in FUZZ_CONFIGURATIONS (release, debug)" >&2; exit 2 ;;
    esac
done
# At least 1: libFuzzer reads -max_total_time=0 as no limit, and the first target would
# fuzz until it crashed.
case $seconds in
    ''|*[!0-9]*|0|0*) echo "usage: scripts/fuzz.sh [seconds-per-target, at least 1] [target...]" >&2; exit 2 ;;
esac
# The replay's bound, in seconds: a positive integer (0 would switch `timeout` off).
case ${FUZZ_REPLAY_TIMEOUT:-600} in
    ''|*[!0-9]*|0|0*) echo "FUZZ_REPLAY_TIMEOUT must be a positive number of seconds" >&2; exit 2 ;;
esac
for target in "${targets[@]}"; do
    case " ${all_targets[*]} " in
        *" $target "*) ;;
        *) echo "unknown target $target (targets: ${all_targets[*]})" >&2; exit 2 ;;
    esac
done

if [ -f scripts/install-deps.sh ]; then bash scripts/install-deps.sh; fi

# Swift's own crash backtracer would race libFuzzer's and ASan's reports.
export SWIFT_BACKTRACE=enable=no
# LeakSanitizer is off while fuzzing: epoch memory is freed by liburcu's call_rcu thread
# after a grace period, after the input that freed it has returned, which libFuzzer's
# per-input leak check reports as a leak. The targets check leaks themselves: every 256,
# 512 or 1024 inputs (by target), and at the end of a replay, they wait for every deferred
# free and fail if any pool tag still holds bytes or any page mapping is left
# (FuzzSupport/FuzzMain.swift). The replays run with
# LeakSanitizer at exit on top (no suppressions needed).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

work=$(mktemp -d "${TMPDIR:-/tmp}/rcumaps-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
summary=()
status=0
start=$(date +%s)

for configuration in "${configurations[@]}"; do
    echo "== building Fuzz/ ($configuration, -sanitize=fuzzer,address)"
    build_start=$(date +%s)
    # Recompile the fuzz targets themselves every time (see above); the library is rebuilt by
    # SwiftPM as usual. Only modification times change.
    find Fuzz/Sources -name '*.swift' -exec touch {} +
    # The gold linker warns about every ASan helper symbol it cannot export: noise.
    set +e
    swift build --package-path Fuzz -c "$configuration" --scratch-path Fuzz/.build-fuzz \
        -Xswiftc -sanitize=fuzzer,address 2>&1 | { grep -v "Cannot export local symbol" || true; }
    built=${PIPESTATUS[0]}
    set -e
    if [ "$built" -ne 0 ]; then
        echo "build failed ($configuration)" >&2
        exit 1
    fi
    bin=$(swift build --package-path Fuzz -c "$configuration" --scratch-path Fuzz/.build-fuzz --show-bin-path)
    echo "   built in $(($(date +%s) - build_start)) s"
    artifacts="$root/Fuzz/Artifacts/$configuration"
    mkdir -p "$artifacts"

    for target in "${targets[@]}"; do
        echo "== $target ($configuration): replaying Fuzz/Regressions/$target and Fuzz/Corpus/$target"
        replay=()
        for directory in "Fuzz/Regressions/$target" "Fuzz/Corpus/$target"; do
            [ -d "$directory" ] && replay+=("$directory")
        done
        # With LeakSanitizer at exit: a replay ends with every map gone and memory settled.
        # Bounded (libFuzzer's -timeout does not apply to --replay: an input that deadlocks
        # held CI silently until it was killed), each input named (RCUMAPS_FUZZ_VERBOSE), the
        # whole log shown on failure (its last lines were mostly ASan's shadow-byte legend).
        if [ ${#replay[@]} -gt 0 ]; then
            replay_log="$work/$configuration-$target.replay.log"
            set +e
            ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=1" RCUMAPS_FUZZ_VERBOSE=1 \
                timeout -s ABRT "${FUZZ_REPLAY_TIMEOUT:-600}" "$bin/$target" --replay "${replay[@]}" >"$replay_log" 2>&1
            replayed=$?
            set -e
            if [ $replayed -ne 0 ]; then
                { grep -v '^replay:' "$replay_log" || true; } | tail -n 200
                last=$({ grep -E '^replay: .* \([0-9]+ bytes\)$' "$replay_log" || true; } | tail -n 1)
                why="status $replayed"
                if [ $replayed -eq 124 ]; then why="a hang: killed after ${FUZZ_REPLAY_TIMEOUT:-600} s"; fi
                echo "$target ($configuration): the replay failed, $why; last input started: ${last:-none} (a failure after it may be the end-of-replay leak check)" >&2
                summary+=("$target ($configuration): REPLAY FAILED ($why)")
                status=1
                continue
            fi
            echo "   replayed $({ grep -c '^replay:' "$replay_log" || true; }) inputs"
        fi

        echo "== $target ($configuration): fuzzing for $seconds s"
        corpus="$work/$configuration-$target"
        mkdir -p "$corpus"
        if [ -d "Fuzz/Corpus/$target" ]; then cp -R "Fuzz/Corpus/$target/." "$corpus/"; fi
        log="$work/$configuration-$target.log"
        set +e
        # `time` reports the CPU the run got (on a shared machine, less than the wall time).
        TIMEFORMAT='%U %S'
        # shellcheck disable=SC2086
        { time "$bin/$target" -max_total_time="$seconds" -timeout=30 -detect_leaks=0 -print_final_stats=1 \
            -artifact_prefix="$artifacts/$target-" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1; } 2>"$log.time"
        result=$?
        set -e
        cpu=$(awk '{ printf "%.0f", $1 + $2 }' "$log.time" 2>/dev/null || true)
        executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
        # `|| true`: under pipefail, a grep that finds nothing (a run that died before its first
        # `cov:` line) ended the script here, its log deleted, the other targets not run.
        coverage=$({ grep -o 'cov: [0-9]*' "$log" || true; } | tail -n 1)
        inputs=$(find "$corpus" -type f | wc -l)
        if [ $result -ne 0 ]; then
            { grep -v -E '^#[0-9]+.*(NEW|REDUCE|pulse)' "$log" || true; } | tail -n 200
            kept=$({ grep -o "Test unit written to .*" "$log" || true; } | sed 's/Test unit written to //' | tail -n 1)
            echo "$target ($configuration): FAILED (status $result) after ${executions:-?} executions; input kept: ${kept:-see log above}" >&2
            summary+=("$target ($configuration): FAILED, ${executions:-?} executions, input ${kept:-?}")
            status=1
        else
            line="$target ($configuration): ${executions:-?} executions in $seconds s (${rate:-?}/s; CPU ${cpu:-?} s), ${coverage:-cov: ?}, corpus $inputs inputs"
            echo "   $line"
            summary+=("$line")
        fi
    done
done

echo
echo "== fuzzing summary ($(($(date +%s) - start)) s in all)"
for line in "${summary[@]}"; do echo "   $line"; done
exit $status
