#pragma once
// Per-cell measurements of the sweep runner: reference path, distribution errors, LTE profile.
#include <vector>

#include "experiments/config.hpp"
#include "results/table.hpp"
#include "solvers/brownian/noise.hpp"

namespace flowgauge {

struct ReferencePath {
  std::vector<MatrixXd> states;         // at every grid time
  std::vector<double> error_estimate;   // RMS over particles of the difference of two integrators
};

// The Brownian path of a cell's stochastic sampler over the schedule's [t_lo, t_hi], keyed by seed.
std::shared_ptr<const NoiseSource> brownian_path(const GaussianMixture& gm, const Schedule& s, std::uint64_t seed);

ReferencePath reference_path(Model& model, const Grid& grid, const MatrixXd& start, double rtol, double atol);

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
CurvatureStudy curvature_study(const Experiment& e);

}  // namespace flowgauge
