#pragma once
// The runner's parts shared by its four callers: the single process (runner.cpp), a static shard of
// a job array (same path, a subset of cells), the MPI ranks (runner_mpi.cpp) and `flowgauge merge`.
// Not a public interface: results/README.md documents the files, runner.hpp the entry points.
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <Eigen/Dense>

#include "experiments/config.hpp"
#include "experiments/runner.hpp"
#include "results/table.hpp"

namespace flowgauge::detail {

extern std::mutex g_h5;  // the HDF5 library here is not thread-safe: one caller at a time

struct CellResult {
  Table row;  // one row
  std::vector<std::pair<std::string, Eigen::VectorXd>> arrays;
};

// Reference paths shared by every solver of one (data, schedule, grid, steps, seed).
class ReferenceCache;
std::shared_ptr<ReferenceCache> new_reference_cache();
CellResult compute_cell(const Experiment& e, const Cell& c, ReferenceCache& refs);

// <output>.cells/cell_<id>.h5, durable (fsync'd, renamed into place).
std::string cells_dir(const Experiment& e);
void write_cell(const Experiment& e, const Cell& c, const CellResult& r);
// One finished cell file, checked against the plan (throws InputError otherwise).
CellResult load_cell(const Experiment& e, int id);

// Whole-run extras (path geometry, density lattices): a function of the plan only.
struct Extras;
std::shared_ptr<const Extras> compute_extras(const Experiment& e);

// What the main file says about the run beyond its cells.
struct MainInfo {
  bool complete = false;
  std::string started;
  int threads = 1;
  std::string command;  // provenance command_line
  int shard = -1, shards = 0;  // a static shard's file: shard i of n
  std::size_t scope = 0;       // cells this file is meant to hold (the plan, or the shard's)
};
// Atomically (tmp + rename) writes e.output from the finished cells: the one writer of run files,
// used by the runner, the MPI rank 0 and merge.
void write_main(const Experiment& e, const std::map<int, CellResult>& done, const MainInfo& info, const Extras& extras);

// ---- how cells are split ----

// Estimated cost of each cell (arbitrary units: particles x components x dim x evaluations); only
// balance depends on it, never a result.
std::vector<double> cell_costs(const Experiment& e);
// Cells that share one reference path (data, schedule, grid, steps, seed), costliest group first
// (ties: plan order), cells of a group in plan order. Only cells in `cells` appear.
std::vector<std::vector<int>> reference_groups(const Experiment& e, const std::vector<int>& cells);
// The static split of job arrays: owner shard (0..n-1) of every cell of the plan, a deterministic
// function of the plan and n.
std::vector<int> shard_owners(const Experiment& e, int n);

// Hands out cells one at a time to requesters ("who": a rank): cells of a reference group the
// requester has already started first (its cached reference path is reused), else the costliest
// group nobody has started, else the group with the most cells left. Not thread-safe.
class Assigner {
 public:
  Assigner(const Experiment& e, const std::vector<int>& todo);
  int take(int who);  // -1: nothing left
  std::size_t left() const { return left_; }

 private:
  std::vector<std::vector<int>> groups_;
  std::vector<std::size_t> pos_;
  std::map<int, std::vector<std::size_t>> started_;
  std::size_t next_group_ = 0, left_ = 0;
};

// Worker threads: each asks next() for a cell id (-1: stop), computes it, writes its cell file,
// then hands the result to finished(). next() and finished() are called concurrently.
class WorkerPool {
 public:
  WorkerPool(const Experiment& e, int threads, std::function<int()> next, std::function<void(int, CellResult&&)> finished);
  ~WorkerPool();
  void join();
  bool failed() const;
  std::exception_ptr error() const;  // the first error, after join()

 private:
  void work();
  const Experiment& e_;
  std::function<int()> next_;
  std::function<void(int, CellResult&&)> finished_;
  std::shared_ptr<ReferenceCache> refs_;
  mutable std::mutex m_;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

// Everything a run does before its first cell: refuses a foreign output, computes the extras,
// creates the directories, removes files half-written by dead runs, loads the finished cells of
// `scope` (refusing cells outside it). Throws InputError.
struct Prepared {
  std::shared_ptr<const Extras> extras;
  std::map<int, CellResult> done;
  std::vector<int> todo;  // cells of scope not finished, plan order
  std::string started;
};
Prepared prepare(const Experiment& e, const std::vector<int>& scope);

int resolve_threads(const Experiment& e, const RunOptions& opt);
std::vector<int> scope_of(const Experiment& e, const RunOptions& opt);  // the cells this run is for
std::size_t count_failed(const std::map<int, CellResult>& done);
std::string hms(double seconds);
std::string run_command(const Experiment& e);

}  // namespace flowgauge::detail
