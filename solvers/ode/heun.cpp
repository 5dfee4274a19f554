// Heun / explicit trapezoid (EDM Algorithm 2 with S_churn = 0; the last step to sigma = 0 is
// Euler, i.e. the x0-prediction, through the driver's final-step convention).
#include "solvers/ode/explicit_rk.hpp"

namespace flowgauge {
std::unique_ptr<Solver> make_heun(OptionReader& o) {
  return make_explicit_rk(o, {.name = "heun", .order = 2}, {{{}, {1.0}}, {0.5, 0.5}, {0.0, 1.0}});
}
}  // namespace flowgauge
