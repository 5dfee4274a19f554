// Euler's method. In ve or fm coordinates it is DDIM exactly (samplers.md 7.2).
#include "solvers/ode/explicit_rk.hpp"

namespace flowgauge {
std::unique_ptr<Solver> make_euler(OptionReader& o) { return make_explicit_rk(o, "euler"); }  // tableau: ode/tableaux.hpp
}  // namespace flowgauge
