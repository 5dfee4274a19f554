#!/usr/bin/env bash
# Sweep-level figures of the performance issue, from the release build:
#  * speed-up of `flowgauge run` from 1 to 2 threads on a study (default: the quickstart), as the
#    ratio of medians over ROUNDS (default 3) alternating rounds, and the machine's own ceiling for
#    it: in each round two independent 1-thread runs also go at once (two studies in that wall time;
#    a shared VM's neighbours, page faults and disk flushes already cost that much);
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

run() {  # run <threads> <study> <out> -> prints "seconds maxrss_kB" (two may run at once)
  local tf
  tf=$(mktemp -p "$tmp")
  /usr/bin/time -f "%e %M" -o "$tf" "$exe" run "$2" --threads "$1" --output "$3" --quiet >/dev/null
  cat "$tf"
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "| study | round | 1 thread s | 2 threads s | two 1-thread runs at once s | peak RSS MB (1 / 2 threads) |"
echo "|---|---|---|---|---|---|"
: > "$tmp/w1"; : > "$tmp/w2"; : > "$tmp/wp"
for r in $(seq "${ROUNDS:-3}"); do
  rm -rf "$tmp"/s*.h5*
  read -r s1 m1 < <(run 1 "$study" "$tmp/s1.h5")
  read -r s2 m2 < <(run 2 "$study" "$tmp/s2.h5")
  run 1 "$study" "$tmp/sa.h5" > "$tmp/pa" &
  run 1 "$study" "$tmp/sb.h5" > "$tmp/pb"
  wait
  sp=$(cat "$tmp/pa" "$tmp/pb" | awk '$1 > m {m = $1} END {print m}')  # the later of the two
  echo "$s1" >> "$tmp/w1"; echo "$s2" >> "$tmp/w2"; echo "$sp" >> "$tmp/wp"
  echo "| $(basename "$study") | $r | $s1 | $s2 | $sp | $((m1 / 1024)) / $((m2 / 1024)) |"
done
w1=$(median < "$tmp/w1"); w2=$(median < "$tmp/w2"); wp=$(median < "$tmp/wp")
echo "speed-up 1 -> 2 threads (medians): $(echo "$w1 / $w2" | bc -l | cut -c1-4)x;" \
  "ceiling from two independent runs: $(echo "2 * $w1 / $wp" | bc -l | cut -c1-4)x;" \
  "2 threads reach $(echo "100 * $wp / (2 * $w2)" | bc -l | cut -c1-4) % of it"
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
