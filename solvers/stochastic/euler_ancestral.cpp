// Euler ancestral (k-diffusion sample_euler_ancestral; samplers.md 4.4), in EDM coordinates
// y = x/alpha, rho = sigma/alpha. One step s -> t:
//   (rho_down, rho_up) = ancestral split (solvers/stochastic/common.hpp, eta),
//   y_down = y_s + (rho_down - rho_s) epshat(x_s, s)   (Euler on dy/drho = eps, = DDIM to rho_down),
//   x_t = alpha_t (y_down + rho_up xi).
// eta = 1: ell_down = 2 ell_t - ell_s, and the step equals ddpm / ddim_eta(1) / sde_dpmpp_1(1) to
// rounding for the same xi (samplers.md 7.6). Noise xi = normalized Brownian increment of the step.
// Options: eta (default 1). Weak order 1 (measured 0.96 logsnr, 0.95 edm grid, local 0.99; strong
// 0.94 logsnr; tests/test_stochastic.cpp). 1 NFE.
#include "solvers/stochastic/common.hpp"

namespace flowgauge {
namespace {

class EulerAncestral final : public Solver {
 public:
  explicit EulerAncestral(double eta) : eta_(eta) {
    tr_.limit_drift = 0.5 * (1.0 + eta * eta);  // the gamma = eta^2 SDE (rho_up^2 ~ eta^2 rho^2 2h)
    tr_.limit_noise = eta;
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
    const double rho_s = s.sigma() / s.alpha(), rho_t = t.sigma() / t.alpha();
    const auto a = stoch::ancestral_step(rho_s, rho_t, eta_);
    m.predict(X, s.tp, x0_, eps_);
    X = (t.alpha() / s.alpha()) * X + (t.alpha() * (a.down - rho_s)) * eps_;
    if (a.up == 0.0) return;
    sn_.normal(noise(), g.t[i], g.t[i + 1], first_particle(), xi_);
    X += (t.alpha() * a.up) * xi_;
  }

 private:
  double eta_;
  stoch::StepNoise sn_;
  SolverTraits tr_{.name = "euler_ancestral", .family = "stochastic", .order = 1, .evals_per_step = 1,
                   .history = 0, .stochastic = true, .starts_at_prior = false};
  std::vector<expint::Point> pts_;
  MatrixXd x0_, eps_, xi_;
};

}  // namespace

std::unique_ptr<Solver> make_euler_ancestral(OptionReader& o) {
  const double eta = o.get_double("eta", 1.0);
  if (eta < 0) throw InputError(fmt::format("solver euler_ancestral: eta = {} must be >= 0", eta));
  return std::make_unique<EulerAncestral>(eta);
}

}  // namespace flowgauge
