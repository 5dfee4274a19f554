#pragma once
// Experiment files (TOML) -> a validated sweep plan. Every error names file:line:col: key.
// Format: README.md "Experiment files"; shipped studies: experiments/*.toml.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "analytics/mixture.hpp"
#include "analytics/schedule.hpp"
#include "experiments/plan.hpp"
#include "solvers/grid.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {

struct DataAxis {
  std::string name;
  std::shared_ptr<const GaussianMixture> mixture;
  std::string source;  // "file path", "preset name" or "inline"
  std::string fingerprint;  // hash of the parameters, in each cell's key (computed once: K d^2 numbers)
};

struct ScheduleAxis {
  std::string name;  // label from the file
  std::shared_ptr<const Schedule> schedule;
};

struct SolverAxis {
  std::string name;  // registry name
  SolverOptions options;
  std::string label;  // name(k=v, ...)
};

struct GridAxis {
  GridSpec spec;  // steps filled per cell
  std::string label;
};

struct Experiment {
  std::string file, text, name, description, output;
  long particles = 256;
  int threads = 0;                   // 0: all cores
  std::vector<std::string> metrics;  // error (always), distribution, curvature, lte
  double mmd_bandwidth = 0;          // 0: default rule (analytics/metrics/mmd.hpp)
  double ref_rtol = 1e-11, ref_atol = 1e-11;
  double ref_spill_mb = 1;           // reference paths larger than this go to an unlinked file (not in the plan hash)
  bool keep_per_particle = false;
  int curvature_steps = 400;
  std::vector<DataAxis> data;
  std::vector<ScheduleAxis> schedules;
  std::vector<SolverAxis> solvers;
  std::vector<GridAxis> grids;
  std::vector<int> steps;
  std::vector<std::uint64_t> seeds;
  Plan cells;  // after exclude / only filters
  std::size_t cells_before_filters = 0;
  std::uint64_t plan_hash = 0;  // identifies the plan (resume, shards, merge)

  bool wants(const std::string& metric) const;
  std::string cell_key(const Cell& c) const;  // canonical text of one cell
};

// Sizes refused by name before anything is built (a plan past them would run out of memory or
// time in validation alone). The fuzz targets (tests/fuzz/) pass smaller ones.
struct PlanLimits {
  long long max_cells = 1'000'000;        // data x schedules x solvers x grids x steps x seeds
  long long max_steps = 1'000'000;        // steps (and curvature_steps) of one grid
  long long max_preset_size = 1LL << 28;  // K d^2 of a preset mixture (8 bytes each, a few copies kept)
};

// Parses and validates; throws InputError("file:line:col: key: message").
Experiment load_experiment(const std::string& path, const PlanLimits& limits = {});
// The same from the file's text; `path` names it in messages and anchors relative data files.
Experiment parse_experiment(const std::string& text, const std::string& path, const PlanLimits& limits = {});
std::vector<std::string> mixture_presets();

}  // namespace flowgauge
