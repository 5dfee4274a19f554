#pragma once
// Runs an experiment's cells across threads. Each finished cell is written durably to its own
// file (<output>.cells/cell_<id>.h5, fsync'd then renamed) before the worker moves on; the main
// output file is rebuilt atomically from the finished cells (tmp + rename) every few seconds and at
// the end, so it always opens, and a rerun skips finished cells: kill -9 loses only the cells in
// flight. SIGINT / SIGTERM stop it cleanly (runner_detail.hpp RunSignals), a full disk is an error
// that keeps the finished cells, and a lock on <output>.lock refuses a second run on one output. The same runner serves a static shard of a job array (a deterministic subset of the
// cells, its own output), MPI ranks (runner_mpi.hpp) and `flowgauge merge` of shard files.
#include <string>
#include <vector>

#include "experiments/config.hpp"

namespace flowgauge {

struct RunOptions {
  int threads = 0;            // 0: the experiment's value, else all cores
  bool quiet = false;         // no progress lines
  double rebuild_seconds = 2; // minimum interval between main-file rebuilds
  int shard = -1, shards = 0; // shards > 0: only the cells of static shard `shard` of `shards`
  std::string resume_command; // printed when interrupted or out of disk space ("": flowgauge run FILE)
};

struct RunSummary {
  std::size_t cells = 0, resumed = 0, computed = 0, failed = 0;
  double seconds = 0;
  int signal = 0;  // SIGINT / SIGTERM that stopped the run before its end (exit status 128 + signal)
};

// Runs the cells of opt's scope (all, or one shard) into e.output (set it to shard_output(...)
// for a shard).
RunSummary run_experiment(const Experiment& e, const RunOptions& opt);

// "results/x.h5", 1, 4 -> "results/x.shard-1-of-4.h5" (a trailing .h5 is kept last).
std::string shard_output(const std::string& output, int shard, int shards);
// The cells of static shard i of n: a deterministic cost-balanced split that keeps the cells of
// one reference path together (runner.cpp split_shards).
std::vector<int> shard_cells(const Experiment& e, int shard, int shards);

// flowgauge merge: the files of a sharded (or otherwise split) run -> one file equal to a single
// process's run. Refuses (InputError, nothing written) unless every input holds cells of the
// same plan and together they hold every cell exactly once. `experiment` overrides the
// experiment file recorded in the inputs.
struct MergeSummary {
  std::size_t cells = 0, inputs = 0;
};
MergeSummary merge_runs(const std::string& output, const std::vector<std::string>& inputs, const std::string& experiment);

// Human-readable plan (for --dry-run).
void print_plan(const Experiment& e);

}  // namespace flowgauge
