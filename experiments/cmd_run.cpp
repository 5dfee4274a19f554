// flowgauge run FILE: expand an experiment file into cells and run them (README "Experiment files",
// "Clusters"): in one process, as one static shard of a job array (--shard i/n or SLURM's array
// variables), or across MPI ranks (mpirun -np R, with -DFLOWGAUGE_MPI=ON).
#include <fmt/format.h>

#include <cstdlib>
#include <exception>
#include <optional>

#include "analytics/errors.hpp"
#include "experiments/cli.hpp"
#include "experiments/config.hpp"
#include "experiments/runner.hpp"
#include "results/h5.hpp"
#ifdef FLOWGAUGE_MPI
#include "experiments/runner_mpi.hpp"
#endif

namespace flowgauge::cli {
namespace {
struct RunArgs {
  std::string file, output, shard;
  bool dry_run = false, quiet = false;
  int threads = 0;
  double rebuild_seconds = 2;
};

struct Shard {
  int index = -1, count = 0;  // count 0: not sharded
  std::string source;
};

std::optional<long long> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (*end) throw InputError(fmt::format("environment variable {}='{}' is not an integer", name, v));
  return x;
}

// --shard i/n, else a SLURM job array's task (SLURM_ARRAY_TASK_ID of an array
// --array=MIN-MAX[:STEP]: shard (ID - MIN) / STEP of SLURM_ARRAY_TASK_COUNT).
Shard resolve_shard(const std::string& arg) {
  Shard s;
  if (!arg.empty()) {
    int i = -1, n = 0;
    char tail = 0;
    if (std::sscanf(arg.c_str(), "%d/%d%c", &i, &n, &tail) != 2 || n < 1 || i < 0 || i >= n)
      throw InputError(fmt::format("--shard '{}': expected i/n with 0 <= i < n (e.g. 0/4)", arg));
    return {i, n, "--shard"};
  }
  const auto id = env_int("SLURM_ARRAY_TASK_ID");
  if (!id) return s;
  const auto count = env_int("SLURM_ARRAY_TASK_COUNT");
  const long long min = env_int("SLURM_ARRAY_TASK_MIN").value_or(0), step = env_int("SLURM_ARRAY_TASK_STEP").value_or(1);
  const auto max = env_int("SLURM_ARRAY_TASK_MAX");
  if (!count || *count < 1)
    throw InputError("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: pass --shard i/n");
  if (step < 1 || *id < min || (*id - min) % step != 0 || (*id - min) / step >= *count || (max && min + (*count - 1) * step != *max))
    throw InputError(fmt::format("the job array's indices (SLURM_ARRAY_TASK_ID={} MIN={} MAX={} STEP={} COUNT={}) are not a "
                                 "range --array=MIN-MAX[:STEP]: pass --shard i/n",
                                 *id, min, max ? std::to_string(*max) : "?", step, *count));
  return {static_cast<int>((*id - min) / step), static_cast<int>(*count), fmt::format("SLURM_ARRAY_TASK_ID={}", *id)};
}

// `s` as one shell word.
std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=:,+@%-") == std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The command that resumes this run: the same program, file and options (the shard made explicit).
std::string resume_command(const RunArgs& a, int shard, int shards, int ranks) {
  const std::string line = command_line();
  std::string cmd = ranks > 1 ? fmt::format("mpirun -np {} ", ranks) : "";
  cmd += shell_quote(line.substr(0, line.find(' '))) + " run " + shell_quote(a.file);
  if (!a.output.empty()) cmd += " --output " + shell_quote(a.output);
  if (a.threads > 0) cmd += fmt::format(" --threads {}", a.threads);
  if (shards > 0) cmd += fmt::format(" --shard {}/{}", shard, shards);
  if (a.rebuild_seconds != 2) cmd += fmt::format(" --rebuild-seconds {}", a.rebuild_seconds);
  if (a.quiet) cmd += " --quiet";
  return cmd;
}

// Ranks an MPI launcher (mpirun, srun --mpi=...) says this process is one of; 0 when not launched so.
int launcher_ranks() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* x = std::getenv(v)) return std::atoi(x);
  return std::getenv("PMIX_RANK") || std::getenv("PMI_RANK") ? 1 : 0;
}
}  // namespace

