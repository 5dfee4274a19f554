// Classical fourth-order Runge-Kutta (weights 1/6, 1/3, 1/3, 1/6).
#include "solvers/ode/explicit_rk.hpp"

namespace flowgauge {
std::unique_ptr<Solver> make_rk4(OptionReader& o) { return make_explicit_rk(o, "rk4"); }  // tableau: ode/tableaux.hpp
}  // namespace flowgauge
