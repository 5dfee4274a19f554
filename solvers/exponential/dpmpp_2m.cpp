// DPM-Solver++(2M), multistep, data prediction (Lu et al. 2022b, arXiv 2211.01095, Algorithm 2;
// reference multistep_dpm_solver_second_update with algorithm_type dpmsolver++; samplers.md 4.3).
// With m_0 = x0(x_s, s), m_1 the previous step's prediction, r = h_prev/h, D = (m_0 - m_1)/r:
//   midpoint (reference "dpmsolver"): x_t = (sigma_t/sigma_s) x_s - alpha_t (e^{-h}-1) (m_0 + D/2)
//   heun (reference "taylor"):        x_t = (sigma_t/sigma_s) x_s - alpha_t (e^{-h}-1) m_0 + alpha_t ((e^{-h}-1)/h + 1) D
// The first step is DPM-Solver++(1) (= ddim). No lower_order_final. Order 2, 1 NFE, history 1
// (measured 2.00-2.02 single Gaussian, 1.99 gmm8_2d; tests/test_exponential.cpp).
#include <utility>

#include "solvers/exponential/common.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {
namespace {

class Dpmpp2m final : public Solver {
 public:
  explicit Dpmpp2m(bool heun) : heun_(heun) {}
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    expint::cache_grid(m.schedule(), g, pts_);
    m0_.resize(m.dim(), n);
    m1_.resize(m.dim(), n);
    eps_.resize(m.dim(), n);
    last_ = -2;
  }

  void step(Model& m, const Grid&, int i, MatRef X) override {
    const auto& s = pts_[i];
    const auto& t = pts_[i + 1];
    const double h = t.ell - s.ell;
    std::swap(m0_, m1_);  // previous prediction -> m1 (O(1), no allocation)
    m.predict(X, s.tp, m0_, eps_);
    const bool warm = last_ == i - 1;  // m1 holds the prediction at grid point i - 1
    last_ = i;
    const double c = t.alpha() * std::expm1(-h);
    X = (t.sigma() / s.sigma()) * X - c * m0_;
    if (!warm) return;  // DPM-Solver++(1)
    const double r = (s.ell - pts_[i - 1].ell) / h;
    if (heun_)
      X += (t.alpha() * h * expint::phi2(-h) / r) * (m0_ - m1_);  // (e^{-h}-1)/h + 1 = h phi_2(-h)
    else
      X -= (0.5 * c / r) * (m0_ - m1_);
  }

 private:
  bool heun_;
  SolverTraits tr_{.name = "dpmpp_2m", .family = "exponential", .order = 2, .evals_per_step = 1, .history = 1};
  std::vector<expint::Point> pts_;
  MatrixXd m0_, m1_, eps_;
  int last_ = -2;
};

}  // namespace

std::unique_ptr<Solver> make_dpmpp_2m(OptionReader& o) {
  return std::make_unique<Dpmpp2m>(o.get_choice("solver_type", "midpoint", {"midpoint", "heun"}) == "heun");
}

}  // namespace flowgauge
