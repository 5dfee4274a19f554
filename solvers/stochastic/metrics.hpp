#pragma once
// Error measures for stochastic samplers (issue 6), callable by the runner:
//  - exact weak error on single-Gaussian data (closed_forms.md 5): with an affine model every sampler
//    is affine in its start point and in its injected normals, x_N = A x_0 + b + sum_i B_i xi_i, so
//    its output law is exactly N(A m_0 + b, A C_0 A^T + sum_i B_i B_i^T). propagate_law() gets A, b and
//    the B_i by running the very same solver code on 1 + d + S d probe columns: the start mean, the
//    mean plus each column of chol(C_0), and the mean plus a unit normal in one dimension of one step
//    (recorded noise, solvers/brownian/explicit_noise.hpp). No Monte Carlo noise.
//  - strong error: RMS over particles of |x(grid) - x(fine grid)| for runs sharing the Brownian paths.
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
// N(start.mean, start.cov). Requires an affine model (model.mixture().size() == 1) and a solver
// that draws one normal per grid step (every sampler in solvers/stochastic does); deterministic
// solvers work too (no noise columns). Throws InputError otherwise.
GaussianLaw propagate_law(const std::string& solver, const SolverOptions& options, Model& model, const Grid& grid,
                          const GaussianLaw& start);

double kl_divergence(const GaussianLaw& p, const GaussianLaw& q);  // KL(p || q)
double w2_distance(const GaussianLaw& p, const GaussianLaw& q);    // 2-Wasserstein distance

// sqrt(mean_j |x_j - y_j|^2) over the columns: the strong (pathwise) error of x against reference y.
double rms_distance(const ConstMatRef& x, const ConstMatRef& y);

// Strong error of `solver` on `grid` against the same solver (or `reference_solver` if given) on
// `fine`, both started at X0 and driven by `noise` (particles 0 .. n-1).
double strong_error(const std::string& solver, const SolverOptions& options, Model& model, const Grid& grid,
                    const Grid& fine, const MatrixXd& X0, std::shared_ptr<const NoiseSource> noise,
                    const std::string& reference_solver = "", const SolverOptions& reference_options = {});

}  // namespace flowgauge::stoch
