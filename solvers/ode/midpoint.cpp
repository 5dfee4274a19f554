// Explicit midpoint rule (RK2 with stage at half step).
#include "solvers/ode/explicit_rk.hpp"

namespace flowgauge {
std::unique_ptr<Solver> make_midpoint(OptionReader& o) { return make_explicit_rk(o, "midpoint"); }  // tableau: ode/tableaux.hpp
}  // namespace flowgauge
