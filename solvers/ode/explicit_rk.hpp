#pragma once
// Generic explicit Runge-Kutta on the PF-ODE in a chosen coordinate system (solvers/coordinates.hpp).
// A method is its Butcher tableau; each method file registers one tableau.
#include <vector>

#include "solvers/coordinates.hpp"
#include "solvers/ode/tableaux.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {

// Options: coordinates = t | ve | fm | logsnr (default ve, the EDM form).
std::unique_ptr<Solver> make_explicit_rk(OptionReader& opts, SolverTraits traits, ButcherTableau tableau);
// The method `name` of rk_methods() (ode/tableaux.hpp) as a sampler.
std::unique_ptr<Solver> make_explicit_rk(OptionReader& opts, const std::string& name);

}  // namespace flowgauge
