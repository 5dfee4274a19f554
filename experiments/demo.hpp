#pragma once
// Pieces of `flowgauge demo` (experiments/cmd_demo.cpp).
#include <hdf5.h>

#include <vector>

#include "analytics/mixture.hpp"
#include "results/table.hpp"

namespace flowgauge {

Table stein_check(const GaussianMixture& gm, long particles, std::uint64_t seed);
void print_stein(const Table& t);

struct SolverStudy {
  Table table;   // one row per (solver, steps)
  Table orders;  // one row per solver: fitted vs declared order
  std::vector<MatrixXd> trajectories;  // fine reference trajectories of a few particles (2-D plots)
  VectorXd trajectory_t;
};
SolverStudy solver_study(const GaussianMixture& gm, std::uint64_t seed);
void print_orders(const SolverStudy& s);

// log p_t on a 2-D lattice at a few noise levels (for contour plots).
void write_density_grids(hid_t f, const GaussianMixture& gm);

}  // namespace flowgauge
