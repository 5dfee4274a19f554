#pragma once
// The Butcher tableaux of the explicit Runge-Kutta family, in one place: the samplers (ode/<name>.cpp)
// and the likelihood integrator (likelihood/) both read them from here.
#include <optional>
#include <string>
#include <vector>

namespace flowgauge {

struct ButcherTableau {
  std::vector<std::vector<double>> a;  // strictly lower triangular, s x s
  std::vector<double> b, c;
};

struct RkMethod {
  const char* name;
  double order;  // declared global order
  ButcherTableau tableau;
};

// euler, heun (explicit trapezoid), midpoint, rk4 (classical), rk38 (Kutta's 3/8 rule).
inline const std::vector<RkMethod>& rk_methods() {
  static const std::vector<RkMethod> m = {
      {"euler", 1, {{{}}, {1.0}, {0.0}}},
      {"heun", 2, {{{}, {1.0}}, {0.5, 0.5}, {0.0, 1.0}}},
      {"midpoint", 2, {{{}, {0.5}}, {0.0, 1.0}, {0.0, 0.5}}},
      {"rk4", 4, {{{}, {0.5}, {0.0, 0.5}, {0.0, 0.0, 1.0}}, {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6}, {0.0, 0.5, 0.5, 1.0}}},
      {"rk38", 4,
       {{{}, {1.0 / 3}, {-1.0 / 3, 1.0}, {1.0, -1.0, 1.0}}, {0.125, 0.375, 0.375, 0.125}, {0.0, 1.0 / 3, 2.0 / 3, 1.0}}},
  };
  return m;
}

// The method called `name`, if it is one of rk_methods().
inline const RkMethod* find_rk_method(const std::string& name) {
  for (const auto& m : rk_methods())
    if (name == m.name) return &m;
  return nullptr;
}

inline std::vector<std::string> rk_method_names() {
  std::vector<std::string> n;
  for (const auto& m : rk_methods()) n.emplace_back(m.name);
  return n;
}

}  // namespace flowgauge
