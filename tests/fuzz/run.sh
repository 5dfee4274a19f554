#!/usr/bin/env bash
# Runs one libFuzzer target (README "Fuzzing"): tests/fuzz/run.sh mixture|experiment [seconds] [libFuzzer flags...]
# Builds the fuzz preset (clang, ASan + UBSan), seeds the corpus with the shipped studies
# (experiments/*.toml, experiments/data/*.toml) and tests/fuzz/corpus/<target>, and fuzzes one
# process for the given time (default 1200 s). New inputs go to build/fuzz/corpus/<target>,
# crashes to build/fuzz/artifacts/; copy a reproducer into tests/fuzz/corpus/<target> with its fix.
set -euo pipefail
target=${1:?usage: tests/fuzz/run.sh mixture|experiment [seconds] [libFuzzer flags...]}
seconds=${2:-1200}
shift $(($# < 2 ? $# : 2))
cd "$(dirname "$0")/../.."
bash experiments/setup.sh fuzz
out=build/fuzz
mkdir -p "$out/corpus/$target" "$out/seeds/$target" "$out/artifacts"
cp experiments/*.toml experiments/data/*.toml "$out/seeds/$target/"
# One process (-jobs=1 -workers=1: the log goes to fuzz-0.log); an input slower than 10 s is a hang.
cd "$out"
exec "./fuzz_$target" -jobs=1 -workers=1 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -dict="../../tests/fuzz/$target.dict" -artifact_prefix="artifacts/$target-" \
  "corpus/$target" "seeds/$target" "../../tests/fuzz/corpus/$target" "$@"
