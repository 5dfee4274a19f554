// Classical fourth-order Runge-Kutta (weights 1/6, 1/3, 1/3, 1/6).
#include "solvers/ode/explicit_rk.hpp"

namespace flowgauge {
std::unique_ptr<Solver> make_rk4(OptionReader& o) {
  return make_explicit_rk(o, {.name = "rk4", .order = 4},
                          {{{}, {0.5}, {0.0, 0.5}, {0.0, 0.0, 1.0}}, {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6}, {0.0, 0.5, 0.5, 1.0}});
}
}  // namespace flowgauge
