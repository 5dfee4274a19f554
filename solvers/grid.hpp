#pragma once
// Step grids: N steps = N + 1 times, t[0] = t_hi (noisy end) strictly decreasing (samplers.md 3.1).
// Grids in "sigma" are in rho = sigma/alpha (k-diffusion's and EDM's sigma; equal to sigma for ve, edm).
#include <string>
#include <vector>

#include "analytics/schedule.hpp"

namespace flowgauge {

enum class FinalStep {
  kStep,     // the last step integrates to t_lo like every other
  kDenoise,  // the grid ends at sigma = 0: the last step returns the x0-prediction (EDM, k-diffusion)
};

struct GridSpec {
  std::string kind = "edm";  // uniform | logsnr | edm | exponential | polyexponential | quadratic | explicit
  int steps = 18;
  double rho = 7.0;          // edm and polyexponential exponent
  FinalStep final_step = FinalStep::kStep;
  std::vector<double> times = {};  // kind == explicit: strictly decreasing times (or rho values if in_sigma)
  bool in_sigma = false;      // explicit list holds rho = sigma/alpha values (0 allowed last)
};

struct Grid {
  std::vector<double> t;  // N + 1 times
  bool denoise_final = false;
  int steps() const { return static_cast<int>(t.size()) - 1; }
};

Grid make_grid(const Schedule& s, const GridSpec& spec);
std::vector<std::string> grid_kinds();
FinalStep parse_final_step(const std::string& name);  // "step" | "denoise"

}  // namespace flowgauge