void add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* c = app.add_subcommand("run", "Run an experiment file: every cell of its plan, resumable, one HDF5 file");
  c->add_option("file", a->file, "Experiment TOML file")->required();
  c->add_option("--output", a->output, "Override the experiment's output path");
  c->add_option("--threads", a->threads, "Worker threads across cells (default: the file's, else all cores); per MPI rank");
  c->add_option("--shard", a->shard,
                "Run only static shard i of n (i/n, 0-based) into <output>.shard-i-of-n.h5; default in a SLURM job array: "
                "its task (flowgauge merge joins the shards)");
  c->add_option("--rebuild-seconds", a->rebuild_seconds,
                "Minimum seconds between rebuilds of the main file from the finished cells (0: after every cell; "
                "otherwise also at least 9x the last rebuild's duration)")
      ->check(CLI::NonNegativeNumber);
  c->add_flag("--dry-run", a->dry_run, "Print the plan and stop");
  c->add_flag("--quiet", a->quiet, "No progress lines");
  c->callback([a] {
    int rank = 0, ranks = 1;
#ifdef FLOWGAUGE_MPI
    std::optional<mpi::Session> session;
    if (launcher_ranks() > 0) {
      session.emplace();
      rank = session->rank();
      ranks = session->size();
    }
#else
    if (launcher_ranks() > 1)
      throw InputError(fmt::format("started by an MPI launcher as one of {} ranks, but this flowgauge is built without MPI: "
                                   "every rank would run the whole study. Rebuild with -DFLOWGAUGE_MPI=ON, or use --shard",
                                   launcher_ranks()));
#endif
    Experiment e;
    Shard shard;
    std::exception_ptr setup_error;
    try {
      shard = resolve_shard(a->shard);
      e = load_experiment(a->file);
    } catch (...) {
      setup_error = std::current_exception();
    }
#ifdef FLOWGAUGE_MPI
    if (ranks > 1) {  // the same error on every rank: one message
      const int first = session->first(setup_error != nullptr);
      if (first >= 0) {
        // The first failing rank prints before any rank exits: a rank that exits with status 2 makes
        // mpirun kill the others, which could otherwise take the message with them.
        if (rank == first) {
          try {
            std::rethrow_exception(setup_error);
          } catch (const std::exception& err) {
            fmt::print(stderr, "flowgauge: error: {}\n", err.what());
          }
          std::fflush(stderr);
        }
        session->all(true);  // barrier
        throw ExitStatus{2};
      }
    }
#endif
    if (setup_error) std::rethrow_exception(setup_error);
    if (!a->output.empty()) e.output = a->output;
    RunOptions opt{.threads = a->threads, .quiet = a->quiet, .rebuild_seconds = a->rebuild_seconds, .shard = shard.index,
                   .shards = shard.count, .resume_command = resume_command(*a, shard.index, shard.count, ranks)};
    if (shard.count > 0) e.output = shard_output(e.output, shard.index, shard.count);
    if (rank == 0) {
      print_plan(e);
      if (shard.count > 0)
        fmt::print("  shard     : {}/{} ({}): {} of {} cells -> {}\n", shard.index, shard.count, shard.source,
                   shard_cells(e, shard.index, shard.count).size(), e.cells.size(), e.output);
      if (ranks > 1)
        fmt::print("  MPI       : {} ranks x {} threads\n", ranks,
                   a->threads > 0 ? std::to_string(a->threads) : e.threads > 0 ? std::to_string(e.threads) : "(all cores)");
    }
    if (a->dry_run) return;
    RunSummary s;
    try {
#ifdef FLOWGAUGE_MPI
      if (ranks > 1) {
        s = mpi::run(*session, e, opt);
      } else {
        s = run_experiment(e, opt);
      }
#else
      s = run_experiment(e, opt);
#endif
    } catch (const h5::WriteError& err) {  // a full disk: not bad input, not an internal error
      fmt::print(stderr, "flowgauge: error: {}\n", err.what());
      throw ExitStatus{1};
    }
    // Interrupted (SIGINT / SIGTERM): the runner has said what is kept and how to resume; the status
    // says which signal, as a shell expects of a program a signal stopped.
    if (rank != 0) {
      if (s.signal) throw ExitStatus{128 + s.signal};
      return;
    }
    fmt::print("{}: {} cells ({} computed, {} resumed, {} failed) in {:.1f} s -> {}\n", s.signal ? "stopped" : "done", s.cells,
               s.computed, s.resumed, s.failed, s.seconds, e.output);
    if (s.signal) throw ExitStatus{128 + s.signal};
  });
}

}  // namespace flowgauge::cli
