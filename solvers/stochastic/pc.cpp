// Predictor-corrector sampler (Song et al. 2021, "Score-based generative modeling through SDEs",
// Algorithm 1 with Algorithms 2-4; score_sde pc_sampler; samplers.md 4.4). Step i, s = t_i -> t = t_{i+1}:
//   1. corrector at s: M Langevin steps x <- x + e s(x, s) + sqrt(2 e) z (solvers/stochastic/langevin.hpp),
//   2. predictor s -> t on the gamma = 1 reverse SDE, score = -epshat/sigma, h = ell_t - ell_s:
//      euler_maruyama:    x <- x - [f x - g^2 score] (s - t) + g(s) (W(t) - W(s))         (= our euler_maruyama, eta 1)
//      reverse_diffusion: x <- (2 - a_f) x + b^2 score(x, s) + b xi,  a_f = alpha_s/alpha_t,
//                         b^2 = sigma_s^2 - a_f^2 sigma_t^2 = sigma_s^2 (1 - e^{-2h}), the forward
//                         transition t -> s (score_sde ReverseDiffusionPredictor: VP a_f = sqrt(alpha_k),
//                         b^2 = beta_k; VE a_f = 1, b^2 = sigma_s^2 - sigma_t^2).
//    As score_sde: the corrector runs BEFORE the predictor at each grid time; the final denoise step
//    (grid.denoise_final) is the driver's x0-prediction, without a corrector.
// Corrector step size (option step_size): "ald" (default) e = 2 a (snr sigma_s)^2 (score_sde
// AnnealedLangevinDynamics), or "particle" e_j = 2 a (snr ||z_j|| / ||s_j||)^2 per particle. score_sde's
// LangevinCorrector uses batch means of the norms; flowgauge uses the per-particle ratio so that results
// do not depend on the batch split or the thread count (design decision: langevin.hpp, README).
// MEASURED CONSEQUENCE (tests/test_stochastic.cpp Langevin.*): a per-particle e_j is a state- and
// noise-dependent time change of the Langevin diffusion, whose invariant law is then NOT p_t at any
// step size: at fixed t from exact p_t draws the variance grows by ~6 % in d = 8 (1.5 % in d = 32,
// measured once), the same at snr 0.05 and 0.0125, and in d = 2 single particles jump far (heavy
// tails). "ald" is consistent (bias O(e) -> 0) and affine, so its exact law is available; it is the
// rule to use for accuracy studies, hence the default; "particle" is kept to show the bias.
// a: score_sde uses alpha_k = 1 - beta(t)/N for VP and sub-VP (the DDPM step's signal retention) and
// a = 1 for VE. Here, for every schedule, a is the DDPM alpha of the grid step, a = (alpha_s/alpha_t)^2
// = a_f^2: equal to score_sde's to first order in the step for VP / sub-VP
// (where 1 - beta_k is the first-order form of alpha-bar_k / alpha-bar_{k-1}), exactly 1 for ve and edm
// (alpha = 1) as score_sde's VE branch, and (1 - s)^2/(1 - t)^2 for fm (no score_sde counterpart).
// Noise: the predictor's xi is the normalized Brownian increment of the step (as every sampler here);
// the corrector's z are NOT Brownian increments: NoiseSource::auxiliary_normal(s, k), k = 0..M-1, a pure
// function of (seed, particle, s, k) (independent of the path), so results are batch-split and thread
// invariant. Hence the sampler has no pathwise limit unless M = 0 (traits' limit_* are NaN for M > 0;
// its same-path "strong error" does not fall with the steps), and with a fixed snr the corrector's
// O(snr^2) bias does not vanish as the grid is refined. Declared order 1 (the predictor's): exact W2
// on single-Gaussian data (vp-linear, uniform grid, step_size = ald, snr 0.16): 0.299, 0.070, 0.029,
// 0.014, 0.0083, 0.0055, 0.0037 at N = 8..512 (slope 1.4 over 8..64, pre-asymptotic), stalling above
// the predictor alone (0.0020 at N = 512) and above snr 0.04 (0.0018); reverse-diffusion predictor
// 0.31 -> 0.0032 (tests/test_stochastic.cpp PredictorCorrector.*).
// Options: predictor = euler_maruyama | reverse_diffusion, corrector_steps M = 1 (0..100; 0 = predictor
// only), snr = 0.16 (score_sde CIFAR-10), step_size = ald | particle. NFE per step 1 + M.
#include "solvers/stochastic/common.hpp"
#include "solvers/stochastic/langevin.hpp"

