#pragma once
// The sampler interface (diffrax / k-diffusion shape): a solver advances a d x N batch one grid
// step at a time; metadata is data (OrdinaryDiffEq-style traits), so tests are generated from it.
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "solvers/brownian/noise.hpp"
#include "solvers/grid.hpp"
#include "solvers/model.hpp"

namespace flowgauge {

struct SolverTraits {
  std::string name;
  std::string family = {};  // runge-kutta | multistep | exponential | stochastic
  double order = 1;        // declared global order (as measured here; see each file's comment)
  int evals_per_step = 1;  // model evaluations per (non-final) step
  int history = 0;         // past evaluations kept between steps
  bool adaptive = false;   // chooses its own inner steps (order tests skip it)
  bool stochastic = false; // injects noise
  // Stochastic samplers: the reverse SDE the sampler converges to PATHWISE as the grid is refined, on
  // its Brownian path W in native time (solvers/brownian/noise.hpp):
  //   dx = [f x - limit_drift g^2 score] dt + limit_noise g dW   (the eta family: (1 + eta^2)/2, eta).
  // NaN: no such limit (a grid-dependent churn; noise that is not a Brownian increment). Used for the
  // strong error against the exact solution on single-Gaussian data (solvers/stochastic/metrics.hpp).
  double limit_drift = std::numeric_limits<double>::quiet_NaN();
  double limit_noise = std::numeric_limits<double>::quiet_NaN();
  // Can start where alpha = 0 (fm-linear's t = 1, the exact prior): false for methods that step in
  // rho = sigma/alpha, use f = alpha'/alpha or need inner logSNR stages there (sample() refuses).
  bool starts_at_prior = true;
};

// Solver options as given by the user (TOML or --option key=value), read with OptionReader.
using SolverOptions = std::map<std::string, std::string>;

class OptionReader {
 public:
  OptionReader(std::string solver, const SolverOptions& given) : solver_(std::move(solver)), given_(given) {}
  double get_double(const std::string& name, double def);
  int get_int(const std::string& name, int def, int lo, int hi);
  std::string get_choice(const std::string& name, const std::string& def, const std::vector<std::string>& choices);
  void finish() const;  // unknown option -> InputError with a suggestion
  const std::string& solver() const { return solver_; }

 private:
  std::string solver_;
  const SolverOptions& given_;
  std::vector<std::string> used_;
};

class Solver {
 public:
  virtual ~Solver() = default;
  virtual const SolverTraits& traits() const = 0;
  // Called once per run before the first step: allocate all workspace here, never in step().
  virtual void start(Model& model, const Grid& grid, Eigen::Index n) = 0;
  // Advance X in place from grid.t[i] to grid.t[i + 1].
  virtual void step(Model& model, const Grid& grid, int i, MatRef X) = 0;
  // Advance from grid.t[i] over one or more grid intervals; returns how many (default: one step).
  // Solvers that group intervals (dpm_solver_fast) override this.
  virtual int advance(Model& model, const Grid& grid, int i, MatRef X) {
    step(model, grid, i, X);
    return 1;
  }
  // Options as used (defaults filled in), for provenance.
  const SolverOptions& options() const { return options_; }
  std::string describe() const;

  // Noise hook (solvers/brownian/noise.hpp): the Brownian paths driving the batch's particles,
  // column j of X being particle first_particle + j of the run. Deterministic solvers ignore it;
  // a stochastic solver run without one throws InputError (sample() checks before the first step).
  void set_noise(std::shared_ptr<const NoiseSource> noise, std::int64_t first_particle = 0) {
    noise_ = std::move(noise);
    first_particle_ = first_particle;
  }
  bool has_noise() const { return noise_ != nullptr; }
  // A fresh solver of the same kind and options, driven by the same noise paths with its column 0
  // being particle first_particle() + offset of this one (for running column blocks apart).
  std::unique_ptr<Solver> clone(std::int64_t offset = 0) const;

 protected:
  // The noise source (throws InputError naming the solver if none was set), and this batch's offset.
  const NoiseSource& noise() const;
  std::int64_t first_particle() const { return first_particle_; }
  SolverOptions options_;
  std::shared_ptr<const NoiseSource> noise_;
  std::int64_t first_particle_ = 0;
  friend std::unique_ptr<Solver> make_solver(const std::string&, const SolverOptions&);
};

// Registry (solvers/solvers.def): one line per solver.
std::unique_ptr<Solver> make_solver(const std::string& name, const SolverOptions& options = {});
std::vector<std::string> solver_names();

struct SampleResult {
  long nfe = 0;
  std::vector<MatrixXd> trajectory;  // X at every grid time reached, when asked
  std::vector<int> reached;          // grid indices of the trajectory entries
};

// Runs a whole grid. The final step of a grid that ends at sigma = 0 returns the x0-prediction at
// the previous time (one evaluation), for every solver: EDM Algorithm 2 / k-diffusion convention.
// `observe(i, X)` (optional) sees the state at every grid index reached, starting with i = 0.
using StepObserver = std::function<void(int grid_index, const ConstMatRef& X)>;
SampleResult sample(Solver& solver, Model& model, const Grid& grid, MatRef X, bool keep_trajectory = false,
                    const StepObserver& observe = {});

}  // namespace flowgauge
