#pragma once
// Runs an experiment's cells across threads. Each finished cell is written durably to its own
// shard file (<output>.cells/cell_<id>.h5, fsync'd then renamed) before the worker moves on; the
// main output file is rebuilt atomically from the finished cells (tmp + rename) every few seconds
// and at the end, so it always opens, and a rerun skips finished cells: kill -9 loses only the
// cells in flight.
#include <string>

#include "experiments/config.hpp"

namespace flowgauge {

struct RunOptions {
  int threads = 0;            // 0: the experiment's value, else all cores
  bool quiet = false;         // no progress lines
  double rebuild_seconds = 2; // minimum interval between main-file rebuilds
};

struct RunSummary {
  std::size_t cells = 0, resumed = 0, computed = 0, failed = 0;
  double seconds = 0;
};

RunSummary run_experiment(const Experiment& e, const RunOptions& opt);

// Human-readable plan (for --dry-run).
void print_plan(const Experiment& e);

}  // namespace flowgauge
