// DPM-Solver++ SDE (k-diffusion sample_dpmpp_sde, r = 1/2; samplers.md 4.4), in y = x/alpha,
// rho = sigma/alpha, ell = -log rho, D(y; rho) the exact model at (1, rho). Step s -> t, h = ell_t - ell_s,
// midpoint ell_m = ell_s + h/2 (rho_m = rho_s e^{-h/2}), fac = 1/(2r) = 1:
//   (d1, u1) = ancestral split (rho_s -> rho_m, eta),  y_2 = (d1/rho_s) y + (1 - d1/rho_s) D(y; rho_s) + u1 xi_1,
//   (d2, u2) = ancestral split (rho_s -> rho_t, eta),  D_d = (1 - fac) D(y; rho_s) + fac D(y_2; rho_m),
//   y_t = (d2/rho_s) y + (1 - d2/rho_s) D_d + u2 xi_2.
// Noise: k-diffusion's BrownianTreeNoiseSampler draws both normals from ONE Brownian path (in its
// sigma): xi_1 is the normalized increment over [rho_s, rho_m], xi_2 over the whole step, so they are
// correlated. Here both come from the run's path W in native time (solvers/brownian/noise.hpp):
// xi_1 = (W(t_m) - W(t_s))/sqrt(t_s - t_m) with t_m the schedule time of ell_m, xi_2 = the step's
// normalized increment, as every sampler here. Same law per step as k-diffusion's up to the time
// variable of the path (their correlation is sqrt((rho_s - rho_m)/(rho_s - rho_t)), ours the same in t);
// a recorded array (one normal per step) cannot drive it (the midpoint is a sub-step query).
// Options: eta (default 1; k-diffusion's eta, the ancestral split's; the limit is the gamma = eta^2
// reverse SDE as for the other ancestral samplers). 2 NFE per step. Declared order 2: the weak order
// measured on single-Gaussian data, a LINEAR SDE (exact propagation, W2 slopes N = 32..512: 2.06 logsnr,
// 1.97 at eta = 0.5 on the edm grid, local 1.99 uniform; tests/test_stochastic.cpp), not established
// for non-Gaussian data. Strong order 1 expected (additive noise): measured 0.85 (rising) on logsnr
// grids N = 16..256 against euler_maruyama at 4096 uniform steps on the same path.
#include "solvers/stochastic/common.hpp"

namespace flowgauge {
namespace {

class DpmppSde final : public Solver {
 public:
  explicit DpmppSde(double eta) : eta_(eta) {
    tr_.limit_drift = 0.5 * (1.0 + eta * eta);
    tr_.limit_noise = eta;
  }
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid& g, Eigen::Index n) override {
    expint::cache_grid(m.schedule(), g, pts_);
    t_mid_.resize(g.t.size());
    for (std::size_t i = 0; i + 1 < g.t.size(); ++i)  // schedule time of the ell-midpoint (not at sigma = 0)
      t_mid_[i] = std::isfinite(pts_[i + 1].ell) ? m.schedule().t_of_lambda(pts_[i].ell + pts_[i + 1].ell) : g.t[i + 1];
    for (auto* a : {&x0_, &x02_, &eps_, &y_, &y2_, &xi_, &w0_, &wm_, &w1_}) a->resize(m.dim(), n);
    w1_at_ = std::numeric_limits<double>::quiet_NaN();
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    const auto& s = pts_[i];
    const auto& t = pts_[i + 1];
    const double rho_s = s.sigma() / s.alpha(), rho_t = t.sigma() / t.alpha();
    m.predict(X, s.tp, x0_, eps_);
    y_ = X / s.alpha();
    if (rho_t == 0.0) {  // Euler to sigma = 0 returns the prediction (k-diffusion's last step)
      X = t.alpha() * x0_;
      return;
    }
    const double rho_m = rho_s * std::exp(-0.5 * (t.ell - s.ell));
    const auto a1 = stoch::ancestral_step(rho_s, rho_m, eta_);
    y2_ = (a1.down / rho_s) * y_ + (1.0 - a1.down / rho_s) * x0_;
    const auto a2 = stoch::ancestral_step(rho_s, rho_t, eta_);
    const bool noisy = a1.up != 0.0 || a2.up != 0.0;
    if (noisy) normals(g, i);
    if (a1.up != 0.0) y2_ += a1.up * xi_;
    stoch::predict_ve(m, y2_, rho_m, x02_, eps_);
    y_ = (a2.down / rho_s) * y_ + (1.0 - a2.down / rho_s) * x02_;  // fac = 1: D_d = D(y_2; rho_m)
    if (a2.up != 0.0) {
      normal_full(g, i);
      y_ += a2.up * xi_;
    }
    X = t.alpha() * y_;
  }

 private:
  // xi_ = normalized increment over [t_i, t_mid]; keeps W(t_i) for normal_full. Path sources: W(t_i)
  // is the previous step's W(t_{i+1}) when consecutive (bitwise the same value).
  void normals(const Grid& g, int i) {
    const double ts = g.t[i], tm = t_mid_[i];
    if (ts == w1_at_) {
      std::swap(w0_, w1_);
      path_ = true;
    } else {
      path_ = noise().path_values(ts, first_particle(), w0_);
    }
    w1_at_ = std::numeric_limits<double>::quiet_NaN();
    if (path_) {
      noise().path_values(tm, first_particle(), wm_);
      xi_ = (wm_ - w0_) / std::sqrt(ts - tm);
    } else {
      noise().normal(ts, tm, first_particle(), xi_);
    }
  }
  // xi_ = normalized increment over the whole step [t_i, t_{i+1}].
  void normal_full(const Grid& g, int i) {
    const double ts = g.t[i], tt = g.t[i + 1];
    if (path_) {
      noise().path_values(tt, first_particle(), w1_);
      w1_at_ = tt;
      xi_ = (w1_ - w0_) / std::sqrt(ts - tt);
    } else {
      noise().normal(ts, tt, first_particle(), xi_);
    }
  }

  double eta_;
  bool path_ = false;
  double w1_at_ = 0;  // time at which w1_ holds W (NaN: none)
  SolverTraits tr_{.name = "dpmpp_sde", .family = "stochastic", .order = 2, .evals_per_step = 2, .history = 0,
                   .stochastic = true, .starts_at_prior = false};
  std::vector<expint::Point> pts_;
  std::vector<double> t_mid_;
  MatrixXd x0_, x02_, eps_, y_, y2_, xi_, w0_, wm_, w1_;
};

}  // namespace

std::unique_ptr<Solver> make_dpmpp_sde(OptionReader& o) {
  const double eta = o.get_double("eta", 1.0);
  if (eta < 0) throw InputError(fmt::format("solver dpmpp_sde: eta = {} must be >= 0", eta));
  return std::make_unique<DpmppSde>(eta);
}

}  // namespace flowgauge
