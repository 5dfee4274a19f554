#!/usr/bin/env bash
# Sweep-level figures of the performance issue, from the release build:
#  * speed-up of `flowgauge run` from 1 to 2 threads on a study (default: the quickstart);
#  * peak resident memory (GNU time's maximum RSS) of a study (default: the convergence study),
#    of the same study with its larger step counts removed, and of that with 4x the cells (seeds), to
#    show how it grows with steps and cells.
# Usage: bash experiments/bench/sweep_scaling.sh [study.toml] [memory-study.toml]
set -euo pipefail
cd "$(dirname "$0")/../.."
exe=build/release/flowgauge
study=${1:-experiments/quickstart.toml}
mem_study=${2:-experiments/convergence.toml}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {  # run <threads> <study> <out> -> prints "seconds maxrss_kB"
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$exe" run "$2" --threads "$1" --output "$3" --quiet >/dev/null
  cat "$tmp/time"
}
echo "| study | threads | wall s | peak RSS MB |"
echo "|---|---|---|---|"
declare -A wall
for t in 1 2; do
  read -r s m < <(run "$t" "$study" "$tmp/s$t.h5")
  wall[$t]=$s
  echo "| $(basename "$study") | $t | $s | $((m / 1024)) |"
done
echo "speed-up 1 -> 2 threads: $(echo "${wall[1]} / ${wall[2]}" | bc -l | cut -c1-4)x"
read -r s m < <(run 2 "$mem_study" "$tmp/mem.h5")
echo "| $(basename "$mem_study") | 2 | $s | $((m / 1024)) |"
# Peak memory against the number of steps: the same study restricted to its smaller step counts.
# (only the study's own `steps =`, the first line: not an [[exclude]]'s)
sed '0,/^steps = /s/^steps = .*/steps = [16, 32, 64]/' "$mem_study" > "$tmp/short.toml"
sed -i "s#\"data/#\"$(pwd)/experiments/data/#g" "$tmp/short.toml"
read -r s m < <(run 2 "$tmp/short.toml" "$tmp/short.h5")
echo "| $(basename "$mem_study") with steps = [16, 32, 64] | 2 | $s | $((m / 1024)) |"
# ... and against the number of cells: the same with 4 seeds (4x the cells, the same cells each).
sed '0,/^steps = /s/^steps = .*/steps = [16, 32, 64]\nseeds = [0, 1, 2, 3]/' "$mem_study" > "$tmp/seeds.toml"
sed -i "s#\"data/#\"$(pwd)/experiments/data/#g" "$tmp/seeds.toml"
read -r s m < <(run 2 "$tmp/seeds.toml" "$tmp/seeds.h5")
echo "| $(basename "$mem_study") with steps = [16, 32, 64], seeds = [0, 1, 2, 3] | 2 | $s | $((m / 1024)) |"
