#pragma once
// Langevin corrector of the predictor-corrector samplers (Song et al. 2021, "Score-based generative
// modeling through SDEs", Algorithm 2-4; score_sde LangevinCorrector / AnnealedLangevinDynamics;
// samplers.md 4.4). One step at a FIXED time t, with s = -epshat/sigma the model's score:
//   x <- x + e s(x, t) + sqrt(2 e) z,   z ~ N(0, I),   one model evaluation,
// unadjusted Langevin dynamics for p_t: p_t is invariant up to O(e) (for a Gaussian target of
// covariance C the stationary covariance is C (I - e C^{-1}/2)^{-1}; tests/test_stochastic.cpp).
// Step size, snr r, a = the step's DDPM alpha (pc.cpp):
//   StepRule::kParticle: e_j = 2 a (r ||z_j|| / ||s_j||)^2 for particle (column) j, e_j = 0 if s_j = 0.
//     score_sde's LangevinCorrector takes BATCH means of ||z_j|| and ||s_j|| instead, which makes a
//     particle's result depend on the rest of its batch; flowgauge's results must not depend on the
//     batch split or the thread count, so the ratio is taken per particle (DESIGN DECISION; the two
//     agree when the norms concentrate, i.e. in high dimension). Consequence (measured,
//     tests/test_stochastic.cpp): e_j depends on the state (1/|s_j|^2) and on z_j, a state-dependent
//     time change of the Langevin diffusion, so the invariant law is NOT p_t at any step size (variance
//     +6 % in d = 8, the same at snr 0.05 and 0.0125; +1.5 % in d = 32, measured once, not a test);
//     and e_j is unbounded where s_j -> 0 (P(|s_j| < u) ~ u^d), so in d = 2 single particles take long
//     jumps (heavy tails). The corrector is then not affine in (x, z): no exact law (propagate_law
//     refuses it).
//   StepRule::kAld: e = 2 a (r sigma_t)^2, score_sde's AnnealedLangevinDynamics: deterministic, so the
//     corrector is affine in (x, z) on single-Gaussian data and its law is exact (propagate_law).
#include <cmath>

#include "solvers/solver.hpp"

namespace flowgauge::stoch {

enum class StepRule { kParticle, kAld };

// One Langevin step on X (d x n) at model time point p; Z: the step's standard normals (d x n);
// x0, eps: d x n workspace (the model's predictions).
inline void langevin_step(Model& m, const TimePoint& p, double a, double snr, StepRule rule, const ConstMatRef& Z,
                          MatRef X, MatRef x0, MatRef eps) {
  m.predict(X, p, x0, eps);
  const double sigma = p.sigma;
  if (rule == StepRule::kAld) {
    const double e = 2.0 * a * (snr * sigma) * (snr * sigma);
    X += (-e / sigma) * eps + std::sqrt(2.0 * e) * Z;  // e s = -e eps/sigma
    return;
  }
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    const double sn = eps.col(j).norm() / sigma;  // ||s_j||
    if (!(sn > 0.0)) continue;
    const double ratio = snr * Z.col(j).norm() / sn;
    const double e = 2.0 * a * ratio * ratio;
    X.col(j) += (-e / sigma) * eps.col(j) + std::sqrt(2.0 * e) * Z.col(j);
  }
}

}  // namespace flowgauge::stoch
