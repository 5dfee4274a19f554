#pragma once
// The runner's parts shared by its four callers: the single process (runner.cpp), a static shard of
// a job array (same path, a subset of cells), the MPI ranks (runner_mpi.cpp) and `flowgauge merge`.
// Not a public interface: results/README.md documents the files, runner.hpp the entry points.
#include <algorithm>
#include <chrono>
#include <exception>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <Eigen/Dense>

#include "experiments/combining_queue.hpp"
#include "experiments/config.hpp"
#include "experiments/finished.hpp"
#include "experiments/id_set.hpp"
#include "experiments/runner.hpp"
#include "results/table.hpp"

namespace flowgauge::detail {

extern std::mutex g_h5;  // the HDF5 library here is not thread-safe: one caller at a time

using CellArrays = std::vector<std::pair<std::string, Eigen::VectorXd>>;
struct CellResult {
  Table row;  // one row
  CellArrays arrays;
};
// Reference paths shared by every solver of one (data, schedule, grid, steps, seed); the states of
// a path over reference.spill_mb in an unlinked file in `spill_dir`.
class ReferenceCache;
std::shared_ptr<ReferenceCache> new_reference_cache(std::size_t idle_limit, const std::string& spill_dir);
CellResult compute_cell(const Experiment& e, const Cell& c, ReferenceCache& refs);

// <output>.cells/cell_<id>.h5, durable (fsync'd, renamed into place).
std::string cells_dir(const Experiment& e);
void write_cell(const Experiment& e, const Cell& c, const CellResult& r);
// Removes "<output>.partial-<pid>" and "<output>.cells/*.partial-<pid>" of processes that no longer
// run (killed while writing). At a run's start, and again at its end: a killed run's process may
// still be exiting when the next one starts.
void remove_stale_partials(const Experiment& e) noexcept;  // errors ignored: only tidying
// The row of one finished cell file, checked against the plan (throws InputError otherwise).
Table load_cell(const Experiment& e, int id);

// Whole-run extras (path geometry, density lattices): a function of the plan only.
struct Extras;
std::shared_ptr<const Extras> compute_extras(const Experiment& e, int threads);

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
// used by the runner, the MPI rank 0 and merge. A cell's arrays come from `arrays(id)` (called with
// g_h5 held), by default from its cell file. Throws h5::WriteError naming e.output when the disk is
// full (the previous file, if any, stays as it was).
using ArraySource = std::function<CellArrays(int id)>;
void write_main(const Experiment& e, const Finished& done, const MainInfo& info, const Extras& extras);
void write_main(const Experiment& e, const Finished& done, const MainInfo& info, const Extras& extras, const ArraySource& arrays);

// ---- how cells are split ----

// Estimated cost of a cell (arbitrary units: particles x components x dim x evaluations); only
// balance depends on it, never a result.
class CellCost {
 public:
  explicit CellCost(const Experiment& e);  // keeps a reference: e must outlive it
  double operator()(const Cell& c) const;
  double reference(const Cell& c) const;  // its reference path: a 4-evaluation-per-step solver

 private:
  const Experiment& e_;
  std::vector<double> evals_;  // per solver
};
// Cells that share one reference path (data, schedule, grid, steps, seed), costliest group first
// (ties: the group whose first cell comes first), cells of a group in plan order. Only cells in
// `cells` appear. A group is kept as its key and found again in the plan when its cells are asked
// for: 8 bytes a group (the plan's solvers on one path) and a copy of `cells` (a bit a cell).
class Groups {
 public:
  Groups(const Experiment& e, IdSet cells);  // keeps a reference to e: e must outlive it
  std::size_t size() const { return groups_.size(); }
  std::uint32_t cells(std::size_t g) const { return groups_[g].cells; }
  // The first cell of group g at or after its candidate `cursor` (its positions, in plan order,
  // numbered from 0), cursor moved past it; a cell with id -1 when there is none.
  Cell next(std::size_t g, std::uint32_t& cursor) const;

 private:
  struct Group {
    std::uint32_t key, cells;
  };
  struct Place {  // a group key's digits and the candidate positions' step and seed indices
    std::size_t base;  // the position of (data, schedule, solver 0, grid, step 0, seed 0)
    const std::vector<std::uint32_t>*steps, *seeds;
  };
  Place place(std::uint32_t key) const;
  Cell candidate(const Place& p, std::uint32_t t) const;  // id -1 if not a cell of `cells_`
  std::uint32_t candidates(const Place& p) const;

  const Experiment& e_;
  IdSet cells_;
  std::vector<std::vector<std::uint32_t>> step_class_, seed_class_;  // class (index of a value's first occurrence) -> indices
  std::vector<std::uint32_t> all_steps_;  // an explicit grid's candidates: every steps index
  std::vector<Group> groups_;
};
// The static split of job arrays: owner shard (0..n-1) of every cell of the plan, a deterministic
// function of the plan and n.
std::vector<int> shard_owners(const Experiment& e, int n);

// Hands out cells one at a time to requesters ("who": a rank): cells of a reference group the
// requester has already started first (its cached reference path is reused), else the costliest
// group nobody has started, else the group with the most cells left. Not thread-safe.
class Assigner {
 public:
  Assigner(const Experiment& e, const IdSet& todo);
  int take(int who);  // -1: nothing left
  std::size_t left() const { return left_; }

