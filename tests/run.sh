#!/usr/bin/env bash
# The test command: install, build (ci preset: Release, portable flags), run every CTest test.
# Subsets: ctest --preset ci -L unit | -L convergence | -LE slow ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash experiments/setup.sh ci
ctest --preset ci -j"$(nproc)" --timeout 900 "$@"
