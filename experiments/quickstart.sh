#!/usr/bin/env bash
# The main job: install, build (Release), run the default study (experiments/quickstart.toml,
# about a minute on 2 cores), then write plots and a markdown summary and print a summary table:
#   results/quickstart.h5, results/quickstart/*.png, results/quickstart.md
# A rerun resumes from results/quickstart.h5.cells/ (finished cells are kept).
set -euo pipefail
cd "$(dirname "$0")/.."
bash experiments/setup.sh release
./build/release/flowgauge run experiments/quickstart.toml
./build/release/flowgauge report results/quickstart.h5
