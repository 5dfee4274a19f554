#pragma once
// High-accuracy reference solutions of the PF-ODE (architecture.md, solvers/reference/).
//
// Boost.Odeint controlled steppers at tight tolerance integrate a whole d x N batch as ONE state
// (so every right-hand side is one batched Model::predict), in the best-conditioned coordinates:
//   * state z = x / alpha, time lambda (the `logsnr` coordinates): dz/dlambda = -(rho/2) eps;
//   * a segment that starts where alpha = 0 (lambda = -inf, e.g. fm-linear at t = 1) uses the
//     `fm` coordinates z = x/(alpha+sigma), tau = sigma/(alpha+sigma), dz/dtau = eps - x0;
//   * the final segment of a grid that ends at sigma = 0 (Grid::denoise_final) uses the `ve`
//     coordinates z = x/alpha, tau = rho = sigma/alpha, dz/drho = eps, integrated down to rho = 0.
//     For full-rank data eps = rho (S + rho^2)^{-1}(...) -> 0 smoothly, so the ODE is regular at
//     rho = 0. Rank-deficient data has no sigma = 0 reference: eps is singular there (the flow map
//     collapses onto the support), and this module then returns whatever the evaluation gives.
// The integrators step EXACTLY onto every grid time (the last step of each interval is shortened to
// end on it; no dense-output interpolation) and the state is returned at every grid time.
#include <functional>
#include <string>
#include <vector>

#include "solvers/grid.hpp"
#include "solvers/model.hpp"
#include "solvers/reference/path_store.hpp"

namespace flowgauge {

struct ReferenceOptions {
  double rtol = 1e-12;  // relative tolerance on the scaled state z
  double atol = 1e-12;  // absolute tolerance on the scaled state z
  // "dopri5" (controlled Dormand-Prince 5(4)) or "rkf78" (controlled Runge-Kutta-Fehlberg 7(8)).
  std::string method = "dopri5";
  long max_steps = 2'000'000;  // accepted + rejected steps over the whole grid; exceeded -> runtime_error
  // reference_with_error only: the partner integrator runs at rtol, atol times this factor. The global
  // error of both integrators is ~ proportional to the tolerance (measured: ~1x-10x tol), so at equal
  // tolerance their difference can UNDER-estimate the primary's error by ~2x; a 100x tighter partner
  // makes the difference the primary's error up to the partner's own (rounding-level, <~5e-13) error.
  double check_tol_factor = 1e-2;
};

struct ReferenceResult {
  std::vector<MatrixXd> states;  // x at every grid time (states[i] at grid.t[i]; states[0] = x_start); empty when streamed
  std::vector<double> tau;       // integration-time value each state was reached at (exactly the grid's)
  long nfe = 0;                  // model evaluations used
  long steps = 0;                // accepted steps
  long rejected = 0;             // rejected step attempts
};

// Solve the PF-ODE from x_start at grid.t[0] through every grid time.
ReferenceResult reference_solve(Model& model, const Grid& grid, const MatrixXd& x_start,
                                const ReferenceOptions& opts = {});
// The same, handing x at grid time i to `sink(i, x)` in order instead of storing it.
using StateSink = std::function<void(int i, const MatrixXd& x)>;
ReferenceResult reference_solve(Model& model, const Grid& grid, const MatrixXd& x_start, const ReferenceOptions& opts,
                                const StateSink& sink);

// The other integrator of the pair ("dopri5" <-> "rkf78").
std::string reference_partner(const std::string& method);

struct ReferencePair {
  ReferenceResult primary;    // opts.method
  ReferenceResult secondary;  // reference_partner(opts.method) at tolerance x check_tol_factor (states not kept)
  // Estimated error of `primary` at every grid time, from the difference of the two integrators:
  std::vector<double> err_max;  // max_{i,j} |x_a - x_b|
  std::vector<double> err_rms;  // sqrt(mean_j |x_a(:,j) - x_b(:,j)|_2^2): per-particle RMS
  const std::vector<MatrixXd>& states() const { return primary.states; }
};

// Runs both integrators. A solver's measured error must never be compared below err_max / err_rms.
ReferencePair reference_with_error(Model& model, const Grid& grid, const MatrixXd& x_start,
                                   const ReferenceOptions& opts = {});
// The same, with the primary's states put in `store` (primary.states stays empty): memory O(d x N)
// besides the store, whatever the number of grid times.
ReferencePair reference_with_error(Model& model, const Grid& grid, const MatrixXd& x_start, const ReferenceOptions& opts,
                                   PathStore& store);

// Per-particle RMS of the Euclidean error: sqrt(mean_j |A(:,j) - B(:,j)|^2).
double rms_error(const ConstMatRef& A, const ConstMatRef& B);

}  // namespace flowgauge
