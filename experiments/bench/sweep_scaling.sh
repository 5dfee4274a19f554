#!/usr/bin/env bash
# Sweep-level figures of the performance issue, from the release build:
#  * speed-up of `flowgauge run` from 1 to 2 threads on a study (default: the quickstart);
#  * peak resident memory (GNU time's maximum RSS) of a study (default: the convergence study),
#    and of the same study with 4x the step counts' largest entries removed / doubled cells, to show
#    it does not grow with cells or steps.
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
sed 's/^steps = .*/steps = [16, 32, 64]/' "$mem_study" > "$tmp/short.toml"
sed -i "s#\"data/#\"$(pwd)/experiments/data/#g" "$tmp/short.toml"
read -r s m < <(run 2 "$tmp/short.toml" "$tmp/short.h5")
echo "| $(basename "$mem_study") with steps = [16, 32, 64] | 2 | $s | $((m / 1024)) |"
