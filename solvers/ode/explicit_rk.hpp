#pragma once
// Generic explicit Runge-Kutta on the PF-ODE in a chosen coordinate system (solvers/coordinates.hpp).
// A method is its Butcher tableau; each method file registers one tableau.
#include <vector>

#include "solvers/coordinates.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {

struct ButcherTableau {
  std::vector<std::vector<double>> a;  // strictly lower triangular, s x s
  std::vector<double> b, c;
};

// Options: coordinates = t | ve | fm | logsnr (default ve, the EDM form).
std::unique_ptr<Solver> make_explicit_rk(OptionReader& opts, SolverTraits traits, ButcherTableau tableau);

}  // namespace flowgauge
