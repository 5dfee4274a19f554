#!/usr/bin/env bash
# The test command: install, build (ci preset: -O2, portable, MPI on), run every CTest test.
# Subsets: ctest --preset ci -L unit | -L convergence | -LE slow ...
# Then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer (asan-ubsan preset, -O1 -g1,
# MPI on; any report fails its test): ~9 min to build and ~10 min to run on 2 cores.
# FLOWGAUGE_SANITIZE_PASS=0 skips that pass (a quick local run; CI always runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash experiments/setup.sh ci
ctest --preset ci -j"$(nproc)" --timeout 900 "$@"
if [ "${FLOWGAUGE_SANITIZE_PASS:-1}" = 1 ]; then
  bash experiments/setup.sh asan-ubsan
  ctest --preset asan-ubsan -j"$(nproc)" --timeout 1800 "$@"
fi
