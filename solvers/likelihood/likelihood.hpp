#pragma once
// Exact likelihood through the divergence-augmented PF-ODE (closed_forms.md 4 and 6, samplers.md 5).
//
// Along a PF trajectory x_t, d/dt log p_t(x_t) = -div_x u(x_t, t), div_x u = d f + 0.5 sigma^2 lambda_dot tr J_s.
//
// Coordinates (solvers/coordinates.hpp): state z = x / m(t), time tau(t), drift F = dz/dtau = cx x0 + ce eps.
// The density of z at tau is q_tau(z) = m^d p_t(m z), so along a trajectory
//     d/dtau log q_tau(z_tau) = -div_z F,        log p_t(x) = log q_tau(z) - d log m(t).
// With x0 = (x + sigma^2 s) / alpha and eps = -sigma s, grad_x x0 = (I + sigma^2 J_s) / alpha, grad_x eps = -sigma J_s,
// and div_z = m div_x, hence
//     div_z F = m [cx d / alpha + (cx sigma^2 / alpha - ce sigma) tr J_s] =: a d + b tr J_s,
//     t: (a, b) = (f, sigma^2 lambda_dot / 2)     ve: (0, -alpha sigma)
//     fm: (-m / alpha, -m^2 sigma / alpha)         logsnr: (0, sigma^2 / 2)
// (check: div_z F + d dlog m/dtau = div_x u dt/dtau). The integrators carry ell with d ell/dtau = div_z F;
// the exactly known d log m part is added in closed form (no quadrature error on it):
//     log p_{t_lo}(x_lo) = log p_{t_hi}(x_hi) + Delta,
//     Delta = int_{tau(t_lo)}^{tau(t_hi)} div_z F dtau + d log(m(t_hi) / m(t_lo))   (= int_{t_lo}^{t_hi} div_x u dt).
// Encoding integrates from t_lo up to t_hi (ell(end) = the integral); sampling with likelihood integrates from
// t_hi down to t_lo (ell(end) = minus the integral).
//
// Hutchinson: tr J_s is replaced by v^T J_s v with P probes per point, each probe held FIXED along the whole
// trajectory (as score_sde, k-diffusion and Meta flow_matching do). The x-ODE does not see the probes, so for a
// fixed-step RK method the estimate of one probe is exactly v^T A v + const with A = sum_steps h sum_s b_s b(t_s)
// J_s(x(t_s)): its variance is 2 |A|_F^2 (Gaussian) or 2 (|A|_F^2 - sum_i A_ii^2) (Rademacher), J_s symmetric.
#include <cstdint>
#include <string>
#include <vector>

#include "solvers/coordinates.hpp"
#include "solvers/grid.hpp"
#include "solvers/model.hpp"
#include "solvers/ode/tableaux.hpp"

