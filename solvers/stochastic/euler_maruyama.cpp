// Euler-Maruyama on the reverse-SDE family (closed_forms.md 4; samplers.md 1.5, 4.4; score_sde
// EulerMaruyamaPredictor at eta = 1), one step s -> t (dt = t - s < 0), score = -eps/sigma:
//   euler_maruyama:      x_t = x_s + [f x_s - (1 + eta^2)/2 g^2 score] dt + eta g (W(t) - W(s))
//     = the SDE dx = [f x - (1 + eta^2)/2 g^2 s] dt + eta g dW, same marginals for every eta >= 0
//     (gamma = eta^2 of samplers.md 1.5; eta = 0 is Euler on the PF-ODE in t).
//   euler_maruyama_seed: drift coefficient (1 + eta)/2 instead (the seed note's draft formula):
//     keeps the marginals only for eta in {0, 1}; kept to SHOW the drift (tests/test_stochastic.cpp).
// f, g^2 at the step's start (Schedule::f, Schedule::g2). Options: eta (default 1).
// Additive noise (g depends on t only): strong order 1, weak order 1. Measured (vp-linear, single
// Gaussian, tests/test_stochastic.cpp): strong 1.02 (uniform N = 16..256, same-path reference at 4096
// steps), weak 1.01 (eta = 1) and 0.97 (eta = 0.5) (exact affine propagation, W2 to the true
// marginal, N = 32..512). The seed variant at eta = 0.5 stays at W2 = 0.42 from the marginal at any
// N (correct family: 4e-4 at N = 1024). 1 NFE.
#include "solvers/stochastic/common.hpp"

namespace flowgauge {
namespace {

class EulerMaruyama final : public Solver {
 public:
  EulerMaruyama(const char* name, double eta, bool seed_variant)
      : eta_(eta), drift_(seed_variant ? 0.5 * (1.0 + eta) : 0.5 * (1.0 + eta * eta)) {
    tr_.name = name;
    tr_.limit_drift = drift_;  // the SDE it discretizes
    tr_.limit_noise = eta;
  }
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid&, Eigen::Index n) override {
    sn_.start(m.dim(), n);
    x0_.resize(m.dim(), n);
    eps_.resize(m.dim(), n);
    xi_.resize(m.dim(), n);
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    const double s = g.t[i], t = g.t[i + 1], dt = t - s;
    const auto& sch = m.schedule();
    const TimePoint p = sch.at(s);
    const double f = p.alpha_dot / p.alpha, g2 = sch.g2(s);
    m.predict(X, p, x0_, eps_);
    // drift = f x - drift_ g^2 score = f x + drift_ g^2 eps / sigma
    X += (dt * f) * X + (dt * drift_ * g2 / p.sigma) * eps_;
    if (eta_ == 0.0) return;
    sn_.normal(noise(), s, t, first_particle(), xi_);
    X += (eta_ * std::sqrt(g2 * -dt)) * xi_;
  }

 private:
  double eta_, drift_;
  stoch::StepNoise sn_;
  SolverTraits tr_{.name = "", .family = "stochastic", .order = 1, .evals_per_step = 1, .history = 0,
                   .stochastic = true, .starts_at_prior = false};
  MatrixXd x0_, eps_, xi_;
};

}  // namespace

std::unique_ptr<Solver> make_euler_maruyama(OptionReader& o) {
  const double eta = o.get_double("eta", 1.0);
  if (eta < 0) throw InputError(fmt::format("solver euler_maruyama: eta = {} must be >= 0", eta));
  return std::make_unique<EulerMaruyama>("euler_maruyama", eta, false);
}

std::unique_ptr<Solver> make_euler_maruyama_seed(OptionReader& o) {
  const double eta = o.get_double("eta", 1.0);
  if (eta < 0) throw InputError(fmt::format("solver euler_maruyama_seed: eta = {} must be >= 0", eta));
  return std::make_unique<EulerMaruyama>("euler_maruyama_seed", eta, true);
}

}  // namespace flowgauge
