#!/usr/bin/env bash
# The test command: install, build, run every CTest test twice: once optimized (ci preset: -O2,
# portable, MPI on) and once under AddressSanitizer + UndefinedBehaviorSanitizer (asan-ubsan preset:
# any sanitizer report fails the test; the build takes ~12 min on 2 cores).
# Subsets: ctest --preset ci -L unit | -L convergence | -LE slow ...
# FLOWGAUGE_SKIP_SANITIZE=1 skips the sanitizer pass (local iterations only; CI runs both).
set -euo pipefail
cd "$(dirname "$0")/.."
bash experiments/setup.sh ci
ctest --preset ci -j"$(nproc)" --timeout 900 "$@"
if [ "${FLOWGAUGE_SKIP_SANITIZE:-0}" != 1 ]; then
  bash experiments/setup.sh asan-ubsan
  ctest --preset asan-ubsan -j"$(nproc)" --timeout 1800 "$@"
fi
