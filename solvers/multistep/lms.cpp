// Variable-step Adams-Bashforth = k-diffusion `sample_lms` (samplers.md 4.1):
//   z_{i+1} = z_i + sum_{j<q} c_ij F_{i-j},  c_ij = int_{tau_i}^{tau_{i+1}} L_j(tau) dtau,
// L_j the Lagrange basis on tau_i, ..., tau_{i-q+1}. F = dz/dtau = cx x0 + ce eps in the chosen
// coordinates (solvers/coordinates.hpp); default ve: dy/drho = eps, k-diffusion's form.
// Weights are integrated exactly (polynomial integration, common.hpp), not by quadrature.
// Options: order = 1..4 (default 4), coordinates = t | ve | fm | logsnr (default ve),
//   warmup = rk4 (default) | ramp.
// warmup = ramp is k-diffusion exactly: q = min(i + 1, order), so the first step is Euler. Its local
//   O(h^2) error is a global O(h^2) term: asymptotically order min(order, 2), declared so. Measured
//   (single Gaussian, N = 64..512): order 3 / 4 fit 2.88-3.08 / 3.72-3.84 (samplers.md 4.7: 3.82);
//   N = 512..2048 fits 2.0-4.1 depending on coordinates (exactly 2.0 in logsnr coordinates); 2.49
//   between N = 4096 and 8192 on vp-linear (tests/test_multistep.cpp).
// warmup = rk4 is the textbook Adams-Bashforth start: the first order-1 steps are classical RK4 in
//   the same coordinates (4 evaluations each), so every history value is accurate to O(h^5) and the
//   method has its full order (tests/test_convergence.cpp).
#include "solvers/coordinates.hpp"
#include "solvers/multistep/common.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {
namespace {

class Lms final : public Solver {
 public:
  Lms(int order, Coord c, bool rk4_start) : order_(order), coord_(c), rk4_start_(rk4_start) {
    tr_.name = "lms";
    tr_.family = "multistep";
    tr_.order = rk4_start ? order : std::min(order, 2);
    tr_.evals_per_step = 1;
    tr_.starts_at_prior = c != Coord::kVe && c != Coord::kLogsnr;  // z = x/alpha
    tr_.history = order - 1;
  }
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid&, Eigen::Index n) override {
    const auto d = m.dim();
    hist_.reset(order_, d, n);
    x0_.resize(d, n);
    eps_.resize(d, n);
    if (rk4_start_)
      for (auto& k : k_) k.resize(d, n);
    z_.resize(d, n);
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    const Coordinates cs{coord_, &m.schedule()};
    const TimePoint p0 = m.schedule().at(g.t[i]), p1 = m.schedule().at(g.t[i + 1]);
    const double tau0 = cs.tau(g.t[i]), tau1 = cs.tau(g.t[i + 1]);
    m.predict(X, p0, x0_, eps_);
    double cx, ce;
    cs.drift_coeffs(p0, cx, ce);
    MatrixXd& F = hist_.push(tau0);
    F = cx * x0_ + ce * eps_;
    if (rk4_start_ && hist_.size() < order_) {  // Runge-Kutta starting values
      rk4_step(m, cs, F, tau0, tau1, g.t[i], g.t[i + 1], X);
      return;
    }
    const int q = std::min(hist_.size(), order_);
    std::array<double, multistep::kMaxHistory> nodes{};
    for (int j = 0; j < q; ++j) nodes[j] = hist_.when(j);
    const std::span<const double> ns(nodes.data(), q);
    const double m0 = cs.scale(p0), m1 = cs.scale(p1);
    // x_{i+1} = m1 (x_i / m0 + sum_j c_j F_j), written in place
    X *= m1 / m0;
    for (int j = 0; j < q; ++j) X += (m1 * multistep::lagrange_integral(ns, j, tau0, tau1)) * hist_[j];
  }

 private:
  // Classical RK4 in coordinates (z, tau); k1 = F is the history value just stored.
  void rk4_step(Model& m, const Coordinates& cs, const MatrixXd& F, double tau0, double tau1, double t0, double t1,
                MatRef X) {
    const double h = tau1 - tau0, tm = cs.t_of(tau0 + 0.5 * h);
    const double m0 = cs.scale(m.schedule().at(t0));
    const MatrixXd* prev = &F;
    const double c[3] = {0.5, 0.5, 1.0};
    const double ts[3] = {tm, tm, t1};
    for (int s = 0; s < 3; ++s) {
      const TimePoint p = m.schedule().at(ts[s]);
      z_ = X / m0 + (c[s] * h) * *prev;
      z_ *= cs.scale(p);
      m.predict(z_, p, x0_, eps_);
      double cx, ce;
      cs.drift_coeffs(p, cx, ce);
      k_[s] = cx * x0_ + ce * eps_;
      prev = &k_[s];
    }
    const double m1 = cs.scale(m.schedule().at(t1));
    z_ = X / m0 + (h / 6.0) * (F + 2.0 * k_[0] + 2.0 * k_[1] + k_[2]);
    X = m1 * z_;
  }

  int order_;
  Coord coord_;
  bool rk4_start_;
  SolverTraits tr_;
  multistep::History hist_;
  MatrixXd x0_, eps_, z_;
  std::array<MatrixXd, 3> k_;
};

}  // namespace

std::unique_ptr<Solver> make_lms(OptionReader& o) {
  const int order = o.get_int("order", 4, 1, 4);
  const Coord c = parse_coord(o.get_choice("coordinates", "ve", coord_names()));
  const bool rk4 = o.get_choice("warmup", "rk4", {"rk4", "ramp"}) == "rk4";
  return std::make_unique<Lms>(order, c, rk4);
}

}  // namespace flowgauge
