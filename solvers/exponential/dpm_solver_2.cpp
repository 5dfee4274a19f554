// DPM-Solver-2, singlestep, noise prediction (Lu et al. 2022, arXiv 2206.00927, Algorithm 1 /
// Algorithm 4 with r1 = 1/2; reference singlestep_dpm_solver_second_update; samplers.md 4.3).
// The inner time is s1 = t(ell_s + h/2) through Schedule::t_of_lambda.
// Option solver_type = dpmsolver (default) | taylor. Order 2, 2 NFE per step (measured 2.00-2.01,
// single Gaussian, logsnr and edm grids, both solver types; tests/test_exponential.cpp).
#include "solvers/exponential/common.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {
namespace {

class DpmSolver2 final : public Solver {
 public:
  explicit DpmSolver2(bool taylor) : taylor_(taylor) {}
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    expint::cache_grid(m.schedule(), g, pts_);
    k_.resize(m.dim(), n);
  }

  void step(Model& m, const Grid&, int i, MatRef X) override {
    const auto& s = pts_[i];
    const auto& t = pts_[i + 1];
    const auto s1 = expint::point_at_ell(m.schedule(), s.ell + kR1 * (t.ell - s.ell));
    k_.eval0(m, X, s);
    k_.eval1(m, X, s, s1);
    k_.second(X, X, s, s1, t, taylor_);
  }

 private:
  static constexpr double kR1 = 0.5;
  bool taylor_;
  SolverTraits tr_{.name = "dpm_solver_2", .family = "exponential", .order = 2, .evals_per_step = 2, .history = 0, .starts_at_prior = false};
  std::vector<expint::Point> pts_;
  expint::NoiseSinglestep k_;
};

}  // namespace

std::unique_ptr<Solver> make_dpm_solver_2(OptionReader& o) {
  return std::make_unique<DpmSolver2>(o.get_choice("solver_type", "dpmsolver", {"dpmsolver", "taylor"}) == "taylor");
}

}  // namespace flowgauge
