// libFuzzer target: experiment files (experiments/config.cpp parse_experiment), which also reads
// inline mixtures, presets and mixture files, schedules, solver options, grids and filters.
// Any input must either give a plan or be refused with InputError; an accepted plan must be
// consistent (every cell's axes exist, its grid builds on its schedule) and its exact model must
// answer finitely at both ends of every schedule's sampling interval. Anything else aborts.
// Relative data files resolve against experiments/, as for the shipped studies.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "analytics/errors.hpp"
#include "experiments/config.hpp"

#ifndef FLOWGAUGE_SOURCE_DIR
#error "FLOWGAUGE_SOURCE_DIR must name the source tree (the harness resolves data files there)"
#endif

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "fuzz_experiment: accepted plan violates: %s\n", what);
  std::abort();
}

void check(const flowgauge::Experiment& e) {
  using namespace flowgauge;
  if (e.cells.empty()) broken("at least one cell");
  for (const auto& c : e.cells) {
    if (c.data < 0 || c.data >= int(e.data.size()) || c.schedule < 0 || c.schedule >= int(e.schedules.size()) ||
        c.solver < 0 || c.solver >= int(e.solvers.size()) || c.grid < 0 || c.grid >= int(e.grids.size()) || c.steps < 1)
      broken("cell axes in range");
  }
  // Every cell's grid builds on its schedule (validated already: a refusal here is a validation gap).
  for (const auto& c : e.cells) {
    GridSpec spec = e.grids[c.grid].spec;
    spec.steps = c.steps;
    try {
      const Grid grid = make_grid(*e.schedules[c.schedule].schedule, spec);
      for (double t : grid.t)
        if (!std::isfinite(t)) broken("grid times finite");
    } catch (const InputError&) {
      broken("every cell's grid builds");
    }
  }
  // The exact model at both ends of every sampling interval, at points drawn from p_t there.
  for (const auto& d : e.data)
    for (const auto& s : e.schedules) {
      const Schedule& sch = *s.schedule;
      for (double t : {sch.t_lo(), sch.t_hi()}) {
        const double a = sch.alpha(t), sg = sch.sigma(t);
        if (!std::isfinite(a) || !std::isfinite(sg) || !(sg > 0) || a < 0) broken("alpha, sigma finite at t_lo, t_hi");
        const MatrixXd X = d.mixture->sample(a, sg, 1, 2);
        const MixtureEval ev = d.mixture->evaluate(X, a, sg, kLogp | kScore | kDenoiser);
        if (!X.allFinite() || !ev.logp.allFinite() || !ev.score.allFinite() || !ev.x0.allFinite())
          broken("log p, score, denoiser finite at t_lo and t_hi");
      }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool verbose = std::getenv("FLOWGAUGE_FUZZ_VERBOSE") != nullptr;  // print each refusal
  // Small limits keep each input cheap (a million-cell plan is valid but takes seconds to list).
  const flowgauge::PlanLimits limits{.max_cells = 2048, .max_steps = 2048, .max_preset_size = 1 << 16};
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    check(flowgauge::parse_experiment(text, FLOWGAUGE_SOURCE_DIR "/experiments/fuzz.toml", limits));
  } catch (const flowgauge::InputError& e) {  // refused by name: expected
    if (verbose) std::fprintf(stderr, "refused: %s\n", e.what());
  }
  return 0;
}
