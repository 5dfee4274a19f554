// Solver registry generated from solvers.def, plus the option reader and the sampling driver.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "analytics/errors.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {

#define FLOWGAUGE_SOLVER(id) std::unique_ptr<Solver> make_##id(OptionReader&);
#include "solvers/solvers.def"
#undef FLOWGAUGE_SOLVER

namespace {
struct Entry {
  const char* name;
  std::unique_ptr<Solver> (*make)(OptionReader&);
};
constexpr Entry kSolvers[] = {
#define FLOWGAUGE_SOLVER(id) {#id, &make_##id},
#include "solvers/solvers.def"
#undef FLOWGAUGE_SOLVER
};
}  // namespace

std::vector<std::string> solver_names() {
  std::vector<std::string> n;
  for (const auto& e : kSolvers) n.emplace_back(e.name);
  return n;
}

std::unique_ptr<Solver> make_solver(const std::string& name, const SolverOptions& options) {
  for (const auto& e : kSolvers) {
    if (name != e.name) continue;
    OptionReader r(name, options);
    auto s = e.make(r);
    r.finish();
    for (const auto& [k, v] : options) s->options_[k] = v;
    return s;
  }
  const auto hint = closest_match(name, solver_names());
  throw InputError(fmt::format("unknown solver '{}'{} (known: {})", name,
                               hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint),
                               fmt::join(solver_names(), ", ")));
}

std::unique_ptr<Solver> Solver::clone(std::int64_t offset) const {
  auto s = make_solver(traits().name, options_);
  s->set_noise(noise_, first_particle_ + offset);
  return s;
}

std::string Solver::describe() const {
  std::string s = traits().name;
  if (options_.empty()) return s;
  s += "(";
  bool first = true;
  for (const auto& [k, v] : options_) {
    s += fmt::format("{}{}={}", first ? "" : ", ", k, v);
    first = false;
  }
  return s + ")";
}

const NoiseSource& Solver::noise() const {
  if (!noise_)
    throw InputError(fmt::format("solver {} is stochastic and has no noise source (Solver::set_noise; "
                                 "flowgauge sample: --seed or --noise FILE)",
                                 traits().name));
  return *noise_;
}

double OptionReader::get_double(const std::string& name, double def) {
  used_.push_back(name);
  auto it = given_.find(name);
  if (it == given_.end()) return def;
  try {
    std::size_t pos = 0;
    double v = std::stod(it->second, &pos);
    if (pos == it->second.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw InputError(fmt::format("solver {}: option {} = '{}' is not a finite number", solver_, name, it->second));
}

int OptionReader::get_int(const std::string& name, int def, int lo, int hi) {
  used_.push_back(name);
  auto it = given_.find(name);
  if (it == given_.end()) return def;
  try {
    std::size_t pos = 0;
    int v = std::stoi(it->second, &pos);
    if (pos == it->second.size() && v >= lo && v <= hi) return v;
  } catch (const std::exception&) {
  }
  throw InputError(fmt::format("solver {}: option {} = '{}' must be an integer in [{}, {}]", solver_, name,
                               it->second, lo, hi));
}

std::string OptionReader::get_choice(const std::string& name, const std::string& def,
                                     const std::vector<std::string>& choices) {
  used_.push_back(name);
  auto it = given_.find(name);
  if (it == given_.end()) return def;
  if (std::find(choices.begin(), choices.end(), it->second) != choices.end()) return it->second;
  throw InputError(fmt::format("solver {}: option {} = '{}' must be one of: {}", solver_, name, it->second,
                               fmt::join(choices, ", ")));
}

void OptionReader::finish() const {
  for (const auto& [k, v] : given_) {
    if (std::find(used_.begin(), used_.end(), k) != used_.end()) continue;
    const auto hint = closest_match(k, used_);
    throw InputError(fmt::format("solver {}: unknown option '{}'{} (known: {})", solver_, k,
                                 hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint),
                                 used_.empty() ? "none" : fmt::format("{}", fmt::join(used_, ", "))));
  }
}

SampleResult sample(Solver& solver, Model& model, const Grid& grid, MatRef X, bool keep_trajectory,
                    const StepObserver& observe) {
  SampleResult r;
  const long nfe0 = model.nfe();
  const int N = grid.steps();
  if (solver.traits().stochastic && !solver.has_noise())
    throw InputError(fmt::format("solver {} is stochastic and has no noise source (Solver::set_noise; "
                                 "flowgauge sample: --seed or --noise FILE)",
                                 solver.traits().name));
  if (!solver.traits().starts_at_prior && N > 0 && !(model.schedule().alpha(grid.t[0]) > 0))
    throw InputError(fmt::format("solver {}: cannot start at t = {} where alpha = 0 (the exact prior): it steps in "
                                 "rho = sigma/alpha, f = alpha'/alpha or inner logSNR stages, all infinite there; use "
                                 "t_hi < {}, or ddim, dpmpp_2m, unipc, ddpm, or Runge-Kutta with coordinates = t or fm",
                                 solver.describe(), grid.t[0], grid.t[0]));
  solver.start(model, grid, X.cols());
  if (keep_trajectory) {
    r.trajectory.emplace_back(X);
    r.reached.push_back(0);
  }
  if (observe) observe(0, X);
  for (int i = 0; i < N;) {
    if (i == N - 1 && grid.denoise_final) {
      MatrixXd eps(X.rows(), X.cols());  // final step only: one allocation per run
      MatrixXd x0(X.rows(), X.cols());
      model.predict(X, grid.t[i], x0, eps);
      X = x0;
      i += 1;
    } else {
      i += solver.advance(model, grid, i, X);
    }
    if (keep_trajectory) {
      r.trajectory.emplace_back(X);
      r.reached.push_back(i);
    }
    if (observe) observe(i, X);
  }
  r.nfe = model.nfe() - nfe0;
  return r;
}

}  // namespace flowgauge
