// DDIM with eta = 0 (Song, Meng & Ermon 2021, eq. 12) = DPM-Solver-1 (Lu et al. 2022, eq. 3.7)
// = DPM-Solver++(1) (Lu et al. 2022b, eq. 4.4 with k = 1); samplers.md 4.3:
//   x_t = alpha_t x0_s + sigma_t eps_s = (sigma_t/sigma_s) x_s - alpha_t (e^{-h} - 1) x0_s.
// Written in the data form (the one DPM-Solver++ multistep solvers start with). Order 1, 1 NFE
// (measured 0.99-1.00, single Gaussian, logsnr and edm grids, tests/test_exponential.cpp).
#include "solvers/exponential/common.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {
namespace {

class Ddim final : public Solver {
 public:
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    expint::cache_grid(m.schedule(), g, pts_);
    x0_.resize(m.dim(), n);
    eps_.resize(m.dim(), n);
  }

  void step(Model& m, const Grid&, int i, MatRef X) override {
    const auto& s = pts_[i];
    const auto& t = pts_[i + 1];
    const double h = t.ell - s.ell;
    m.predict(X, s.tp, x0_, eps_);
    X = (t.sigma() / s.sigma()) * X - (t.alpha() * std::expm1(-h)) * x0_;
  }

 private:
  SolverTraits tr_{.name = "ddim", .family = "exponential", .order = 1, .evals_per_step = 1, .history = 0};
  std::vector<expint::Point> pts_;
  MatrixXd x0_, eps_;
};

}  // namespace

std::unique_ptr<Solver> make_ddim(OptionReader&) { return std::make_unique<Ddim>(); }

}  // namespace flowgauge
