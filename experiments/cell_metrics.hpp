#pragma once
// Per-cell measurements of the sweep runner: reference path, distribution errors, LTE profile.
#include <vector>

#include "experiments/config.hpp"
#include "results/table.hpp"
#include "solvers/brownian/noise.hpp"
#include "solvers/reference/path_store.hpp"

namespace flowgauge {

struct ReferencePath {
  PathStore states;                     // at every grid time
  std::vector<double> error_estimate;   // RMS over particles of the difference of two integrators
};

// The Brownian path of a cell's stochastic sampler over the schedule's [t_lo, t_hi], keyed by seed.
std::shared_ptr<const NoiseSource> brownian_path(const GaussianMixture& gm, const Schedule& s, std::uint64_t seed);

// Whether `count` states the size of `start` are over reference.spill_mb (then kept in a file).
bool over_spill_limit(const Experiment& e, const MatrixXd& start, std::size_t count);

// The states go to an unlinked file in `spill_dir` (empty: kept in memory), so a running cell holds
// O(particles x d) of them whatever the step count.
ReferencePath reference_path(Model& model, const Grid& grid, const MatrixXd& start, double rtol, double atol,
                             const std::string& spill_dir = "");

// Appends distribution columns (MMD^2, mean / covariance errors, mode weights, with standard
// errors) of the final samples X against the exact distribution at the grid's last time.
void distribution_metrics(const Experiment& e, const GaussianMixture& gm, const Schedule& s, const Grid& grid,
                          const MatrixXd& X, Table& row);

// Local truncation error profile (samplers.md 6): RMS |Phi_solver(X_i^ref) - X_{i+1}^ref| per step,
// with every step started on the reference path (multistep history also from reference states).
VectorXd lte_profile(const SolverAxis& sv, Model& model, const Grid& grid, const ReferencePath& ref);

// Likelihood error (nats) of the cell's solver through the divergence-augmented PF-ODE
// (solvers/likelihood), on points drawn exactly from p_{t_lo}: columns lik_*. NaN for solvers
// without a likelihood integrator (only the Runge-Kutta family has one) or grids ending at sigma = 0.
void likelihood_metrics(const Experiment& e, const Cell& c, const GaussianMixture& gm, const Schedule& s, const Grid& grid,
                        const SolverAxis& sv, Table& row);

// Stochastic samplers (metric `strong`; NaN for deterministic solvers): on the first
// strong_particles(e) particles, the RMS over particles of |x - x_ref| at the final time against the
// same solver on the same Brownian paths with kStrongFactor x the largest step count of the plan
// (`strong`; its own error bounded by `strong_ref_floor` = RMS |x_ref - x_ref/2| against half that
// resolution), and for single-Gaussian data against the exact solution of the sampler's limiting SDE
// (traits' limit_drift / limit_noise) on that path (`strong_exact`, `strong_exact_floor`;
// stoch::linear_sde_solution on the grid kind at kStrongFactor x the largest step count). References
// are computed once per (data, schedule, solver or limit SDE, grid, seed) and shared by the cells.
inline constexpr int kStrongFactor = 16;
// min(particles, 128): the references cost 24x the largest step count per particle (~3.5 us per
// particle-step for the Brownian tree); 128 particles x d coordinates give the RMS to ~5 %.
long strong_particles(const Experiment& e);
void strong_metrics(const Experiment& e, const Cell& c, const GaussianMixture& gm, const Schedule& s, const Grid& grid,
                    const SolverAxis& sv, const MatrixXd& start, const MatrixXd& X, Table& row);

// Exact law (metric `exact_law`; single-Gaussian data and samplers affine in start point and noise,
// NaN otherwise): the output law from stoch::propagate_law_path against the true law at the grid's
// last time (`kl_exact`, `w2_exact`), and the W2 to the true marginal p_{t_i} at every grid time the
// sampler reaches (array `marginal_w2_t`, only where defined; its maximum `marginal_w2_max`).
void exact_law_metrics(const GaussianMixture& gm, const Schedule& s, const Grid& grid, const SolverAxis& sv, Table& row,
                       std::vector<std::pair<std::string, VectorXd>>& arrays);

// Order fits of the stochastic error columns for one /orders group (the cells' rows `rows`), appended
// to the group's row of `orders`: strong_{order,r2,points,fit_floor} (from `strong`, fit floor 4 x the largest strong_ref_floor),
// strong_exact_* (likewise), weak_* (from `w2_exact`, points above 1e-6). Columns only when the cells
// have them. The columns read are listed in runner.cpp (kOrderColumns).
void stochastic_order_fits(const Table& cells, const std::vector<std::size_t>& rows, Table& orders);

// Geometry of exact PF-ODE paths per (data, schedule, coordinates): a fine logsnr-grid reference
// (curvature_steps) from exact draws at t_hi, measured in each coordinate system (samplers.md 6).
struct CurvatureStudy {
  struct Profile {
    VectorXd s, kappa, speed;
  };
  struct Paths {
    std::string data, schedule;
    std::vector<MatrixXd> x;  // a few particles (2-D data only)
    std::vector<double> t;
  };
  Table table;
  std::vector<Profile> profiles;  // one per table row
  std::vector<Paths> paths;
};
// Pairs (data, schedule) run on `threads` threads; the result does not depend on how many.
CurvatureStudy curvature_study(const Experiment& e, int threads = 1);

}  // namespace flowgauge
