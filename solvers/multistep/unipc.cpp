// UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework", Alg. 2 / eq. 8 and
// the B(h) variants of sec. 3.3), data-prediction form, as in wl-zhao/UniPC
// `multistep_uni_pc_bh_update` (samplers.md 4.3). One step s -> t, ell = lambda/2 (half logSNR),
// h = ell_t - ell_s, hh = -h, r_k = (ell_{s_k} - ell_s)/h, D_k = (m_{s_k} - m_s)/r_k,
// B = hh (bh1) or expm1(hh) (bh2), g_j = hh phi_{j+1}(hh) j! / B, R_jk = r_k^(j-1) (r_p = 1):
//   xbar = (sigma_t/sigma_s) x_s - alpha_t expm1(-h) m_s
//   UniP-p: x~ = xbar - alpha_t B sum_{k<p} a_k D_k,  R[:p-1,:p-1] a = g[:p-1]  (p = 2: a = 1/2)
//   UniC-p: m~ = x0(x~, t), x_t = xbar - alpha_t B (sum_{k<p} c_k D_k + c_p (m~ - m_s)),
//           R c = g  (p = 1: c = 1/2)
// The corrector's evaluation m~ at the uncorrected x~ is kept as the history at t, so the
// corrector costs no extra evaluation: NFE = number of steps for every option. The corrector is
// skipped on the last step the solver takes (on a denoise grid the driver's x0 step follows and
// would otherwise re-evaluate: the repo skips it on its final step for the same reason).
// Order schedule: p_i = min(order, i + 1) (warm-up, as the repo and diffusers); with
// lower_order_final = on (default, the repo's and diffusers' default) also
// p_i <= steps the solver has left including this one, i.e. min(order, remaining) like diffusers.
// Options: order = 1..3 (predictor order p, default 2), variant = bh1 | bh2 (default bh2),
// corrector = on | off (default on), lower_order_final = on | off (default on).
// Declared order: p + 1 with the corrector, p without (samplers.md 4.3). Measured
// (tests/test_multistep.cpp, MultistepOrders; LS fit over N = 64..512 unless noted):
//   p = 1 + corrector 1.99-2.00; p = 2 + corrector 2.99-3.08 (bh2), 3.03-3.09 (bh1);
//   p = 2 without corrector 2.00-2.03 (it is DPM-Solver++(2M), checked to rounding);
//   p = 3 + corrector, lower_order_final = off: 4.00-4.01 over N = 256..2048 (3.82-4.01 over 64..512).
// Not one order, reported as measured: (a) lower_order_final = on (default) ends with a DDIM step
// (UniP-1, no corrector), a global O(h^2) term; for p = 3 it dominates from N ~ 100 on vp-linear
// (fitted 2.2-4 depending on schedule/grid), and every p is 2nd order as N -> infinity (p = 2 only
// beyond N ~ 4000). (b) Without the corrector the warm-up's first step is DDIM too, so p = 3,
// corrector off is 3 on the edm grid but ~2 on logsnr grids over N = 256..2048.
#include "solvers/multistep/common.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {
namespace {

using multistep::kMaxHistory;

class UniPc final : public Solver {
 public:
  UniPc(int order, bool bh2, bool corrector, bool lower_final)
      : p_(order), bh2_(bh2), corrector_(corrector), lower_final_(lower_final) {
    tr_ = {.name = "unipc", .family = "multistep", .order = double(corrector ? order + 1 : order),
           .evals_per_step = 1, .history = corrector ? order : order - 1};
  }
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    hist_.reset(p_ + 1, m.dim(), n);  // + 1: the corrector needs all p old entries and m~
    eps_.resize(m.dim(), n);
    xbar_.resize(m.dim(), n);
    solver_steps_ = g.denoise_final ? g.steps() - 1 : g.steps();
    fresh_ = false;
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    const Schedule& s = m.schedule();
    const TimePoint ps = s.at(g.t[i]), pt = s.at(g.t[i + 1]);
    const double ell_s = 0.5 * s.lambda(g.t[i]), ell_t = 0.5 * s.lambda(g.t[i + 1]);
    if (!fresh_) {
      MatrixXd& ms = hist_.push(ell_s);
      m.predict(X, ps, ms, eps_);
    }
    int p = std::min(p_, hist_.size());
    if (lower_final_) p = std::min(p, solver_steps_ - i);
    const bool correct = corrector_ && i < solver_steps_ - 1;

    const double h = ell_t - ell_s, hh = -h;
    const double B = bh2_ ? std::expm1(hh) : hh;
    std::array<double, kMaxHistory> r{}, gvec{}, a{}, c{};
    for (int k = 1; k < p; ++k) r[k - 1] = (hist_.when(k) - ell_s) / h;
    r[p - 1] = 1.0;
    double fact = 1.0;  // j!
    for (int j = 1; j <= p; ++j) {
      fact *= j;
      gvec[j - 1] = hh * multistep::phi(j + 1, hh) * fact / B;
    }
    auto vandermonde = [&](int n) {
      std::array<double, kMaxHistory * kMaxHistory> R{};
      for (int j = 0; j < n; ++j)
        for (int k = 0; k < n; ++k) R[j * n + k] = std::pow(r[k], j);
      return R;
    };
    if (p == 2) a[0] = 0.5;
    else if (p > 2) multistep::small_solve(p - 1, vandermonde(p - 1), gvec, a);

    xbar_ = (pt.sigma / ps.sigma) * X - (pt.alpha * std::expm1(-h)) * hist_[0];
    X = xbar_;
    // sum_k a_k D_k = sum_k (a_k / r_k) (m_k - m_0)
    for (int k = 1; k < p; ++k) X -= (pt.alpha * B * a[k - 1] / r[k - 1]) * (hist_[k] - hist_[0]);
    if (!correct) {
      fresh_ = false;
      return;
    }
    if (p == 1) c[0] = 0.5;
    else multistep::small_solve(p, vandermonde(p), gvec, c);
    MatrixXd& mt = hist_.push(ell_t);  // m~ at the predicted point; old entries shift to 1..p
    m.predict(X, pt, mt, eps_);
    X = xbar_ - (pt.alpha * B * c[p - 1]) * (hist_[0] - hist_[1]);
    for (int k = 1; k < p; ++k) X -= (pt.alpha * B * c[k - 1] / r[k - 1]) * (hist_[k + 1] - hist_[1]);
    fresh_ = true;
  }

 private:
  int p_;
  bool bh2_, corrector_, lower_final_;
  SolverTraits tr_;
  multistep::History hist_;
  MatrixXd eps_, xbar_;
  int solver_steps_ = 0;
  bool fresh_ = false;  // hist_[0] is the x0-prediction at the current (corrected) state
};

}  // namespace

std::unique_ptr<Solver> make_unipc(OptionReader& o) {
  const int order = o.get_int("order", 2, 1, 3);
  const bool bh2 = o.get_choice("variant", "bh2", {"bh1", "bh2"}) == "bh2";
  const bool corr = o.get_choice("corrector", "on", {"on", "off"}) == "on";
  const bool lof = o.get_choice("lower_order_final", "on", {"on", "off"}) == "on";
  return std::make_unique<UniPc>(order, bh2, corr, lof);
}

}  // namespace flowgauge
