// Reference solutions (solvers/reference): the two Odeint integrators against each other, against
// the exact single-Gaussian flow map (closed_forms.md section 5), and RK4 against them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <unistd.h>

#include "analytics/errors.hpp"
#include "analytics/gaussian_flow.hpp"
#include "solvers/coordinates.hpp"
#include "solvers/reference/reference.hpp"
#include "solvers/solver.hpp"
#include "tests/fixtures.hpp"

namespace flowgauge {
namespace {

using testing::gmm8_2d;
using testing::single_gaussian;

struct Case {
  std::string schedule;
  ScheduleParams params;
  GridSpec grid;
};

GridSpec spec(const std::string& kind, int steps, FinalStep f = FinalStep::kStep) {
  GridSpec g;
  g.kind = kind;
  g.steps = steps;
  g.final_step = f;
  return g;
}

// vp-linear / edm (ending at sigma = 0) / fm-linear, and fm-linear from t = 1 where alpha = 0.
std::vector<Case> exact_cases() {
  return {{"vp-linear", {}, spec("logsnr", 12)},
          {"edm", {}, spec("edm", 12, FinalStep::kDenoise)},
          {"fm-linear", {}, spec("uniform", 12)},
          {"fm-linear", {{"t_hi", 1.0}}, spec("uniform", 12, FinalStep::kDenoise)}};
}

// Exact states at every grid time from the closed-form flow map.
std::vector<MatrixXd> exact_states(const GaussianFlow& flow, const Schedule& s, const Grid& g, const MatrixXd& x) {
  std::vector<MatrixXd> out;
  for (double t : g.t) {
    MatrixXd y = x;
    flow.transport(y, s.alpha(g.t[0]), s.sigma(g.t[0]), s.alpha(t), s.sigma(t));
    out.push_back(std::move(y));
  }
  return out;
}

double max_abs(const MatrixXd& a, const MatrixXd& b) { return (a - b).cwiseAbs().maxCoeff(); }

TEST(Reference, MatchesExactFlowMapOnSingleGaussian) {
  const auto gm = single_gaussian(3, 7);
  const GaussianFlow flow(gm);
  for (const auto& c : exact_cases()) {
    const auto s = make_schedule(c.schedule, c.params);
    const Grid g = make_grid(*s, c.grid);
    Model model(gm, *s);
    const MatrixXd x = gm.sample(s->alpha(g.t[0]), s->sigma(g.t[0]), 11, 64);
    const auto exact = exact_states(flow, *s, g, x);
    for (const std::string method : {"dopri5", "rkf78"}) {
      ReferenceOptions o;
      o.method = method;
      const auto r = reference_solve(model, g, x, o);
      ASSERT_EQ(r.states.size(), g.t.size());
      double worst = 0;
      for (std::size_t i = 0; i < g.t.size(); ++i) worst = std::max(worst, max_abs(r.states[i], exact[i]));
      fmt::print("{:>10} {:>8} {:>6}: max |ref - exact| over all grid times = {:.2e} ({} steps, {} rejected, nfe {})\n",
                 s->describe(), c.grid.kind, method, worst, r.steps, r.rejected, r.nfe);
      // rtol = atol = 1e-12 per step on z = x/alpha with |z| <= ~80 (edm start): the global error
      // of a tolerance-proportional controller stays within a few hundred local tolerances.
      EXPECT_LT(worst, 1e-10) << s->describe() << " " << method;
    }
  }
}

TEST(Reference, IntegratorsAgreeOnGmm8) {
  const auto gm = gmm8_2d();
  for (const auto& c : std::vector<Case>{{"vp-linear", {}, spec("logsnr", 8)},
                                         {"edm", {}, spec("edm", 8, FinalStep::kDenoise)},
                                         {"fm-linear", {}, spec("uniform", 8)}}) {
    const auto s = make_schedule(c.schedule, c.params);
    const Grid g = make_grid(*s, c.grid);
    Model model(gm, *s);
    const MatrixXd x = gm.sample(s->alpha(g.t[0]), s->sigma(g.t[0]), 5, 128);
    ReferenceOptions o;  // both integrators at the default rtol = atol = 1e-12
    const auto a = reference_solve(model, g, x, o);
    o.method = "rkf78";
    const auto b = reference_solve(model, g, x, o);
    double worst_scaled = 0;
    for (std::size_t i = 0; i < g.t.size(); ++i)
      worst_scaled = std::max(worst_scaled, max_abs(a.states[i], b.states[i]) /
                                                std::max(1.0, a.states[i].cwiseAbs().maxCoeff()));
    const double final_diff = max_abs(a.states.back(), b.states.back());
    const double final_rms = rms_error(a.states.back(), b.states.back());
    fmt::print("{:>10}: dopri5 vs rkf78: max diff / max(1, |x|) over grid times {:.2e}, final max diff {:.2e}, "
               "final rms diff {:.2e} (nfe {} / {})\n", s->describe(), worst_scaled, final_diff, final_rms, a.nfe, b.nfe);
    // The tolerance is relative to |z| (up to ~3 x 80 at the edm noise end), so the agreement is measured
    // relative to max(1, |x|): 1e-12 per step, accumulated over a few hundred steps, stays below 1e-10.
    EXPECT_LT(worst_scaled, 1e-10) << s->describe();
    // At the data end |x| = O(1): the per-particle RMS (the norm the convergence tests use) obeys the
    // same bound absolutely. The max over particles need not: on the edm grid one particle that ends
    // between two modes has a flow map that AMPLIFIES perturbations ~15x (typical: contracts ~40x), and
    // there dopri5 and rkf78 differ by ~1.2e-10 while the median particle differs by ~4e-13.
    EXPECT_LT(final_rms, 1e-10) << s->describe();
  }
}

// The error estimate |primary - partner| (partner 100x tighter) against the true error vs the exact map.
TEST(Reference, ErrorEstimateBoundsTrueError) {
  const auto gm = single_gaussian(3, 7);
  const GaussianFlow flow(gm);
  for (const auto& c : exact_cases()) {
    const auto s = make_schedule(c.schedule, c.params);
    const Grid g = make_grid(*s, c.grid);
    Model model(gm, *s);
    const MatrixXd x = gm.sample(s->alpha(g.t[0]), s->sigma(g.t[0]), 11, 64);
    const auto exact = exact_states(flow, *s, g, x);
    for (const std::string method : {"dopri5", "rkf78"}) {
      ReferenceOptions o;
      o.method = method;
      const auto p = reference_with_error(model, g, x, o);
      for (std::size_t i = 1; i < g.t.size(); ++i) {
        const double scale = std::max(1.0, exact[i].cwiseAbs().maxCoeff());
        const double true_max = max_abs(p.primary.states[i], exact[i]);
        const double true_rms = rms_error(p.primary.states[i], exact[i]);
        if (i + 1 == g.t.size())
          fmt::print("{:>10} {:>6}: final error estimate max {:.2e} rms {:.2e}; true max {:.2e} rms {:.2e}\n",
                     s->describe(), method, p.err_max[i], p.err_rms[i], true_max, true_rms);
        // est = |e_primary - e_partner| >= e_primary - e_partner, and the partner at rtol = atol = 1e-14
        // is rounding-limited: allow it 1e-12 relative to max(1, |x|) (100x its tolerance).
        EXPECT_LE(true_max, p.err_max[i] + 1e-12 * scale) << s->describe() << " " << method << " i=" << i;
        EXPECT_LE(true_rms, p.err_rms[i] + 1e-12 * scale) << s->describe() << " " << method << " i=" << i;
      }
    }
  }
}

TEST(Reference, StepsExactlyOntoGridTimes) {
  const auto gm = single_gaussian(3, 3);
  const GaussianFlow flow(gm);
  const auto s = make_schedule("vp-linear");
  const Grid g = make_grid(*s, spec("edm", 200));
  Model model(gm, *s);
  const MatrixXd x = gm.sample(s->alpha(g.t[0]), s->sigma(g.t[0]), 2, 16);
  const auto r = reference_solve(model, g, x);
  const Coordinates cs{Coord::kLogsnr, s.get()};
  for (std::size_t i = 0; i < g.t.size(); ++i) EXPECT_EQ(r.tau[i], cs.tau(g.t[i])) << i;  // bitwise: no interpolation
  // Each of the 200 intervals is closed by its own step (dense output would need far fewer steps).
  EXPECT_GE(r.steps, g.steps());
  const auto exact = exact_states(flow, *s, g, x);
  double worst = 0;
  for (std::size_t i = 0; i < g.t.size(); ++i) worst = std::max(worst, max_abs(r.states[i], exact[i]));
  // Same tolerance argument as MatchesExactFlowMapOnSingleGaussian.
  EXPECT_LT(worst, 1e-10);
}

TEST(Reference, Rk4ConvergesToReference) {
  const auto gm = gmm8_2d();
  const auto s = make_schedule("vp-linear");
  Model model(gm, *s);
  const Grid g2 = make_grid(*s, spec("logsnr", 1));
  const MatrixXd x = gm.sample(s->alpha(g2.t[0]), s->sigma(g2.t[0]), 9, 64);
  const auto p = reference_with_error(model, g2, x);
  std::vector<double> errs;
  for (int n : {64, 128, 256, 512}) {
    auto solver = make_solver("rk4");
    MatrixXd X = x;
    sample(*solver, model, make_grid(*s, spec("logsnr", n)), X);
    errs.push_back(rms_error(X, p.states().back()));
    fmt::print("rk4 N = {:4}: rms error vs reference {:.3e} (reference error estimate {:.1e})\n", n, errs.back(),
               p.err_rms.back());
  }
  for (std::size_t k = 0; k + 1 < errs.size(); ++k) {
    const double ratio = errs[k] / errs[k + 1];
    // A 4th-order method halving h divides the error by 2^4 = 16; 2^(4 -+ 0.5) brackets the pre-asymptotic drift.
    EXPECT_GT(ratio, std::pow(2.0, 3.5)) << k;
    EXPECT_LT(ratio, std::pow(2.0, 4.5)) << k;
  }
  // The finest error must still sit well above the reference floor for the ratios to mean anything.
  EXPECT_GT(errs.back(), 100 * p.err_rms.back());
}

TEST(Reference, RejectsBadInput) {
  const auto gm = gmm8_2d();
  const auto s = make_schedule("edm");
  Model model(gm, *s);
  const Grid g = make_grid(*s, spec("edm", 4));
  ReferenceOptions o;
  o.method = "rk45";
  EXPECT_THROW(reference_solve(model, g, MatrixXd::Zero(2, 3), o), InputError);
  EXPECT_THROW(reference_solve(model, g, MatrixXd::Zero(3, 3)), InputError);
}

// A sweep's reference path streamed to a PathStore on disk (the runner's route) holds bitwise the
// states of the in-memory route, and its error estimate is bitwise the difference of the two
// integrators solved separately and stored whole (the route before streaming).
TEST(Reference, SpilledPathEqualsStoredSolves) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / fmt::format("flowgauge_pathstore_{}", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto gm = gmm8_2d();
  const auto s = make_schedule("vp-linear");
  Model model(gm, *s);
  const Grid g = make_grid(*s, spec("logsnr", 40));
  const MatrixXd x = gm.sample(s->alpha(g.t[0]), s->sigma(g.t[0]), 5, 48);
  const auto mem = reference_with_error(model, g, x);
  {
    PathStore store(x.rows(), x.cols(), static_cast<int>(g.t.size()), dir.string());
    ASSERT_TRUE(store.spilled());
    const auto p = reference_with_error(model, g, x, {}, store);
    EXPECT_TRUE(p.primary.states.empty());
    EXPECT_TRUE(fs::is_empty(dir));  // unlinked: nothing left even if the process dies
    MatrixXd got;
    for (int i = 0; i < store.size(); ++i) {
      store.get(i, got);
      EXPECT_EQ(got, mem.primary.states[i]) << i;
    }
    EXPECT_EQ(p.err_rms, mem.err_rms);
    EXPECT_EQ(p.err_max, mem.err_max);
  }
  ReferenceOptions o2;
  o2.method = reference_partner(o2.method);
  o2.rtol *= o2.check_tol_factor;
  o2.atol *= o2.check_tol_factor;
  const auto a = reference_solve(model, g, x);
  const auto b = reference_solve(model, g, x, o2);
  ASSERT_EQ(a.states.size(), g.t.size());
  for (std::size_t i = 0; i < g.t.size(); ++i) {
    EXPECT_EQ(a.states[i], mem.primary.states[i]) << i;
    EXPECT_EQ(rms_error(a.states[i], b.states[i]), mem.err_rms[i]) << i;
    EXPECT_EQ((a.states[i] - b.states[i]).cwiseAbs().maxCoeff(), mem.err_max[i]) << i;
  }
  fs::remove_all(dir);
}

TEST(PathStore, StridedStatesRoundTripAndErrorsNameTheDirectory) {
  const MatrixXd big = MatrixXd::Random(5, 7);
  for (const std::string& dir : {std::string(), std::filesystem::temp_directory_path().string()}) {
    PathStore st(3, 4, 2, dir);
    st.put(0, big.block(1, 2, 3, 4));  // outer stride 5, not 3
    st.put(1, big.block(0, 0, 3, 4));
    EXPECT_EQ(st.get(0), big.block(1, 2, 3, 4)) << dir;
    EXPECT_EQ(st.get(1), big.block(0, 0, 3, 4)) << dir;
    MatrixXd buf;
    EXPECT_EQ(st.view(0, buf), big.block(1, 2, 3, 4)) << dir;
    EXPECT_EQ(&st.view(1, buf) == &buf, st.spilled()) << dir;  // no copy in memory
    EXPECT_THROW(st.put(2, big.block(0, 0, 3, 4)), std::logic_error);
    EXPECT_THROW(st.put(0, big), std::logic_error);
  }
  try {
    PathStore st(3, 4, 2, "/nonexistent/flowgauge");
    FAIL() << "no error";
  } catch (const std::runtime_error& err) {
    EXPECT_NE(std::string(err.what()).find("/nonexistent/flowgauge"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace flowgauge
