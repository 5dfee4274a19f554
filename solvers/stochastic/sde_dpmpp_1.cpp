// SDE-DPM-Solver++(1) (Lu et al. 2022b, arXiv 2211.01095, eq. for the SDE solver; samplers.md 4.4):
// the exponential integrator of the gamma-SDE dx = [f x - (1 + gamma)/2 g^2 s] dt + sqrt(gamma) g dW
// with x0hat frozen at the step's start, exact in the linear part. Step s -> t, h = ell_t - ell_s:
//   x_t = (sigma_t/sigma_s) e^{-gamma h} x_s + alpha_t (1 - e^{-(1 + gamma) h}) x0hat + sigma_t sqrt(1 - e^{-2 gamma h}) xi.
// gamma = 1 equals the DDPM step (samplers.md 7.6); gamma = 0 is DDIM. Option `gamma` (default 1)
// is k-diffusion's `eta` of sample_dpmpp_2m_sde (noise variance multiplier), NOT DDIM's eta.
// Noise xi = normalized Brownian increment of the step. Weak order 1, strong order 1 (measured 0.96
// and 0.94 at gamma = 1, equal to ddpm; tests/test_stochastic.cpp). 1 NFE.
#include "solvers/stochastic/common.hpp"

namespace flowgauge {
namespace {

class SdeDpmpp1 final : public Solver {
 public:
  explicit SdeDpmpp1(double gamma) : gamma_(gamma) {
    tr_.limit_drift = 0.5 * (1.0 + gamma);
    tr_.limit_noise = std::sqrt(gamma);
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
    m.predict(X, s.tp, x0_, eps_);
    X = (t.sigma() / s.sigma() * std::exp(-gamma_ * h)) * X - (t.alpha() * std::expm1(-(1.0 + gamma_) * h)) * x0_;
    if (gamma_ == 0.0) return;
    sn_.normal(noise(), g.t[i], g.t[i + 1], first_particle(), xi_);
    X += (t.sigma() * std::sqrt(-std::expm1(-2.0 * gamma_ * h))) * xi_;
  }

 private:
  double gamma_;
  stoch::StepNoise sn_;
  SolverTraits tr_{.name = "sde_dpmpp_1", .family = "stochastic", .order = 1, .evals_per_step = 1, .history = 0,
                   .stochastic = true};
  std::vector<expint::Point> pts_;
  MatrixXd x0_, eps_, xi_;
};

}  // namespace

std::unique_ptr<Solver> make_sde_dpmpp_1(OptionReader& o) {
  const double gamma = o.get_double("gamma", 1.0);
  if (gamma < 0) throw InputError(fmt::format("solver sde_dpmpp_1: gamma = {} must be >= 0", gamma));
  return std::make_unique<SdeDpmpp1>(gamma);
}

}  // namespace flowgauge
