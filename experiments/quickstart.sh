#!/usr/bin/env bash
# The main job: install, build (Release), run the default study, write HDF5 + plots under
# results/, print a summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash experiments/setup.sh release
mkdir -p results
./build/release/flowgauge demo --output results/demo.h5
/usr/bin/python3 experiments/report.py results/demo.h5
