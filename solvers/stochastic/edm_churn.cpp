// EDM stochastic sampler (Karras et al. 2022, Algorithm 2; samplers.md 4.2) in y = x/alpha,
// rho = sigma/alpha, with the denoiser D(y; rho) = the exact model at (1, rho). Step i (N = steps):
//   gamma_i = min(S_churn/N, sqrt(2) - 1) if S_tmin <= rho_i <= S_tmax else 0, rho_hat = rho_i (1 + gamma_i),
//   y_hat = y_i + sqrt(rho_hat^2 - rho_i^2) S_noise xi      (noise BEFORE the evaluation),
//   d = (y_hat - D(y_hat; rho_hat))/rho_hat,  y_{i+1} = y_hat + (rho_{i+1} - rho_hat) d,
//   d' = (y_{i+1} - D(y_{i+1}; rho_{i+1}))/rho_{i+1},  y_{i+1} = y_hat + (rho_{i+1} - rho_hat)(d + d')/2.
// The Heun correction is applied on every step the solver takes (every rho_{i+1} > 0). With
// --final-step denoise the driver's last step returns D(y_{N-1}; rho_{N-1}) WITHOUT churning first
// (EDM churns and then takes an Euler step to 0, which returns D(y_hat; rho_hat)): a difference in
// the final step only.
// xi = normalized Brownian increment of the step [t_i, t_{i+1}] (the churn's noise enters at the
// step's start; its variance rho_i^2 (2 gamma + gamma^2) S_noise^2 is O(1/N) per step like the step).
// rho_hat may exceed the first grid value; D(y; rho) needs no schedule time.
// Options (EDM names): S_churn (default 40), S_tmin (0), S_tmax (1e300 = inf), S_noise (1).
// EDM's ImageNet-64 setting is S_churn 40, S_tmin 0.05, S_tmax 50, S_noise 1.003.
// Not a fixed SDE (the churn is per step and grid dependent, samplers.md 1.5; traits' limit_drift /
// limit_noise stay NaN). At fixed S_churn the per-step churn variance is ~ 2 rho^2 S_churn/N, so
// the grid family has a limit; the exact W2 to the true marginal then falls with weak order 2 on
// single-Gaussian data (S_churn = 10, edm grid, N = 32..512: slope 2.00; tests/test_stochastic.cpp),
// a linear problem. 2 NFE per step.
#include "solvers/stochastic/common.hpp"

namespace flowgauge {
namespace {

class EdmChurn final : public Solver {
 public:
  EdmChurn(double churn, double tmin, double tmax, double snoise)
      : churn_(churn), tmin_(tmin), tmax_(tmax), snoise_(snoise) {}
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    sn_.start(m.dim(), n);
    expint::cache_grid(m.schedule(), g, pts_);
    for (auto* a : {&x0_, &eps_, &y_, &yh_, &d_, &xi_}) a->resize(m.dim(), n);
    steps_ = g.steps();
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    const auto& s = pts_[i];
    const auto& t = pts_[i + 1];
    const double rho_i = s.sigma() / s.alpha(), rho_n = t.sigma() / t.alpha();
    const double gam = (rho_i >= tmin_ && rho_i <= tmax_) ? std::min(churn_ / steps_, std::sqrt(2.0) - 1.0) : 0.0;
    const double rho_hat = rho_i * (1.0 + gam);
    yh_ = X / s.alpha();
    if (gam > 0.0) {
      sn_.normal(noise(), g.t[i], g.t[i + 1], first_particle(), xi_);
      yh_ += (rho_i * std::sqrt(gam * (2.0 + gam)) * snoise_) * xi_;  // sqrt(rho_hat^2 - rho_i^2)
    }
    stoch::predict_ve(m, yh_, rho_hat, x0_, eps_);
    d_ = (yh_ - x0_) / rho_hat;
    y_ = yh_ + (rho_n - rho_hat) * d_;
    stoch::predict_ve(m, y_, rho_n, x0_, eps_);
    d_ += (y_ - x0_) / rho_n;
    y_ = yh_ + (0.5 * (rho_n - rho_hat)) * d_;
    X = t.alpha() * y_;
  }

 private:
  double churn_, tmin_, tmax_, snoise_;
  int steps_ = 1;
  stoch::StepNoise sn_;
  SolverTraits tr_{.name = "edm_churn", .family = "stochastic", .order = 2, .evals_per_step = 2, .history = 0,
                   .stochastic = true, .starts_at_prior = false};
  std::vector<expint::Point> pts_;
  MatrixXd x0_, eps_, y_, yh_, d_, xi_;
};

}  // namespace

std::unique_ptr<Solver> make_edm_churn(OptionReader& o) {
  const double churn = o.get_double("S_churn", 40.0), tmin = o.get_double("S_tmin", 0.0);
  const double tmax = o.get_double("S_tmax", 1e300), snoise = o.get_double("S_noise", 1.0);
  if (churn < 0 || snoise < 0 || tmin > tmax)
    throw InputError(fmt::format("solver edm_churn: need S_churn >= 0, S_noise >= 0, S_tmin <= S_tmax"));
  return std::make_unique<EdmChurn>(churn, tmin, tmax, snoise);
}

}  // namespace flowgauge
