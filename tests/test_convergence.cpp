// Convergence orders generated from the solver registry (architecture.md property 3): every solver
// whose traits are neither adaptive nor stochastic gets its global order fitted on
//   (a) single-Gaussian data in d = 3, against the exact flow map (closed_forms.md section 5), and
//   (b) the 2-D 8-mode mixture, against the Odeint reference (solvers/reference) and its error floor,
// each on vp-linear + logsnr grid and edm + edm grid (rho = 7, final step "step": to t_lo), and in every
// coordinate system the solver accepts (option `coordinates`, probed through the registry).
// The fit is least squares of log(RMS final error) against log(N) over the largest N whose error is
// still >= 100x the floor; it must be within 0.15 of the declared order.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <map>
#include <memory>
#include <mutex>

#include "analytics/errors.hpp"
#include "analytics/gaussian_flow.hpp"
#include "solvers/coordinates.hpp"
#include "solvers/reference/reference.hpp"
#include "solvers/solver.hpp"
#include "tests/fixtures.hpp"

namespace flowgauge {
namespace {

// |fitted - declared| allowed: the brief's bound; a clean asymptotic fit over a 4x range of N on a
// smooth problem lands within a few hundredths, so 0.15 leaves room only for mild pre-asymptotics.
constexpr double kOrderTol = 0.15;
// Points must sit this far above the error floor so the floor moves each error by <= 1%.
constexpr double kFloorMargin = 100.0;
// Rounding floor of a solver run compared in double precision: O(1) states, <= ~4000 stage sums each
// adding ~1e-16 relative rounding, plus model evaluations accurate to ~1e-15: well under 1e-13.
constexpr double kRoundingFloor = 1e-13;
// The geometric ladder of step counts (ratio sqrt 2) and the window fitted at its fine end (a 4x range).
constexpr int kNStart = 4, kWindow = 5, kMinPoints = 3;
// Largest N per declared order: low orders need large N to leave the pre-asymptotic range (Euler in
// logsnr coordinates on gmm8 sends a particle to the wrong mode at N = 256 and fits 1.3 over 256..1024,
// 1.00 from 1024 on); order 3 on the graded edm grid needs N up to 2048 (dpm_solver_3 fits 2.74 at
// N = 256..1024, 2.89 at 512..2048); high orders reach the floor margin long before their cap.
int n_cap(double order) { return order <= 1.5 ? 4096 : 2048; }

// Known, explained departures from the declared order on a specific problem. Each entry is an
// expectation in its own right (checked with the same tolerance), not a waiver.
struct KnownOrder {
  const char* solver;
  const char* coordinates;
  const char* problem;
  double order;
  const char* why;
};
constexpr KnownOrder kKnownOrders[] = {
    // Single-Gaussian data in ve form is dz/drho = rho/(s + rho^2) (z - mu) per eigendirection; for this
    // linear ODE the explicit midpoint rule's O(h^2) global error term cancels (checked independently with
    // a scalar script on uniform and edm grids, s = 0.1, 1, 2: slopes 2.97-3.13 vs Heun 1.85-2.01).
    // fm coordinates are a rescaling of ve, and t coordinates equal ve on the edm schedule.
    {"midpoint", "ve", "gauss3 vp-linear/logsnr", 3.0, "linear ve-form ODE: O(h^2) term cancels"},
    {"midpoint", "ve", "gauss3 edm/edm7", 3.0, "linear ve-form ODE: O(h^2) term cancels"},
    {"midpoint", "fm", "gauss3 vp-linear/logsnr", 3.0, "linear ve-form ODE: O(h^2) term cancels"},
    {"midpoint", "fm", "gauss3 edm/edm7", 3.0, "linear ve-form ODE: O(h^2) term cancels"},
    {"midpoint", "t", "gauss3 edm/edm7", 3.0, "t = rho on edm: same as ve"},
    // DPM-Solver-fast's published order schedule ends in a first-order step when N mod 3 != 2, which
    // makes it asymptotically order 2 (test_exponential shows 2.03 at N = 384..3072 on a relative max
    // error); in this test's N range (512..2048, tiny constant of that last step) it measures 2.94-2.99.
    {"dpm_solver_fast", "", "gauss3 vp-linear/logsnr", 3.0, "pre-asymptotic: order-1 tail step not yet visible"},
    {"dpm_solver_fast", "", "gauss3 edm/edm7", 3.0, "pre-asymptotic: order-1 tail step not yet visible"},
    {"dpm_solver_fast", "", "gmm8 vp-linear/logsnr", 3.0, "pre-asymptotic: order-1 tail step not yet visible"},
    {"dpm_solver_fast", "", "gmm8 edm/edm7", 3.0, "pre-asymptotic: order-1 tail step not yet visible"},
};

const KnownOrder* known_order(const std::string& solver, const SolverOptions& o, const std::string& problem) {
  const auto it = o.find("coordinates");
  const std::string c = it == o.end() ? "" : it->second;
  for (const auto& k : kKnownOrders)
    if (solver == k.solver && c == k.coordinates && problem == k.problem) return &k;
  return nullptr;
}

struct Problem {
  std::string label;
  bool exact;  // single Gaussian with the closed-form flow map; else gmm8_2d with the Odeint reference
  std::string schedule;
  std::string grid;
  int particles;
};

const std::vector<Problem>& problems() {
  static const std::vector<Problem> p = {
      {"gauss3 vp-linear/logsnr", true, "vp-linear", "logsnr", 64},
      {"gauss3 edm/edm7", true, "edm", "edm", 64},
      {"gmm8 vp-linear/logsnr", false, "vp-linear", "logsnr", 64},
      {"gmm8 edm/edm7", false, "edm", "edm", 64},
  };
  return p;
}

GridSpec grid_spec(const Problem& p, int steps) {
  GridSpec g;
  g.kind = p.grid;
  g.steps = steps;
  g.rho = 7.0;
  g.final_step = FinalStep::kStep;
  return g;
}

// Everything a problem shares across solvers: data, start points, final reference and its floor.
struct ProblemData {
  GaussianMixture gm;
  std::unique_ptr<Schedule> sched;
  MatrixXd x_start, x_final;
  double floor = 0;  // RMS error below which a measured error is not trusted
};

ProblemData& problem_data(const Problem& p) {
  static std::map<std::string, std::unique_ptr<ProblemData>> cache;
  static std::mutex mu;
  std::lock_guard lock(mu);
  auto& slot = cache[p.label];
  if (slot) return *slot;
  auto gm = p.exact ? testing::single_gaussian(3, 7) : testing::gmm8_2d();
  auto d = std::make_unique<ProblemData>(ProblemData{std::move(gm), make_schedule(p.schedule), {}, {}, 0});
  const Schedule& s = *d->sched;
  const double thi = s.t_hi(), tlo = s.t_lo();
  d->x_start = d->gm.sample(s.alpha(thi), s.sigma(thi), 2024, p.particles);
  if (p.exact) {
    d->x_final = d->x_start;
    GaussianFlow(d->gm).transport(d->x_final, s, thi, tlo);
    d->floor = kRoundingFloor;
  } else {
    Model model(d->gm, s);
    const Grid ends{{thi, tlo}, false};
    const auto ref = reference_with_error(model, ends, d->x_start);
    d->x_final = ref.states().back();
    d->floor = std::max(ref.err_rms.back(), kRoundingFloor);
  }
  slot = std::move(d);
  return *slot;
}

struct Fit {
  double order = NAN, r2 = NAN;
  std::vector<int> n;
  std::vector<double> err;
};

// Least squares of log err = a - q log N over the points; returns q and R^2.
Fit fit_order(const std::vector<int>& n, const std::vector<double>& err) {
  Fit f{NAN, NAN, n, err};
  const std::size_t m = n.size();
  if (m < 2) return f;
  double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
  for (std::size_t i = 0; i < m; ++i) {
    const double x = std::log(n[i]), y = std::log(err[i]);
    sx += x, sy += y, sxx += x * x, sxy += x * y, syy += y * y;
  }
  const double cxx = sxx - sx * sx / m, cxy = sxy - sx * sy / m, cyy = syy - sy * sy / m;
  const double slope = cxy / cxx;
  f.order = -slope;
  f.r2 = cyy > 0 ? cxy * cxy / (cxx * cyy) : 1.0;
  return f;
}

struct Row {
  std::string solver, variant, problem;
  double declared;
  Fit fit;
  std::string note;
};

std::vector<Row>& table() {
  static std::vector<Row> rows;
  return rows;
}

std::string format_row(const Row& r) {
  const auto& f = r.fit;
  std::string range = f.n.empty() ? "-" : fmt::format("{}..{} ({} pts)", f.n.front(), f.n.back(), f.n.size());
  std::string errs = f.err.empty() ? "-" : fmt::format("{:.1e}..{:.1e}", f.err.front(), f.err.back());
  return fmt::format("{:<14} {:<16} {:<24} {:>5.2f} {:>7.3f} {:>8.5f}  {:<18} {:<17} {}", r.solver, r.variant,
                     r.problem, r.declared, f.order, f.r2, range, errs, r.note);
}

std::string header() {
  return fmt::format("{:<14} {:<16} {:<24} {:>5} {:>7} {:>8}  {:<18} {:<17} {}", "solver", "options", "problem",
                     "expect", "fitted", "R^2", "N range", "RMS error range", "note");
}

// Solver variants to test: every accepted `coordinates` choice, else the defaults.
std::vector<SolverOptions> variants(const std::string& name) {
  std::vector<SolverOptions> v;
  for (const auto& c : coord_names()) {
    try {
      make_solver(name, {{"coordinates", c}});
      v.push_back({{"coordinates", c}});
    } catch (const InputError&) {
      // the solver has no `coordinates` option (or not this choice)
    }
  }
  if (v.empty()) v.push_back({});
  return v;
}

std::string variant_name(const SolverOptions& o) {
  std::string s;
  for (const auto& [k, v] : o) s += (s.empty() ? "" : ",") + k + "=" + v;
  return s.empty() ? "(defaults)" : s;
}

// Errors on the sqrt(2) ladder until they fall below the trusted range (or N passes the cap), then the
// fit over the last kWindow trusted points.
Fit measure(const std::string& name, const SolverOptions& opts, const Problem& p, double order, std::string& note) {
  ProblemData& d = problem_data(p);
  Model model(d.gm, *d.sched);
  const double threshold = kFloorMargin * d.floor;
  std::vector<int> ns;
  std::vector<double> es;
  int below = 0;
  for (int k = 0;; ++k) {
    const int n = static_cast<int>(std::lround(kNStart * std::pow(2.0, 0.5 * k)));
    if (n > n_cap(order)) break;
    auto solver = make_solver(name, opts);
    MatrixXd X = d.x_start;
    sample(*solver, model, make_grid(*d.sched, grid_spec(p, n)), X);
    const double e = rms_error(X, d.x_final);
    if (!std::isfinite(e)) {
      note += fmt::format("non-finite error at N={}; ", n);
      continue;
    }
    if (e < threshold) {
      if (++below >= 2) break;  // two consecutive points under the floor margin: done
      continue;
    }
    below = 0;
    ns.push_back(n);
    es.push_back(e);
  }
  if (ns.size() > static_cast<std::size_t>(kWindow)) {
    ns.erase(ns.begin(), ns.end() - kWindow);
    es.erase(es.begin(), es.end() - kWindow);
  }
  note += fmt::format("floor {:.1e}", d.floor);
  return fit_order(ns, es);
}

class Convergence : public ::testing::TestWithParam<std::string> {};

TEST_P(Convergence, FittedOrderMatchesDeclared) {
  const std::string name = GetParam();
  const auto probe = make_solver(name);
  const SolverTraits tr = probe->traits();
  if (tr.adaptive || tr.stochastic) GTEST_SKIP() << name << " is adaptive or stochastic: no fixed-grid order";
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& opts : variants(name)) {
    for (const auto& p : problems()) {
      const KnownOrder* known = known_order(name, opts, p.label);
      const double expected = known ? known->order : tr.order;
      Row row{name, variant_name(opts), p.label, expected, {}, ""};
      row.fit = measure(name, opts, p, tr.order, row.note);
      if (known) row.note += fmt::format("; expected {} not declared {}: {}", known->order, tr.order, known->why);
      fmt::print("{}\n", format_row(row));
      table().push_back(row);
      const auto& f = row.fit;
      EXPECT_GE(f.n.size(), static_cast<std::size_t>(kMinPoints))
          << name << " " << row.variant << " on " << p.label << ": too few points above " << kFloorMargin
          << "x the error floor to fit an order";
      if (f.n.size() >= static_cast<std::size_t>(kMinPoints)) {
        EXPECT_LE(std::abs(f.order - expected), kOrderTol)
            << name << " " << row.variant << " on " << p.label << ": fitted order " << f.order << " (R^2 " << f.r2
            << ", N " << f.n.front() << ".." << f.n.back() << ") vs " << (known ? "known " : "declared ") << expected;
      }
    }
  }
  fmt::print("{}: {:.2f} s\n", name,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Registry, Convergence, ::testing::ValuesIn(solver_names()), test_name);

// The whole table once more at the end (when the executable runs all solvers in one process).
class TableEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    if (table().size() < 2) return;
    fmt::print("\nFitted convergence orders (RMS final error vs N, least squares in log-log):\n{}\n", header());
    for (const auto& r : table()) fmt::print("{}\n", format_row(r));
  }
};
const auto* const kTableEnv = ::testing::AddGlobalTestEnvironment(new TableEnvironment);

}  // namespace
}  // namespace flowgauge
