// DPM-2 ancestral (k-diffusion sample_dpm_2_ancestral; samplers.md 4.3-4.4) in y = x/alpha,
// rho = sigma/alpha, D(y; rho) the exact model at (1, rho). Step s -> t:
//   (rho_down, rho_up) = ancestral split (eta); d = (y_s - D(y_s; rho_s))/rho_s;
//   rho_mid = sqrt(rho_s rho_down) (log-midpoint), y_2 = y_s + (rho_mid - rho_s) d,
//   d_2 = (y_2 - D(y_2; rho_mid))/rho_mid, y_down = y_s + (rho_down - rho_s) d_2   (midpoint in rho),
//   x_t = alpha_t (y_down + rho_up xi);  rho_down = 0: y_down = y_s - rho_s d = D(y_s; rho_s), 1 NFE.
// Not DPM-Solver-2 (samplers.md 4.3: an Euler half-step in rho, then a full step with the midpoint
// slope). Options: eta (default 1). Noise xi = normalized Brownian increment of the step.
// Weak order measured 2 on single-Gaussian data (W2 slopes 2.03 logsnr, 2.02 edm grid, N = 32..512;
// tests/test_stochastic.cpp), a linear SDE; not established for non-Gaussian data. 2 NFE per step.
#include "solvers/stochastic/common.hpp"

namespace flowgauge {
namespace {

class Dpm2Ancestral final : public Solver {
 public:
  explicit Dpm2Ancestral(double eta) : eta_(eta) {
    tr_.limit_drift = 0.5 * (1.0 + eta * eta);  // the gamma = eta^2 SDE (rho_up^2 ~ eta^2 rho^2 2h)
    tr_.limit_noise = eta;
  }
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    sn_.start(m.dim(), n);
    expint::cache_grid(m.schedule(), g, pts_);
    for (auto* a : {&x0_, &eps_, &y_, &y2_, &d_, &xi_}) a->resize(m.dim(), n);
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    const auto& s = pts_[i];
    const auto& t = pts_[i + 1];
    const double rho_s = s.sigma() / s.alpha(), rho_t = t.sigma() / t.alpha();
    const auto a = stoch::ancestral_step(rho_s, rho_t, eta_);
    m.predict(X, s.tp, x0_, eps_);
    y_ = X / s.alpha();
    d_ = (y_ - x0_) / rho_s;
    if (a.down == 0.0) {
      y_ -= rho_s * d_;
    } else {
      const double rho_mid = std::sqrt(rho_s * a.down);
      y2_ = y_ + (rho_mid - rho_s) * d_;
      stoch::predict_ve(m, y2_, rho_mid, x0_, eps_);
      d_ = (y2_ - x0_) / rho_mid;
      y_ += (a.down - rho_s) * d_;
    }
    if (a.up != 0.0) {
      sn_.normal(noise(), g.t[i], g.t[i + 1], first_particle(), xi_);
      y_ += a.up * xi_;
    }
    X = t.alpha() * y_;
  }

 private:
  double eta_;
  stoch::StepNoise sn_;
  SolverTraits tr_{.name = "dpm_2_ancestral", .family = "stochastic", .order = 2, .evals_per_step = 2,
                   .history = 0, .stochastic = true, .starts_at_prior = false};
  std::vector<expint::Point> pts_;
  MatrixXd x0_, eps_, y_, y2_, d_, xi_;
};

}  // namespace

std::unique_ptr<Solver> make_dpm_2_ancestral(OptionReader& o) {
  const double eta = o.get_double("eta", 1.0);
  if (eta < 0) throw InputError(fmt::format("solver dpm_2_ancestral: eta = {} must be >= 0", eta));
  return std::make_unique<Dpm2Ancestral>(eta);
}

}  // namespace flowgauge
