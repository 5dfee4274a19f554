// Heun / explicit trapezoid (EDM Algorithm 2 with S_churn = 0; the last step to sigma = 0 is
// Euler, i.e. the x0-prediction, through the driver's final-step convention).
#include "solvers/ode/explicit_rk.hpp"

namespace flowgauge {
std::unique_ptr<Solver> make_heun(OptionReader& o) { return make_explicit_rk(o, "heun"); }  // tableau: ode/tableaux.hpp
}  // namespace flowgauge
