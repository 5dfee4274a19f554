// flowgauge merge OUT.h5 SHARDS...: the shard files of a job array -> one run file (README "Clusters").
#include <fmt/format.h>

#include "experiments/cli.hpp"
#include "experiments/runner.hpp"

namespace flowgauge::cli {
namespace {
struct MergeArgs {
  std::string output, experiment;
  std::vector<std::string> inputs;
};
}  // namespace

void add_merge(CLI::App& app) {
  auto a = std::make_shared<MergeArgs>();
  auto* c = app.add_subcommand("merge",
                               "Merge the shard files of one experiment (flowgauge run --shard i/n) into one run file; refuses "
                               "(exit 2, nothing written) unless they hold every cell of the plan exactly once");
  c->add_option("output", a->output, "Merged HDF5 file")->required();
  c->add_option("inputs", a->inputs, "Shard files (<output>.shard-i-of-n.h5)")->required();
  c->add_option("--experiment", a->experiment, "Experiment file (default: the one recorded in the shards)");
  c->callback([a] {
    const auto s = merge_runs(a->output, a->inputs, a->experiment);
    fmt::print("merged {} cells from {} files -> {}\n", s.cells, s.inputs, a->output);
  });
}

}  // namespace flowgauge::cli
