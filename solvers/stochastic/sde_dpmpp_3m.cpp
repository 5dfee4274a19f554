// SDE-DPM-Solver++(3M) (k-diffusion sample_dpmpp_3m_sde; samplers.md 4.3-4.4): the 3M data-prediction
// multistep update with h -> hg = (1 + gamma) h inside the phi weights, plus the exact linear-part
// decay and noise of the gamma-SDE. Step s -> t, h = ell_t - ell_s, m_0, m_1, m_2 the predictions
// at the current and two previous grid points, r0 = h_0/h, r1 = h_1/h (previous ell-steps):
//   x_t = (sigma_t/sigma_s) e^{-gamma h} x_s + alpha_t (1 - e^{-hg}) m_0
//         + alpha_t [P2 D1 - c P3 D2] + sigma_t sqrt(1 - e^{-2 gamma h}) xi,
//   D1_0 = (m_0 - m_1)/r0, D1_1 = (m_1 - m_2)/r1, D1 = D1_0 + r0/(r0 + r1)(D1_0 - D1_1),
//   D2 = (D1_0 - D1_1)/(r0 + r1), P2 = (e^{-hg} - 1)/hg + 1 = hg phi_2(-hg), P3 = P2/hg - 1/2 = -hg phi_3(-hg),
// c = 1 (variant = published, k-diffusion's half-weight D2 term, samplers.md 4.3) or 2 (taylor).
// Warm-up as k-diffusion: first step first order, second step adds P2 (m_0 - m_1)/r0 only.
// Options: gamma (default 1; k-diffusion's eta), variant = published | taylor.
// Noise xi = normalized Brownian increment of the step. Weak order measured 2 on single-Gaussian
// data (tests/test_stochastic.cpp; both variants); strong order 1 (additive noise). 1 NFE, history 2.
#include "solvers/stochastic/common.hpp"

namespace flowgauge {
namespace {

class SdeDpmpp3m final : public Solver {
 public:
  SdeDpmpp3m(double gamma, bool taylor) : gamma_(gamma), c2_(taylor ? 2.0 : 1.0) {
    tr_.limit_drift = 0.5 * (1.0 + gamma);
    tr_.limit_noise = std::sqrt(gamma);
  }
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    sn_.start(m.dim(), n);
    expint::cache_grid(m.schedule(), g, pts_);
    for (auto* a : {&m0_, &m1_, &m2_, &eps_, &xi_}) a->resize(m.dim(), n);
    last_ = -3;
    have_ = 0;
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    const auto& s = pts_[i];
    const auto& t = pts_[i + 1];
    const double h = t.ell - s.ell, hg = (1.0 + gamma_) * h;
    std::swap(m1_, m2_);
    std::swap(m0_, m1_);  // m1 <- previous m0, m2 <- previous m1
    m.predict(X, s.tp, m0_, eps_);
    have_ = last_ == i - 1 ? std::min(have_ + 1, 2) : 0;  // consecutive previous predictions held
    last_ = i;
    X = (t.sigma() / s.sigma() * std::exp(-gamma_ * h)) * X - (t.alpha() * std::expm1(-hg)) * m0_;
    const double P2 = hg * expint::phi2(-hg), P3 = -hg * expint::phi3(-hg);
    if (have_ == 2) {
      const double r0 = (s.ell - pts_[i - 1].ell) / h, r1 = (pts_[i - 1].ell - pts_[i - 2].ell) / h;
      // D1 = a0 m0 + a1 m1 + a2 m2 and D2 likewise, expanded to avoid temporaries
      const double k0 = 1.0 / r0, k1 = 1.0 / r1, w = r0 / (r0 + r1), v = 1.0 / (r0 + r1);
      // D1_0 = k0 (m0 - m1), D1_1 = k1 (m1 - m2)
      const double d1_m0 = k0 * (1 + w), d1_m1 = -k0 * (1 + w) - w * k1, d1_m2 = w * k1;
      const double d2_m0 = v * k0, d2_m1 = -v * (k0 + k1), d2_m2 = v * k1;
      const double c = t.alpha();
      X += (c * (P2 * d1_m0 - c2_ * P3 * d2_m0)) * m0_ + (c * (P2 * d1_m1 - c2_ * P3 * d2_m1)) * m1_ +
           (c * (P2 * d1_m2 - c2_ * P3 * d2_m2)) * m2_;
    } else if (have_ == 1) {
      const double r0 = (s.ell - pts_[i - 1].ell) / h;
      X += (t.alpha() * P2 / r0) * (m0_ - m1_);
    }
    if (gamma_ == 0.0) return;
    sn_.normal(noise(), g.t[i], g.t[i + 1], first_particle(), xi_);
    X += (t.sigma() * std::sqrt(-std::expm1(-2.0 * gamma_ * h))) * xi_;
  }

 private:
  double gamma_, c2_;
  stoch::StepNoise sn_;
  SolverTraits tr_{.name = "sde_dpmpp_3m", .family = "stochastic", .order = 2, .evals_per_step = 1, .history = 2,
                   .stochastic = true};
  std::vector<expint::Point> pts_;
  MatrixXd m0_, m1_, m2_, eps_, xi_;
  int last_ = -3, have_ = 0;
};

}  // namespace

std::unique_ptr<Solver> make_sde_dpmpp_3m(OptionReader& o) {
  const double gamma = o.get_double("gamma", 1.0);
  if (gamma < 0) throw InputError(fmt::format("solver sde_dpmpp_3m: gamma = {} must be >= 0", gamma));
  const bool taylor = o.get_choice("variant", "published", {"published", "taylor"}) == "taylor";
  return std::make_unique<SdeDpmpp3m>(gamma, taylor);
}

}  // namespace flowgauge
