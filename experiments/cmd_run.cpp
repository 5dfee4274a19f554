// flowgauge run FILE: expand an experiment file into cells and run them (README "Experiment files").
#include <fmt/format.h>

#include "experiments/cli.hpp"
#include "experiments/config.hpp"
#include "experiments/runner.hpp"

namespace flowgauge::cli {
namespace {
struct RunArgs {
  std::string file, output;
  bool dry_run = false, quiet = false;
  int threads = 0;
};
}  // namespace

void add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* c = app.add_subcommand("run", "Run an experiment file: every cell of its plan, resumable, one HDF5 file");
  c->add_option("file", a->file, "Experiment TOML file")->required();
  c->add_option("--output", a->output, "Override the experiment's output path");
  c->add_option("--threads", a->threads, "Worker threads across cells (default: the file's, else all cores)");
  c->add_flag("--dry-run", a->dry_run, "Print the plan and stop");
  c->add_flag("--quiet", a->quiet, "No progress lines");
  c->callback([a] {
    Experiment e = load_experiment(a->file);
    if (!a->output.empty()) e.output = a->output;
    print_plan(e);
    if (a->dry_run) return;
    const auto s = run_experiment(e, {.threads = a->threads, .quiet = a->quiet});
    fmt::print("done: {} cells ({} computed, {} resumed, {} failed) in {:.1f} s -> {}\n", s.cells, s.computed, s.resumed,
               s.failed, s.seconds, e.output);
  });
}

}  // namespace flowgauge::cli
