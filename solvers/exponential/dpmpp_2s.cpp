// DPM-Solver++(2S), singlestep, data prediction, r = 1/2 (Lu et al. 2022b, arXiv 2211.01095,
// Algorithm 1; reference singlestep_dpm_solver_second_update with algorithm_type dpmsolver++;
// samplers.md 4.3):
//   u   = (sigma_s1/sigma_s) x_s - alpha_s1 (e^{-r h} - 1) m_s,
//   x_t = (sigma_t/sigma_s) x_s - alpha_t (e^{-h} - 1) [(1 - 1/(2r)) m_s + 1/(2r) m(u, s1)].
// s1 = t(ell_s + h/2) via Schedule::t_of_lambda. Order 2, 2 NFE per step (measured 1.99, single
// Gaussian, logsnr and edm grids; tests/test_exponential.cpp).
#include "solvers/exponential/common.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {
namespace {

class Dpmpp2s final : public Solver {
 public:
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    expint::cache_grid(m.schedule(), g, pts_);
    m0_.resize(m.dim(), n);
    m1_.resize(m.dim(), n);
    eps_.resize(m.dim(), n);
    u_.resize(m.dim(), n);
  }

  void step(Model& m, const Grid&, int i, MatRef X) override {
    const auto& s = pts_[i];
    const auto& t = pts_[i + 1];
    const double h = t.ell - s.ell;
    const auto s1 = expint::point_at_ell(m.schedule(), s.ell + kR * h);
    m.predict(X, s.tp, m0_, eps_);
    const double h1 = s1.ell - s.ell, r = h1 / h;  // r = 1/2 up to the rounding of t_of_lambda
    u_ = (s1.sigma() / s.sigma()) * X - (s1.alpha() * std::expm1(-h1)) * m0_;
    m.predict(u_, s1.tp, m1_, eps_);
    const double c = t.alpha() * std::expm1(-h);
    X = (t.sigma() / s.sigma()) * X - c * m0_ - (0.5 / r) * c * (m1_ - m0_);
  }

 private:
  static constexpr double kR = 0.5;
  SolverTraits tr_{.name = "dpmpp_2s", .family = "exponential", .order = 2, .evals_per_step = 2, .history = 0, .starts_at_prior = false};
  std::vector<expint::Point> pts_;
  MatrixXd m0_, m1_, eps_, u_;
};

}  // namespace

std::unique_ptr<Solver> make_dpmpp_2s(OptionReader&) { return std::make_unique<Dpmpp2s>(); }

}  // namespace flowgauge
