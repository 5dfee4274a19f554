#pragma once
// Shared pieces of the stochastic samplers (samplers.md 1.5, 4.2, 4.4).
//
// Noise: every sampler here takes ONE standard normal per grid step (and dimension, particle),
//   xi_i = (W(t_{i+1}) - W(t_i)) / sqrt(t_i - t_{i+1}),
// the normalized increment over that step of the Brownian path W in the schedule's native time t
// (solvers/brownian/noise.hpp). The per-step noise amplitude c_i of each sampler satisfies
// c_i / sqrt(t_i - t_{i+1}) -> (gamma g^2)^{1/2} at the step's start as the grid is refined, so the
// injected noise c_i xi_i = (c_i / sqrt(dt)) dW converges to the Ito integral of the limiting SDE on
// that same path: refining the grid converges pathwise (strongly), not only in law, and a recorded
// array of normals (ExplicitNoise) replays another implementation's xi_i exactly.
#include <algorithm>
#include <cmath>
#include <limits>
#include <fmt/format.h>
#include <utility>

#include "analytics/errors.hpp"

#include "solvers/exponential/common.hpp"
#include "solvers/solver.hpp"

namespace flowgauge::stoch {

// Per-run reader of the step normals xi = (W(tb) - W(ta)) / sqrt|tb - ta|. For path sources
// (BrownianTree) it keeps W at the previous query's end, so consecutive steps cost one tree descent
// instead of two; the result is bitwise the source's normal(). Other sources: normal() as is.
class StepNoise {
 public:
  void start(Eigen::Index d, Eigen::Index n) {
    prev_.resize(d, n);
    next_.resize(d, n);
    t_prev_ = std::numeric_limits<double>::quiet_NaN();
  }
  void normal(const NoiseSource& src, double ta, double tb, std::int64_t first, MatRef out) {
    if (!(ta == t_prev_) && !src.path_values(ta, first, prev_)) {
      src.normal(ta, tb, first, out);
      return;
    }
    src.path_values(tb, first, next_);
    out = (next_ - prev_) / std::sqrt(std::abs(tb - ta));
    std::swap(prev_, next_);
    t_prev_ = tb;
  }

 private:
  MatrixXd prev_, next_;
  double t_prev_ = std::numeric_limits<double>::quiet_NaN();
};

// Ancestral split of k-diffusion's get_ancestral_step (samplers.md 4.4), in rho = sigma/alpha:
// rho_up = min(rho_t, eta sqrt(rho_t^2 (rho_s^2 - rho_t^2) / rho_s^2)), rho_down = sqrt(rho_t^2 - rho_up^2).
// eta = 1: rho_down = rho_t^2/rho_s, i.e. ell_down = 2 ell_t - ell_s.
struct AncestralStep {
  double down, up;
};
inline AncestralStep ancestral_step(double rho_s, double rho_t, double eta) {
  if (eta == 0.0) return {rho_t, 0.0};
  // rho_t^2 (rho_s^2 - rho_t^2)/rho_s^2 = rho_t^2 (1 - (rho_t/rho_s)^2), written without cancellation in q
  const double q = rho_t / rho_s;
  const double up = std::min(rho_t, eta * rho_t * std::sqrt((1.0 - q) * (1.0 + q)));
  const double down = std::sqrt(std::max(0.0, (rho_t - up) * (rho_t + up)));
  return {down, up};
}

// EDM's schedule-free denoiser D(y; rho): the exact model at (alpha, sigma) = (1, rho). The exact
// mixture model depends on (alpha, sigma) only, so this equals the x-space call at any schedule time
// with sigma/alpha = rho, rescaled; it also allows rho outside the schedule's range (EDM churn
// raises rho above the first grid value). The TimePoint's t is not used by Model.
inline void predict_ve(Model& m, const ConstMatRef& Y, double rho, MatRef x0, MatRef eps) {
  const TimePoint p{std::numeric_limits<double>::quiet_NaN(), 1.0, rho, 0.0, 0.0};
  m.predict(Y, p, x0, eps);
}

}  // namespace flowgauge::stoch
