// Kutta's 3/8 rule: torchdiffeq's "rk4" and hence Meta flow_matching's (samplers.md 4.1).
#include "solvers/ode/explicit_rk.hpp"

namespace flowgauge {
std::unique_ptr<Solver> make_rk38(OptionReader& o) { return make_explicit_rk(o, "rk38"); }  // tableau: ode/tableaux.hpp
}  // namespace flowgauge
