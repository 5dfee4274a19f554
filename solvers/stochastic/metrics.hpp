#pragma once
// Error measures for stochastic samplers (issue 6), callable by the runner:
//  - exact weak error on single-Gaussian data (closed_forms.md 5): with an affine model every sampler
//    is affine in its start point and in its injected normals, x_N = A x_0 + b + sum_i B_i xi_i, so
//    its output law is exactly N(A m_0 + b, A C_0 A^T + sum_i B_i B_i^T). propagate_law() gets A, b and
//    the B_i by running the very same solver code on 1 + d + S d probe columns: the start mean, the
//    mean plus each column of chol(C_0), and the mean plus a unit normal in one dimension of one step
//    (recorded noise, solvers/brownian/explicit_noise.hpp). No Monte Carlo noise. Which noise the
//    solver reads (path times, auxiliary normals: a corrector's) is found by a first run on one column,
//    and one more probe column checks that the map IS affine (a sampler whose step size depends on the
//    state, pc's per-particle Langevin rule, is not: refused).
//  - strong error: RMS over particles of |x(grid) - x(fine grid)| for runs sharing the Brownian paths,
//    and, for single-Gaussian data, the exact solution of the limiting linear SDE on the same path.
#include <memory>
#include <string>

#include "solvers/brownian/noise.hpp"
#include "solvers/solver.hpp"

namespace flowgauge::stoch {

struct GaussianLaw {
  VectorXd mean;
  MatrixXd cov;
};

// The true marginal p_t = N(alpha mu, alpha^2 S + sigma^2 I) of single-Gaussian data.
GaussianLaw marginal_law(const GaussianMixture& single, double alpha, double sigma);

// Exact output law of `solver` (fresh instance from the registry) on `grid` when started from
// N(start.mean, start.cov). Requires an affine model (model.mixture().size() == 1) and a solver that
// is affine in its start point and noise (every sampler in solvers/stochastic except pc with its
// default per-particle step size); deterministic solvers work too (no noise columns). Throws
// InputError otherwise.
GaussianLaw propagate_law(const std::string& solver, const SolverOptions& options, Model& model, const Grid& grid,
                          const GaussianLaw& start);

// The same at every grid index the driver reaches (index[0] = 0: the start law). `affine` is false
// (and the laws meaningless) when the affinity check fails: `defect` = |F(m + v/2) - F(m) - (sum of
// the probe responses)/2| relative to the output spread, rounding level (~1e-14) for affine maps.
struct LawPath {
  std::vector<int> index;
  std::vector<GaussianLaw> laws;
  bool affine = true;
  double defect = 0;
};
LawPath propagate_law_path(const std::string& solver, const SolverOptions& options, Model& model, const Grid& grid,
                           const GaussianLaw& start);

double kl_divergence(const GaussianLaw& p, const GaussianLaw& q);  // KL(p || q)
double w2_distance(const GaussianLaw& p, const GaussianLaw& q);    // 2-Wasserstein distance

// sqrt(mean_j |x_j - y_j|^2) over the columns: the strong (pathwise) error of x against reference y.
double rms_distance(const ConstMatRef& x, const ConstMatRef& y);

// Exact solution, on the Brownian paths of `noise` (particles 0 .. n-1, W in native time t), of the
// linear reverse SDE of single-Gaussian data N(m, S = V diag(lambda) V^T)
//   dx = [f x - c g^2 score] dt + eta g dW,   score = -C_t^{-1} (x - alpha_t m),  C_t = alpha_t^2 S + sigma_t^2 I,
// from times.front() (X0) to times.back(). In y = V^T (x - alpha m) the components decouple with the
// closed-form transition Phi_k(t, u) = (alpha_t/alpha_u)^{1 - 2c} (C_k(t)/C_k(u))^c (exact in every
// step), so the only approximation is the stochastic integral over each step [u_j, u_{j+1}] of `times`:
//   int Phi_k(u_{j+1}, u) eta g(u) dW(u) ~ hbar_k (W(u_{j+1}) - W(u_j)),  hbar_k = Simpson mean of the integrand,
// i.e. its conditional expectation given W at the nodes (up to the O(Delta^5) quadrature error). The
// neglected part has RMS Delta (int (dh/du)^2 du / 12)^{1/2}: strong error O(Delta), estimated by the
// caller by halving the steps. Needs sigma > 0 or lambda > 0 along `times`.
MatrixXd linear_sde_solution(const GaussianMixture& single, const Schedule& schedule, double c, double eta,
                             const std::vector<double>& times, const MatrixXd& X0, const NoiseSource& noise);

// Strong error of `solver` on `grid` against the same solver (or `reference_solver` if given) on
// `fine`, both started at X0 and driven by `noise` (particles 0 .. n-1).
double strong_error(const std::string& solver, const SolverOptions& options, Model& model, const Grid& grid,
                    const Grid& fine, const MatrixXd& X0, std::shared_ptr<const NoiseSource> noise,
                    const std::string& reference_solver = "", const SolverOptions& reference_options = {});

}  // namespace flowgauge::stoch