 private:
  Groups groups_;
  std::vector<std::uint32_t> cursor_, left_in_;  // per group: its next candidate, its cells not handed out
  std::map<int, std::vector<std::size_t>> started_;  // per requester: groups it started (exhausted ones dropped at its next take)
  std::size_t next_group_ = 0, left_ = 0;
};

// Worker threads: each asks next(worker) for a cell id (-1: stop; worker = 0 .. threads-1, so an
// Assigner can keep each thread on its own reference group) and computes it. A computed cell joins
// a queue; one thread at a time (whichever finds nobody doing it) writes the queued cells' files
// and hands their rows to finished(), while the others go on computing: no worker waits for
// another's HDF5 writes, fsyncs or main-file rebuilds (finished() may rebuild). next() is called
// concurrently (with itself and finished()); finished() never concurrently with itself. Past
// 2 x threads queued cells a worker waits to write (memory stays a few cells).
class WorkerPool {
 public:
  WorkerPool(const Experiment& e, int threads, std::function<int(int)> next, std::function<void(int, Table&&)> finished);
  ~WorkerPool();
  void join();
  // Waits at most `timeout` for every worker to stop; true if they all have (join() then returns at once).
  bool wait_for(std::chrono::milliseconds timeout);
  bool failed() const;
  std::exception_ptr error() const;  // the first error, after join()

 private:
  void work(int worker);
  void write(std::pair<int, CellResult>&& cell);  // its cell file, then finished()
  const Experiment& e_;
  std::function<int(int)> next_;
  std::function<void(int, Table&&)> finished_;
  std::shared_ptr<ReferenceCache> refs_;
  mutable std::mutex m_;
  std::condition_variable stopped_;
  int running_ = 0;
  std::exception_ptr error_;
  CombiningQueue<std::pair<int, CellResult>> computed_;  // cells not yet written
  std::vector<std::thread> threads_;
};

// When to rebuild the main file during a run: at most every `min_seconds` (0: after every cell),
// and at most ~10 % of the run's time, since a rebuild reads every finished cell file (O(cells)).
class RebuildClock {
 public:
  using clock = std::chrono::steady_clock;
  explicit RebuildClock(double min_seconds) : min_(min_seconds), last_end_(clock::now()) {}
  bool due() const {
    if (min_ <= 0) return true;
    return std::chrono::duration<double>(clock::now() - last_end_).count() >= std::max(min_, 9.0 * last_seconds_);
  }
  void rebuilt(clock::time_point started) {
    last_end_ = clock::now();
    last_seconds_ = std::chrono::duration<double>(last_end_ - started).count();
  }

 private:
  double min_;
  clock::time_point last_end_;
  double last_seconds_ = 0;
};

// ---- interruption: SIGINT (Ctrl-C) and SIGTERM ----
// While a RunSignals lives, the first SIGINT or SIGTERM only sets a flag: the run starts no new
// cell, lets the cells in flight finish (each is written durably), rewrites the main file and
// returns (exit status 128 + signal). A second one asks to abandon the cells in flight at once
// (abandon_run), and restores the default action, so a third ends the process outright. The
// handler only touches lock-free atomics and calls sigaction (async-signal-safe). SIGXFSZ is
// ignored meanwhile: a file over `ulimit -f` then fails its write (EFBIG), reported as an error
// with the finished cells kept, where the signal would have killed the process.
class RunSignals {
 public:
  RunSignals();
  ~RunSignals();
  RunSignals(const RunSignals&) = delete;
  RunSignals& operator=(const RunSignals&) = delete;
};
int interrupted();        // the first SIGINT / SIGTERM received under RunSignals, else 0
bool abandon_requested();  // a second one
std::string signal_name(int sig);  // "SIGINT"

// ---- one run per output at a time ----
// An exclusive flock(2) on "<output>.lock", held for the whole run; the file holds the holder's
// pid, host and start time. The kernel drops the lock when its process dies, even by kill -9, so a
// stale lock file never blocks a rerun. Removed when released. Throws InputError (exit status 2)
// naming the output and the other run's pid when another process holds it. On a file system
// without flock (some parallel file systems) it warns and runs unlocked.
class OutputLock {
 public:
  explicit OutputLock(const std::string& output);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
  void release();  // removes the lock file, then unlocks

 private:
  std::string path_;
  int fd_ = -1;
};
std::string lock_path(const std::string& output);  // "<output>.lock"

// Everything a run does before its first cell: refuses a foreign output, computes the extras,
// creates the directories, removes files half-written by dead runs, loads the finished cells of
// `scope` (refusing cells outside it). Throws InputError.
struct Prepared {
  std::unique_ptr<OutputLock> lock;  // held until the run ends
  std::shared_ptr<const Extras> extras;
  Finished done;
  IdSet todo;  // cells of scope not finished
  std::string started;
};
Prepared prepare(const Experiment& e, const IdSet& scope, int threads);

int resolve_threads(const Experiment& e, const RunOptions& opt);
IdSet scope_of(const Experiment& e, const RunOptions& opt);  // the cells this run is for
std::string hms(double seconds);
std::string run_command(const Experiment& e);

// What an interrupted or failed run says last: how many cells are kept where, and the command that
// resumes (opt.resume_command), after `when` ("once there is space, ").
std::string kept_and_resume(const Experiment& e, std::size_t done, std::size_t scope, const RunOptions& opt, bool main_written,
                            const std::string& when);
// The second signal: with no cell being added to `done` (the caller holds the lock that guards it),
// writes the main file from the finished cells, prints what was kept and how to resume, removes the
// lock file and ends the process (status 128 + signal) without waiting for the cells in flight.
// Holds g_h5 to the end, so no cell file is left half-written.
[[noreturn]] void abandon_run(const Experiment& e, const Finished& done, const MainInfo& info,
                              const Extras& extras, std::size_t scope, const RunOptions& opt, OutputLock* lock);

}  // namespace flowgauge::detail
