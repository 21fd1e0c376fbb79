#!/usr/bin/env bash
# `cargo test` with the test executables run two at a time instead of one after another.
#
#   scripts/cargo-test-parallel.sh [cargo test options…] [-- test harness options…]
#
# Why: on a wgpu device a test process funnels all its kernel launches through cubecl's one device thread,
# so on Mesa's lavapipe it keeps only about 1.3 of CI's two cores busy (measured: a BIHT test used 23.5 s of
# CPU in 18.3 s of wall clock, 82% of it on the device thread). Two at a time, CI's wgpu pass took about
# 1,130 s instead of 1,580 s, tuned (README: Tests). The CPU passes do not need this: flex spreads its work over the
# cores by itself.
#
# What it does: builds with `cargo test --no-run <options>`, reads the test executables from cargo's JSON
# messages and runs each in its package's directory, as `cargo test` does, TEST_JOBS at a time (default 2),
# the slowest first (the names in SLOWEST_FIRST, measured on the wgpu pass; then the others). Each
# executable's output is printed whole when it ends, with its wall-clock time. Doc tests are not run: they
# do not depend on the backend, and the CPU pass runs them. The status is non-zero when the build or any
# test executable fails; every executable runs to its end either way.
set -euo pipefail

jobs="${TEST_JOBS:-2}"
SLOWEST_FIRST=(cli sampler baselines likelihood sensing score_net gemm_parity qcs_sampler)

cargo_args=()
harness_args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then
    shift
    harness_args=("$@")
    break
  fi
  cargo_args+=("$1")
  shift
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo test --no-run --message-format=json-render-diagnostics "${cargo_args[@]}" >"$work/messages.json"

# One line per test executable: its package directory, a tab, the executable. Test builds are the
# artifacts whose profile says "test":true (the `qcs` binary built for the CLI tests is not one).
grep '"reason":"compiler-artifact"' "$work/messages.json" \
  | grep '"profile":{[^}]*"test":true' \
  | sed -n 's/.*"manifest_path":"\([^"]*\)\/Cargo\.toml".*"executable":"\([^"]*\)".*/\1\t\2/p' \
  | sort -u >"$work/executables"
[ -s "$work/executables" ] || { echo "cargo-test-parallel: cargo built no test executable" >&2; exit 1; }

# The executable's target name: its file name without cargo's -<hash> suffix.
target_name() { local base; base=$(basename "$1"); printf '%s\n' "${base%-*}"; }

# Each executable's place in SLOWEST_FIRST; the unlisted ones come after, in name order (a stable sort).
rank() {
  local i
  for i in "${!SLOWEST_FIRST[@]}"; do [ "${SLOWEST_FIRST[$i]}" = "$1" ] && { echo "$i"; return; }; done
  echo "${#SLOWEST_FIRST[@]}"
}
mapfile -t ordered < <(
  while IFS=$'\t' read -r dir exe; do printf '%s\t%s\t%s\n' "$(rank "$(target_name "$exe")")" "$dir" "$exe"; done \
    <"$work/executables" | sort -s -n -k1,1 | cut -f2-
)

# Runs one test executable in its package directory; prints its output whole (under a lock, so that two
# outputs never interleave) and leaves a mark in $work/failed/ when it fails.
mkdir "$work/failed"
lock() { if command -v flock >/dev/null; then flock 9; fi; }
run_one() {
  local dir=$1 exe=$2 name log start status=0
  name=$(target_name "$exe")
  log="$work/$(basename "$exe").log"
  start=$(date +%s)
  (cd "$dir" && "$exe" ${harness_args[@]+"${harness_args[@]}"}) >"$log" 2>&1 || status=$?
  [ "$status" = 0 ] || touch "$work/failed/$(basename "$exe")"
  {
    lock
    echo "     Running $exe (in ${dir})"
    cat "$log"
    if [ "$status" = 0 ]; then
      echo "     Finished $name in $(($(date +%s) - start)) s"
    else
      echo "     FAILED $name (status $status) after $(($(date +%s) - start)) s"
    fi
  } 9>"$work/print.lock"
}

for entry in "${ordered[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
  run_one "${entry%%$'\t'*}" "${entry#*$'\t'}" &
done
wait

failed=$(find "$work/failed" -type f | wc -l)
if [ "$failed" -gt 0 ]; then
  echo "cargo-test-parallel: $failed of ${#ordered[@]} test executables failed:" $(ls "$work/failed") >&2
  exit 1
fi
echo "cargo-test-parallel: all ${#ordered[@]} test executables passed"
