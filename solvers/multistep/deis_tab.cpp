// tAB-DEIS (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential Integrator",
// eq. 14-15 with the Lagrange polynomial extrapolation of eps in t; qsh-zh/deis th_deis
// `get_ab_eps_coef`; samplers.md 4.3):
//   x_{i+1} = (alpha_{i+1}/alpha_i) x_i + sum_{j=0}^{r} C_ij eps_{i-j},
//   C_ij = alpha_{i+1} int_{t_i}^{t_{i+1}} rho_dot(tau) L_j(tau) dtau,
// L_j the Lagrange basis in t on t_i, ..., t_{i-r}; degree r = order - 1, lowered to i during
// warm-up (order 1 is DDIM). rho_dot = (alpha sigma_dot - sigma alpha_dot) / alpha^2 is not a
// polynomial: the integrals use adaptive composite 16-point Gauss-Legendre (common.hpp), panel
// tolerance 1e-15 |alpha_{i+1} (rho_{i+1} - rho_i)|, so every C_ij is accurate to ~1e-15 relative
// (DEIS itself uses a 10 000-point left Riemann sum, samplers.md 3.5.6). Since sum_j L_j = 1,
// C_i0 is then set to alpha_{i+1} (rho_{i+1} - rho_i) - sum_{j>0} C_ij: the weights sum to the
// exact DDIM weight, so order 1 is DDIM to rounding. All weights are precomputed in start().
// Options: order = 1..3 (default 3). Measured orders: tests/test_multistep.cpp (Orders.*).
#include "solvers/multistep/common.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {
namespace {

class DeisTab final : public Solver {
 public:
  explicit DeisTab(int order) : r_(order - 1) {
    tr_ = {.name = "deis_tab", .family = "multistep", .order = double(order), .evals_per_step = 1, .history = r_, .starts_at_prior = false};
  }
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    const Schedule& s = m.schedule();
    hist_.reset(r_ + 1, m.dim(), n);
    x0_.resize(m.dim(), n);
    const int steps = g.denoise_final ? g.steps() - 1 : g.steps();  // the driver takes the denoise step
    ratio_.assign(steps, 0.0);
    coef_.assign(steps, {});
    auto rho_dot = [&](double t) {
      const TimePoint p = s.at(t);
      return (p.alpha * p.sigma_dot - p.sigma * p.alpha_dot) / (p.alpha * p.alpha);
    };
    for (int i = 0; i < steps; ++i) {
      const TimePoint p0 = s.at(g.t[i]), p1 = s.at(g.t[i + 1]);
      ratio_[i] = p1.alpha / p0.alpha;
      const double ddim = p1.sigma - p1.alpha * p0.sigma / p0.alpha;  // alpha_{i+1} (rho_{i+1} - rho_i)
      const int q = std::min(i, r_) + 1;
      std::array<double, multistep::kMaxHistory> nodes{};
      for (int j = 0; j < q; ++j) nodes[j] = g.t[i - j];
      const std::span<const double> ns(nodes.data(), q);
      double rest = 0.0;
      for (int j = 1; j < q; ++j) {
        auto f = [&](double tau) { return rho_dot(tau) * multistep::lagrange_basis(ns, j, tau); };
        coef_[i][j] = p1.alpha * multistep::integrate_adaptive(gl_, f, g.t[i], g.t[i + 1], 1e-15 * std::abs(ddim / p1.alpha));
        rest += coef_[i][j];
      }
      coef_[i][0] = ddim - rest;
    }
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    MatrixXd& e = hist_.push(g.t[i]);
    m.predict(X, g.t[i], x0_, e);
    const int q = std::min(i, r_) + 1;
    X *= ratio_[i];
    for (int j = 0; j < q; ++j) X += coef_[i][j] * hist_[j];
  }

 private:
  int r_;
  SolverTraits tr_;
  multistep::GaussLegendre gl_{16};
  multistep::History hist_;
  MatrixXd x0_;
  std::vector<double> ratio_;
  std::vector<std::array<double, multistep::kMaxHistory>> coef_;
};

}  // namespace

std::unique_ptr<Solver> make_deis_tab(OptionReader& o) { return std::make_unique<DeisTab>(o.get_int("order", 3, 1, 3)); }

}  // namespace flowgauge