namespace flowgauge {

enum class Direction { kEncode, kSample };  // data -> noise | noise -> data
enum class PriorKind { kExact, kGaussian };  // exact p_{t_hi} | N(0, sigma(t_hi)^2 I)
enum class DivergenceKind { kExact, kRademacher, kGaussian };

Direction parse_direction(const std::string& name);          // "encode" | "sample"
PriorKind parse_prior(const std::string& name);              // "exact" | "gaussian"
DivergenceKind parse_divergence(const std::string& name);    // "exact" | "hutchinson-rademacher" | "hutchinson-gaussian"
std::string divergence_name(DivergenceKind k);

struct DivergenceSpec {
  DivergenceKind kind = DivergenceKind::kExact;
  int probes = 1;                    // P (Hutchinson only)
  std::uint64_t seed = 0;            // probes come from CounterRng(seed, Stream::kProbe)
  std::int64_t first_particle = 0;   // column j is particle first_particle + j
};

// Probes d x (P n), probe-major (probe p of column j at column p n + j); probe p of particle q is entries
// [p d, (p + 1) d) of that particle's deviates, so it depends on (seed, particle, p) only.
MatrixXd make_probes(const DivergenceSpec& spec, int d, Eigen::Index n);

// div_z F = a d + b tr J_s in the coordinates `cs` at p (see above).
void divergence_coeffs(const Coordinates& cs, const TimePoint& p, double& a, double& b);

struct LikelihoodOptions {
  Direction direction = Direction::kEncode;
  PriorKind prior = PriorKind::kExact;
  DivergenceSpec divergence;
  // Fixed-step RK with Hutchinson only: also integrate A (d x d per point, with the RK weights) to give the
  // closed-form variance of one probe's estimate. Costs O(K d^2) per point per evaluation; for small d.
  bool closed_form_variance = false;
};

struct LikelihoodResult {
  double t_lo = 0, t_hi = 0;
  MatrixXd x_lo, x_hi;      // d x N: data-end and noise-end points (encode: x_lo is the input; sample: x_hi is)
  VectorXd logp;            // computed log p_{t_lo}(x_lo) (Hutchinson: mean over the probes)
  VectorXd logp_exact;      // closed-form log p_{t_lo}(x_lo), at the x_lo above
  VectorXd error;           // logp - logp_exact
  VectorXd log_prior;       // log prior(x_hi) as used
  VectorXd prior_mismatch;  // log N(x_hi; 0, sigma_hi^2 I) - log p_{t_hi}(x_hi), whichever prior is used
  VectorXd delta;           // int_{t_lo}^{t_hi} div_x u dt along the trajectory (mean over probes)
  MatrixXd probe_logp;      // P x N: one log p estimate per probe (Hutchinson), empty for the exact divergence
  VectorXd var_empirical;   // per point: sample variance over the probes of one probe's estimate (P >= 2), else NaN
  VectorXd var_closed;      // per point: its closed form (closed_form_variance), else NaN
  long nfe = 0;             // model evaluations of the ODE (the two end-point log-densities are not counted)
  long steps = 0, rejected = 0;
};

// Fixed-step explicit RK (tableau from ode/tableaux.hpp) on `grid` (t[0] = t_hi > ... > t[N] = t_lo; encoding walks
// it backwards), in coordinates `coord`. Stage times as the sampler's: exact grid times at c = 0, 1.
LikelihoodResult likelihood_rk(Model& model, const Grid& grid, const ButcherTableau& tableau, Coord coord,
                               const MatrixXd& x, const LikelihoodOptions& opts = {});

struct AdaptiveLikelihoodOptions {
  std::string method = "dopri5";  // dopri5 | rkf78 (Boost.Odeint controlled steppers)
  double rtol = 1e-12, atol = 1e-12;  // on the whole (d + P) x N state [z; ell]
  long max_steps = 2'000'000;
  Coord coord = Coord::kLogsnr;
};

// Adaptive reference between t_lo and t_hi: one batched (d + P) x N odeint state [z; ell].
LikelihoodResult likelihood_adaptive(Model& model, double t_lo, double t_hi, const MatrixXd& x,
                                     const AdaptiveLikelihoodOptions& ao = {}, const LikelihoodOptions& opts = {});

// Sweep metric hook (for experiments/runner.cpp): likelihood error of data points x_data (at the grid's LAST
// time, t_lo) under one integrator, encoding up to the grid's first time. `solver`: an RK method name
// (euler, heun, midpoint, rk4, rk38) on `grid` in coordinates `coord`, or "dopri5" / "rkf78" (adaptive at
// rtol = atol = `tol` between the grid's end times; its interior times are unused).
struct LikelihoodErrorSummary {
  double mean_abs = 0, max_abs = 0, mean = 0;  // over points, of logp - logp_exact (nats)
  double mean_abs_bpd = 0;                     // mean_abs / (d ln 2): bits per dimension
  double mean_prior_mismatch = 0;              // of N(0, sigma_hi^2 I) against the exact p_{t_hi} (nats)
  long nfe = 0;
};
LikelihoodErrorSummary likelihood_error(Model& model, const Grid& grid, const MatrixXd& x_data, const std::string& solver,
                                        Coord coord = Coord::kLogsnr, double tol = 1e-10, const LikelihoodOptions& opts = {});
// Same on make_grid(s, grid) with a fresh Model.
LikelihoodErrorSummary likelihood_error(const GaussianMixture& gm, const Schedule& s, const MatrixXd& x_data,
                                        const std::string& solver, const GridSpec& grid, Coord coord = Coord::kLogsnr,
                                        double tol = 1e-10, const LikelihoodOptions& opts = {});

}  // namespace flowgauge
