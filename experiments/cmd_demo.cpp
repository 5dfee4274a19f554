// flowgauge demo: the built-in default study run by the README's main command.
// Part 1 checks the exact world by Stein's identities on exact draws from p_t, for every schedule:
//   E[s(x)] = 0 and E[tr J_s(x) + |s(x)|^2] = 0 under x ~ p_t (integration by parts),
// reported as z-scores (mean / Monte Carlo standard error): |z| > 4 would flag a wrong formula.
// Part 2 runs samplers against a fine-step reference and reports errors and fitted orders.
// It writes results/demo.h5 (tables + density grids + trajectories) for experiments/report.py.
#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "analytics/errors.hpp"
#include "analytics/mixture_io.hpp"
#include "experiments/cli.hpp"
#include "experiments/demo.hpp"
#include "results/h5.hpp"
#include "results/provenance.hpp"

namespace flowgauge::cli {
namespace {

struct DemoArgs {
  std::string mixture = "experiments/data/gmm8.toml";
  std::string output = "results/demo.h5";
  long particles = 20000;
  std::uint64_t seed = 1;
};

void run(const DemoArgs& a) {
  const auto gm = load_mixture(a.mixture, warn);
  h5::AtomicOutput out(a.output);
  const hid_t f = out.file();
  h5::write_attrs(f, provenance(command_line()));
  h5::write_attr(f, "mixture_file", a.mixture);

  fmt::print("flowgauge demo: mixture {} (d = {}, K = {})\n\n", a.mixture, gm.dim(), gm.size());
  const auto stein = stein_check(gm, a.particles, a.seed);
  write_table(f, "stein", stein);
  print_stein(stein);

  if (gm.dim() == 2) write_density_grids(f, gm);
  const auto conv = solver_study(gm, a.seed);
  write_table(f, "solvers", conv.table);
  write_table(f, "orders", conv.orders);
  if (!conv.trajectories.empty()) h5::write_stack(f, "reference_trajectories", conv.trajectories);
  h5::write_vector(f, "reference_trajectory_t", conv.trajectory_t);
  print_orders(conv);
  h5::write_attr(f, "end_time", utc_now());
  out.commit();
  fmt::print("\nwrote {}\n", a.output);
}

}  // namespace

void add_demo(CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  auto* c = app.add_subcommand("demo", "Built-in default study: Stein checks of the exact world, sampler errors and orders");
  c->add_option("--mixture", a->mixture, "Mixture TOML file")->capture_default_str();
  c->add_option("--output", a->output, "Output HDF5 file")->capture_default_str();
  c->add_option("--particles", a->particles, "Exact draws per (schedule, t) for the Stein checks")->capture_default_str();
  c->add_option("--seed", a->seed, "Seed")->capture_default_str();
  c->callback([a] { run(*a); });
}

}  // namespace flowgauge::cli
