// DPM-Solver-3, singlestep, noise prediction (Lu et al. 2022, arXiv 2206.00927, Algorithm 2 /
// Algorithm 5 with r1 = 1/3, r2 = 2/3; reference singlestep_dpm_solver_third_update;
// samplers.md 4.3). Inner times s1, s2 = t(ell_s + h/3), t(ell_s + 2h/3) via Schedule::t_of_lambda.
// Option solver_type = dpmsolver (default) | taylor (the reference's alternative final combination).
// Order 3, 3 NFE per step (measured: single Gaussian 3.02 logsnr N = 192..1536, 2.92 edm N = 768..3072;
// gmm8_2d 2.97; tests/test_exponential.cpp).
#include "solvers/exponential/common.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {
namespace {

class DpmSolver3 final : public Solver {
 public:
  explicit DpmSolver3(bool taylor) : taylor_(taylor) {}
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    expint::cache_grid(m.schedule(), g, pts_);
    k_.resize(m.dim(), n);
  }

  void step(Model& m, const Grid&, int i, MatRef X) override {
    const auto& s = pts_[i];
    const auto& t = pts_[i + 1];
    const double h = t.ell - s.ell;
    const auto s1 = expint::point_at_ell(m.schedule(), s.ell + kR1 * h);
    const auto s2 = expint::point_at_ell(m.schedule(), s.ell + kR2 * h);
    k_.eval0(m, X, s);
    k_.eval1(m, X, s, s1);
    k_.eval2(m, X, s, s1, s2, t);
    k_.third(X, X, s, s1, s2, t, taylor_);
  }

 private:
  static constexpr double kR1 = 1.0 / 3.0, kR2 = 2.0 / 3.0;
  bool taylor_;
  SolverTraits tr_{.name = "dpm_solver_3", .family = "exponential", .order = 3, .evals_per_step = 3, .history = 0, .starts_at_prior = false};
  std::vector<expint::Point> pts_;
  expint::NoiseSinglestep k_;
};

}  // namespace

std::unique_ptr<Solver> make_dpm_solver_3(OptionReader& o) {
  return std::make_unique<DpmSolver3>(o.get_choice("solver_type", "dpmsolver", {"dpmsolver", "taylor"}) == "taylor");
}

}  // namespace flowgauge
