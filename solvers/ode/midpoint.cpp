// Explicit midpoint rule (RK2 with stage at half step).
#include "solvers/ode/explicit_rk.hpp"

namespace flowgauge {
std::unique_ptr<Solver> make_midpoint(OptionReader& o) {
  return make_explicit_rk(o, {.name = "midpoint", .order = 2}, {{{}, {0.5}}, {0.0, 1.0}, {0.0, 0.5}});
}
}  // namespace flowgauge
