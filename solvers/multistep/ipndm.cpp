// iPNDM (Zhang & Chen 2023, DEIS `get_sampler_ipndm`; diffusers IPNDMScheduler; samplers.md 4.1):
// Adams-Bashforth weights for EQUAL steps applied to noise predictions in (y = x/alpha, rho):
//   x_{i+1} = (alpha_{i+1}/alpha_i) x_i + (sigma_{i+1} - alpha_{i+1} sigma_i / alpha_i) sum_j b_j e_{i-j}
// with b = [1], [3/2, -1/2], [23, -16, 5]/12, [55, -59, 37, -9]/24 and q = min(i + 1, 4).
// On a grid uniform in rho this is exactly lms(order=4, coordinates=ve), warm-up included
// (both ramp q = 1, 2, 3, 4); on graded grids the fixed weights are inconsistent with the
// step ratios beyond second order. Declared order 2 = the order MEASURED on the edm and logsnr
// grids (tests/test_multistep.cpp, Orders.*), as samplers.md 4.1 states.
#include "solvers/multistep/common.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {
namespace {

constexpr double kAb[4][4] = {{1.0, 0, 0, 0},
                              {1.5, -0.5, 0, 0},
                              {23.0 / 12, -16.0 / 12, 5.0 / 12, 0},
                              {55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24}};

class Ipndm final : public Solver {
 public:
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid&, Eigen::Index n) override {
    hist_.reset(4, m.dim(), n);
    x0_.resize(m.dim(), n);
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    const TimePoint p0 = m.schedule().at(g.t[i]), p1 = m.schedule().at(g.t[i + 1]);
    MatrixXd& e = hist_.push(g.t[i]);
    m.predict(X, p0, x0_, e);
    const int q = std::min(hist_.size(), 4);
    X *= p1.alpha / p0.alpha;
    const double drho = p1.sigma - p1.alpha * p0.sigma / p0.alpha;  // alpha_{i+1} (rho_{i+1} - rho_i)
    for (int j = 0; j < q; ++j) X += (drho * kAb[q - 1][j]) * hist_[j];
  }

 private:
  SolverTraits tr_{.name = "ipndm", .family = "multistep", .order = 2, .evals_per_step = 1, .history = 3, .starts_at_prior = false};
  multistep::History hist_;
  MatrixXd x0_;
};

}  // namespace

std::unique_ptr<Solver> make_ipndm(OptionReader&) { return std::make_unique<Ipndm>(); }

}  // namespace flowgauge
