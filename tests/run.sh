#!/usr/bin/env bash
# The test command: install, build (ci preset: -O2, portable, MPI on), run every CTest test.
# Subsets: ctest --preset ci -L unit | -L convergence | -LE slow ...
# FLOWGAUGE_SANITIZE_PASS=1 also builds the asan-ubsan preset (~12 min on 2 cores) and runs the whole
# suite under AddressSanitizer + UndefinedBehaviorSanitizer (any report fails the test). It is not yet
# part of CI: the suite as of this commit has not completed a sanitizer pass (see the closing note of
# the reliability issue).
set -euo pipefail
cd "$(dirname "$0")/.."
bash experiments/setup.sh ci
ctest --preset ci -j"$(nproc)" --timeout 900 "$@"
if [ "${FLOWGAUGE_SANITIZE_PASS:-0}" = 1 ]; then
  bash experiments/setup.sh asan-ubsan
  ctest --preset asan-ubsan -j"$(nproc)" --timeout 1800 "$@"
fi