namespace flowgauge {
namespace {

class Pc final : public Solver {
 public:
  Pc(bool reverse_diffusion, int corrector_steps, double snr, stoch::StepRule rule)
      : rd_(reverse_diffusion), M_(corrector_steps), snr_(snr), rule_(rule) {
    tr_.evals_per_step = 1 + M_;
    if (M_ == 0) {  // the predictor alone: a discretization of the gamma = 1 reverse SDE on the path
      tr_.limit_drift = 1.0;
      tr_.limit_noise = 1.0;
    }
  }
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    sn_.start(m.dim(), n);
    expint::cache_grid(m.schedule(), g, pts_);
    for (auto* a : {&x0_, &eps_, &xi_}) a->resize(m.dim(), n);
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    const auto& s = pts_[i];
    const auto& t = pts_[i + 1];
    const double af = s.alpha() / t.alpha();  // forward transition t -> s: x_s = af x_t + b xi
    for (int k = 0; k < M_; ++k) {
      noise().auxiliary_normal(g.t[i], k, first_particle(), xi_);
      stoch::langevin_step(m, s.tp, af * af, snr_, rule_, xi_, X, x0_, eps_);
    }
    m.predict(X, s.tp, x0_, eps_);
    if (rd_) {
      const double b2 = s.sigma() * s.sigma() * -std::expm1(-2.0 * (t.ell - s.ell));
      X = (2.0 - af) * X - (b2 / s.sigma()) * eps_;
      sn_.normal(noise(), g.t[i], g.t[i + 1], first_particle(), xi_);
      X += std::sqrt(b2) * xi_;
    } else {
      const double dt = g.t[i + 1] - g.t[i];
      const auto& sch = m.schedule();
      const double f = s.tp.alpha_dot / s.alpha(), g2 = sch.g2(g.t[i]);
      X += (dt * f) * X + (dt * g2 / s.sigma()) * eps_;  // drift f x - g^2 score, score = -eps/sigma
      sn_.normal(noise(), g.t[i], g.t[i + 1], first_particle(), xi_);
      X += std::sqrt(g2 * -dt) * xi_;
    }
  }

 private:
  bool rd_;
  int M_;
  double snr_;
  stoch::StepRule rule_;
  stoch::StepNoise sn_;
  SolverTraits tr_{.name = "pc", .family = "stochastic", .order = 1, .evals_per_step = 2, .history = 0,
                   .stochastic = true, .starts_at_prior = false};  // a = (alpha_s / alpha_t)^2
  std::vector<expint::Point> pts_;
  MatrixXd x0_, eps_, xi_;
};

}  // namespace

std::unique_ptr<Solver> make_pc(OptionReader& o) {
  const bool rd = o.get_choice("predictor", "euler_maruyama", {"euler_maruyama", "reverse_diffusion"}) == "reverse_diffusion";
  const int M = o.get_int("corrector_steps", 1, 0, 100);
  const double snr = o.get_double("snr", 0.16);
  if (!(snr >= 0)) throw InputError(fmt::format("solver pc: snr = {} must be >= 0", snr));
  const auto rule = o.get_choice("step_size", "ald", {"ald", "particle"}) == "ald" ? stoch::StepRule::kAld
                                                                                       : stoch::StepRule::kParticle;
  return std::make_unique<Pc>(rd, M, snr, rule);
}

}  // namespace flowgauge
