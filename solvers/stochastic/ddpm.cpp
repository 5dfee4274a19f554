// DDPM ancestral sampling (Ho, Jain & Abbeel 2020, eq. 6-7; samplers.md 4.4), one step s -> t:
// sample the posterior q(x_t | x_s, x0 = x0hat(x_s)) = N(mu, c^2 I) with
//   sigma_{s|t}^2 = sigma_s^2 - (alpha_s/alpha_t)^2 sigma_t^2   (= sigma_s^2 (1 - e^{-2h}), h = ell_t - ell_s),
//   mu = (alpha_t sigma_{s|t}^2 / sigma_s^2) x0hat + ((alpha_s/alpha_t) sigma_t^2 / sigma_s^2) x_s,
//   c^2 = sigma_t^2 (1 - e^{-2h})  (variance = small, "fixed_small"; the true posterior variance) or
//   c^2 = sigma_{s|t}^2            (variance = large, "fixed_large").
// Written in the posterior form on purpose: an independent route to the equalities
// ddpm == ddim_eta(eta = 1) == euler_ancestral(eta = 1) == sde_dpmpp_1(gamma = 1) (samplers.md 7.6).
// Noise xi = normalized Brownian increment of the step (solvers/stochastic/common.hpp).
// Weak order 1, strong order 1 (a consistent discretization of the gamma = 1 reverse SDE with
// additive noise). Measured (vp-linear, single Gaussian, tests/test_stochastic.cpp): weak 0.96
// (local 0.99) from the exact affine propagation, logsnr N = 32..512 (variance = large: 1.00);
// strong 0.94 on logsnr grids N = 16..256 against euler_maruyama(eta = 1, 4096 uniform steps) on the
// same path (0.78 on uniform-t grids, pre-asymptotic: h in ell reaches 0.8 at the last step). 1 NFE.
#include "solvers/stochastic/common.hpp"

namespace flowgauge {
namespace {

class Ddpm final : public Solver {
 public:
  explicit Ddpm(bool large) : large_(large) {
    tr_.limit_drift = 1.0;  // gamma = 1 for both variances (c^2 ~ sigma^2 2h)
    tr_.limit_noise = 1.0;
  }
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    sn_.start(m.dim(), n);
    expint::cache_grid(m.schedule(), g, pts_);
    x0_.resize(m.dim(), n);
    eps_.resize(m.dim(), n);
    xi_.resize(m.dim(), n);
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    const auto& s = pts_[i];
    const auto& t = pts_[i + 1];
    const double h = t.ell - s.ell;
    const double ss2 = s.sigma() * s.sigma(), st2 = t.sigma() * t.sigma();
    const double post2 = ss2 * -std::expm1(-2.0 * h);  // sigma_{s|t}^2 without cancellation
    m.predict(X, s.tp, x0_, eps_);
    const double cx0 = t.alpha() * post2 / ss2, cx = (s.alpha() / t.alpha()) * st2 / ss2;
    const double c = large_ ? std::sqrt(post2) : t.sigma() * std::sqrt(-std::expm1(-2.0 * h));
    sn_.normal(noise(), g.t[i], g.t[i + 1], first_particle(), xi_);
    X = cx * X + cx0 * x0_ + c * xi_;
  }

 private:
  bool large_;
  stoch::StepNoise sn_;
  SolverTraits tr_{.name = "ddpm", .family = "stochastic", .order = 1, .evals_per_step = 1, .history = 0,
                   .stochastic = true};
  std::vector<expint::Point> pts_;
  MatrixXd x0_, eps_, xi_;
};

}  // namespace

std::unique_ptr<Solver> make_ddpm(OptionReader& o) {
  return std::make_unique<Ddpm>(o.get_choice("variance", "small", {"small", "large"}) == "large");
}

}  // namespace flowgauge
