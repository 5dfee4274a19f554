// Exponential integrators (solvers/exponential): equivalences to rounding, schedule invariance,
// measured convergence orders on exact single-Gaussian flows, NFE counts (samplers.md 4.3, 7).
#include <gtest/gtest.h>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "analytics/errors.hpp"
#include "analytics/gaussian_flow.hpp"
#include "fixtures.hpp"
#include "solvers/model.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {
namespace {

using testing::gmm8_2d;
using testing::single_gaussian;

struct Run {
  MatrixXd X;
  long nfe;
  std::vector<int> reached;
};

Run run(const std::string& solver, const SolverOptions& opt, Model& m, const Grid& g, const MatrixXd& X0) {
  auto s = make_solver(solver, opt);
  Run r{X0, 0, {}};
  auto res = sample(*s, m, g, r.X, true);
  r.nfe = res.nfe;
  r.reached = res.reached;
  return r;
}

double rel_dev(const MatrixXd& a, const MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff();
}

MatrixXd start_points(const GaussianMixture& gm, const Schedule& s, int n, unsigned seed) {
  return gm.sample(s.alpha(s.t_hi()), s.sigma(s.t_hi()), seed, n);
}

GridSpec spec(const std::string& kind, int steps, FinalStep f = FinalStep::kStep) {
  GridSpec g;
  g.kind = kind;
  g.steps = steps;
  g.final_step = f;
  return g;
}

const std::vector<std::string> kSchedules = {"vp-linear", "vp-cosine", "edm", "fm-linear"};
const std::vector<std::string> kGrids = {"logsnr", "edm", "uniform"};

// samplers.md 7.2: DDIM == Euler in (y, rho) == Euler in (z, tau). Tolerance 1e-12 relative:
// the three are algebraically identical; only rounding of a dozen steps separates them.
TEST(Exponential, DdimEqualsEulerInVeAndFmCoordinates) {
  const auto gm = gmm8_2d();
  double worst = 0;
  for (const auto& sn : kSchedules) {
    const auto sch = make_schedule(sn);
    Model m(gm, *sch);
    const MatrixXd X0 = start_points(gm, *sch, 64, 11);
    for (const auto& gk : kGrids) {
      const Grid g = make_grid(*sch, spec(gk, 12));
      const auto d = run("ddim", {}, m, g, X0);
      const auto ve = run("euler", {{"coordinates", "ve"}}, m, g, X0);
      const auto fm = run("euler", {{"coordinates", "fm"}}, m, g, X0);
      const double e1 = rel_dev(ve.X, d.X), e2 = rel_dev(fm.X, d.X);
      worst = std::max({worst, e1, e2});
      EXPECT_LT(e1, 1e-12) << sn << " / " << gk << ": ddim vs euler(ve)";
      EXPECT_LT(e2, 1e-12) << sn << " / " << gk << ": ddim vs euler(fm)";
    }
  }
  std::cout << "[ddim == euler(ve) == euler(fm)] max relative deviation " << worst << "\n";
}

// Multistep solvers start with DPM-Solver++(1) (= ddim); dpmpp_3m's second step is 2M-midpoint.
TEST(Exponential, MultistepWarmupReducesToLowerOrder) {
  const auto gm = gmm8_2d();
  double worst = 0;
  for (const auto& sn : kSchedules) {
    const auto sch = make_schedule(sn);
    Model m(gm, *sch);
    const MatrixXd X0 = start_points(gm, *sch, 32, 12);
    for (const auto& gk : kGrids) {
      const Grid g1 = make_grid(*sch, spec(gk, 1));
      const auto d = run("ddim", {}, m, g1, X0);
      for (const SolverOptions& o : {SolverOptions{}, SolverOptions{{"solver_type", "heun"}}}) {
        const double e = rel_dev(run("dpmpp_2m", o, m, g1, X0).X, d.X);
        worst = std::max(worst, e);
        EXPECT_LT(e, 1e-12) << sn << " / " << gk;
      }
      for (const std::string v : {"published", "taylor"}) {
        const double e = rel_dev(run("dpmpp_3m", {{"variant", v}}, m, g1, X0).X, d.X);
        worst = std::max(worst, e);
        EXPECT_LT(e, 1e-12) << sn << " / " << gk;
      }
      const Grid g2 = make_grid(*sch, spec(gk, 2));
      const double e2 = rel_dev(run("dpmpp_3m", {}, m, g2, X0).X, run("dpmpp_2m", {}, m, g2, X0).X);
      worst = std::max(worst, e2);
      EXPECT_LT(e2, 1e-12) << sn << " / " << gk << ": 3m warm-up step 2 is 2m";
      // From the third step on the variants differ (the D2 weight); guard against a no-op option.
      const Grid g4 = make_grid(*sch, spec(gk, 4));
      EXPECT_GT(rel_dev(run("dpmpp_3m", {{"variant", "taylor"}}, m, g4, X0).X, run("dpmpp_3m", {}, m, g4, X0).X), 1e-8);
    }
  }
  std::cout << "[multistep warm-up == lower order] max relative deviation " << worst << "\n";
}

// Point-mass data: eps-hat (and x0-hat) are constant along the exact flow, so every exponential
// integrator is exact (the linear part is integrated exactly) and all equal ddim.
TEST(Exponential, PointMassDataIsIntegratedExactly) {
  Eigen::VectorXd mu(2);
  mu << 0.3, -1.2;
  const GaussianMixture gm({Component{1.0, mu, Eigen::MatrixXd::Zero(2, 2)}}, "point_mass");
  const std::vector<std::pair<std::string, SolverOptions>> solvers = {
      {"ddim", {}},         {"dpm_solver_2", {}}, {"dpm_solver_2", {{"solver_type", "taylor"}}},
      {"dpm_solver_3", {}}, {"dpmpp_2s", {}},     {"dpmpp_2m", {}},
      {"dpmpp_3m", {}},     {"dpmpp_3m", {{"variant", "taylor"}}},
      {"dpm_solver_fast", {}}, {"dpm_solver_adaptive", {}}};
  double worst = 0;
  for (const auto& sn : kSchedules) {
    const auto sch = make_schedule(sn);
    Model m(gm, *sch);
    Eigen::MatrixXd X0 = Eigen::MatrixXd::Random(2, 16) * sch->sigma(sch->t_hi());
    X0.colwise() += sch->alpha(sch->t_hi()) * mu;
    const double a0 = sch->alpha(sch->t_hi()), s0 = sch->sigma(sch->t_hi());
    const double a1 = sch->alpha(sch->t_lo()), s1 = sch->sigma(sch->t_lo());
    Eigen::MatrixXd exact = (s1 / s0) * X0;
    exact.colwise() += (a1 - s1 / s0 * a0) * mu;
    for (const auto& gk : kGrids) {
      const Grid g = make_grid(*sch, spec(gk, 9));
      for (const auto& [name, o] : solvers) {
        const double e = rel_dev(run(name, o, m, g, X0).X, exact);
        worst = std::max(worst, e);
        EXPECT_LT(e, 1e-12) << name << " on " << sn << " / " << gk;
      }
    }
  }
  std::cout << "[point-mass data, all exponential solvers exact] max relative deviation " << worst << "\n";
}

// samplers.md 7.3: on a common logSNR grid, exponential integrators give the same x/alpha for
// vp-linear and fm-linear (they only see ell, sigma/alpha ratios and x/alpha). Tolerance 1e-11:
// rounding of the two schedules' alpha, sigma and t_of_lambda. Plain Euler in t is not invariant.
TEST(Exponential, ScheduleInvarianceOnCommonLogsnrGrid) {
  const auto gm = gmm8_2d();
  const int N = 15;
  std::vector<double> lam(N + 1);
  for (int i = 0; i <= N; ++i) lam[i] = -8.0 + 16.0 * std::pow(double(i) / N, 1.4);  // graded: r != 1
  struct Side {
    std::unique_ptr<Schedule> sch;
    Grid g;
  };
  auto side = [&](const std::string& name) {
    auto probe = make_schedule(name);
    std::vector<double> t;
    for (double l : lam) t.push_back(probe->t_of_lambda(l));
    auto sch = make_schedule(name, {{"t_lo", t.back()}, {"t_hi", t.front()}});
    GridSpec gs = spec("explicit", N);
    gs.times = t;
    Grid g = make_grid(*sch, gs);
    return Side{std::move(sch), std::move(g)};
  };
  Side vp = side("vp-linear"), fm = side("fm-linear");
  Model mvp(gm, *vp.sch), mfm(gm, *fm.sch);
  const MatrixXd Y0 = gm.sample(1.0, std::exp(4.0), 21, 32);  // x/alpha at lambda = -8 (rho = e^4)
  const double avp0 = vp.sch->alpha(vp.g.t[0]), afm0 = fm.sch->alpha(fm.g.t[0]);
  const double avp1 = vp.sch->alpha(vp.g.t[N]), afm1 = fm.sch->alpha(fm.g.t[N]);
  const std::vector<std::pair<std::string, SolverOptions>> solvers = {
      {"ddim", {}},         {"dpm_solver_2", {}}, {"dpm_solver_3", {}},
      {"dpmpp_2s", {}},     {"dpmpp_2m", {}},     {"dpmpp_2m", {{"solver_type", "heun"}}},
      {"dpmpp_3m", {}},     {"dpmpp_3m", {{"variant", "taylor"}}}, {"dpm_solver_fast", {}},
      {"euler", {{"coordinates", "ve"}}}};
  double worst = 0;
  for (const auto& [name, o] : solvers) {
    const MatrixXd yvp = run(name, o, mvp, vp.g, avp0 * Y0).X / avp1;
    const MatrixXd yfm = run(name, o, mfm, fm.g, afm0 * Y0).X / afm1;
    const double e = rel_dev(yvp, yfm);
    worst = std::max(worst, e);
    EXPECT_LT(e, 1e-11) << name;
  }
  const MatrixXd evp = run("euler", {{"coordinates", "t"}}, mvp, vp.g, avp0 * Y0).X / avp1;
  const MatrixXd efm = run("euler", {{"coordinates", "t"}}, mfm, fm.g, afm0 * Y0).X / afm1;
  const double euler_t = rel_dev(evp, efm);
  std::cout << "[schedule invariance vp-linear vs fm-linear] exponential max rel dev " << worst
            << ", euler(coordinates=t) " << euler_t << "\n";
  EXPECT_GT(euler_t, 1e-4);
}

// ---- convergence orders ------------------------------------------------------------------

struct OrderCase {
  std::string name;
  SolverOptions opt;
};

// Least-squares slope of log(err) against log(N), negated.
double fit_order(const std::vector<int>& Ns, const std::vector<double>& err) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = 0;
  for (std::size_t k = 0; k < Ns.size(); ++k) {
    const double x = std::log(double(Ns[k])), y = std::log(err[k]);
    sx += x, sy += y, sxx += x * x, sxy += x * y, ++n;
  }
  return -(n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// Relative max error at t_lo against the exact single-Gaussian flow map, per N.
std::vector<double> errors_single_gaussian(const OrderCase& c, const std::string& sched, const std::string& gk,
                                           const std::vector<int>& Ns, const ScheduleParams& sp = {}) {
  const auto gm = single_gaussian(4, 5);
  const GaussianFlow flow(gm);
  const auto sch = make_schedule(sched, sp);
  Model m(gm, *sch);
  const MatrixXd X0 = start_points(gm, *sch, 16, 3);
  MatrixXd exact = X0;
  flow.transport(exact, *sch, sch->t_hi(), sch->t_lo());
  std::vector<double> e;
  for (int N : Ns) e.push_back(rel_dev(run(c.name, c.opt, m, make_grid(*sch, spec(gk, N)), X0).X, exact));
  return e;
}

std::string label(const OrderCase& c) {
  std::string s = c.name;
  for (const auto& [k, v] : c.opt) s += " " + k + "=" + v;
  return s;
}

void report(const std::string& what, const std::vector<int>& Ns, const std::vector<double>& e, double p) {
  std::cout << std::left << std::setw(44) << what << " order " << std::fixed << std::setprecision(2) << p
            << std::defaultfloat << std::setprecision(3) << "  err:";
  for (std::size_t k = 0; k < Ns.size(); ++k) std::cout << " N=" << Ns[k] << ":" << e[k];
  std::cout << "\n" << std::setw(44) << "" << " local slopes:" << std::fixed << std::setprecision(2);
  for (std::size_t k = 1; k < Ns.size(); ++k)
    std::cout << " " << -std::log(e[k] / e[k - 1]) / std::log(double(Ns[k]) / Ns[k - 1]);
  std::cout << std::defaultfloat << "\n";
}

struct OrderCheck {
  OrderCase c;
  std::string grid;
  double t_hi;
  std::vector<int> Ns;
  double expect;  // < 0: the solver's declared order (|p - order| < 0.15); > 0: pre-asymptotic
                  // regime above the declared order, asserted as p > expect - 0.15
};

// Exact reference: single Gaussian data (d = 4), GaussianFlow maps t_hi -> t_lo exactly; relative
// max error over 16 trajectories. Every fitted range has errors between ~1e-3 and ~1e-11, far
// above rounding (~1e-15), and lies where the local slopes have settled (see DISABLED_ExploreOrders
// for the long runs behind these choices). Tolerance 0.15 on the least-squares slope.
TEST(Exponential, MeasuredOrdersOnSingleGaussian) {
  const std::vector<int> mid = {96, 192, 384, 768}, hi = {192, 384, 768, 1536}, top = {768, 1536, 3072};
  const std::vector<OrderCheck> checks = {
      {{"ddim", {}}, "logsnr", 1.0, mid, -1},
      {{"ddim", {}}, "edm", 1.0, mid, -1},
      {{"dpm_solver_2", {}}, "logsnr", 1.0, mid, -1},
      {{"dpm_solver_2", {}}, "edm", 1.0, mid, -1},
      {{"dpm_solver_2", {{"solver_type", "taylor"}}}, "logsnr", 1.0, mid, -1},
      {{"dpm_solver_3", {}}, "logsnr", 1.0, hi, -1},
      {{"dpm_solver_3", {}}, "edm", 1.0, top, -1},
      {{"dpm_solver_3", {{"solver_type", "taylor"}}}, "logsnr", 1.0, hi, -1},
      {{"dpmpp_2s", {}}, "logsnr", 1.0, mid, -1},
      {{"dpmpp_2s", {}}, "edm", 1.0, mid, -1},
      {{"dpmpp_2m", {}}, "logsnr", 1.0, mid, -1},
      {{"dpmpp_2m", {}}, "edm", 1.0, mid, -1},
      {{"dpmpp_2m", {{"solver_type", "heun"}}}, "logsnr", 1.0, mid, -1},
      {{"dpmpp_3m", {}}, "logsnr", 1.0, hi, -1},
      {{"dpmpp_3m", {}}, "edm", 1.0, {384, 768, 1536, 3072}, -1},
      // taylor variant: the order-1 warm-up step (local O(h^2)) caps the global order at 2. From
      // t_hi = 1 (ell = -5, x0-prediction nearly frozen in the first step) that term is tiny and
      // the interior third order shows until N ~ 1000; from t_hi = 0.5 it is order 2 throughout.
      {{"dpmpp_3m", {{"variant", "taylor"}}}, "logsnr", 0.5, mid, -1},
      {{"dpmpp_3m", {{"variant", "taylor"}}}, "logsnr", 1.0, {1536, 3072, 6144}, -1},
      {{"dpmpp_3m", {{"variant", "taylor"}}}, "edm", 1.0, {96, 192, 384, 768, 1536}, 3.0},  // pre-asymptotic regime
      // fast: N = 3k budgets end with orders [.., 2, 1]; the final order-1 step caps the order at 2.
      {{"dpm_solver_fast", {}}, "edm", 1.0, {384, 768, 1536, 3072}, -1},
      {{"dpm_solver_fast", {}}, "logsnr", 1.0, {96, 192, 384, 768, 1536}, 3.0},  // pre-asymptotic regime
  };
  for (const auto& k : checks) {
    const auto e = errors_single_gaussian(k.c, "vp-linear", k.grid, k.Ns, {{"t_hi", k.t_hi}});
    const double p = fit_order(k.Ns, e);
    std::ostringstream what;
    what << "single t_hi=" << k.t_hi << " " << k.grid << " " << label(k.c);
    report(what.str(), k.Ns, e, p);
    if (k.expect > 0)
      EXPECT_GT(p, k.expect - 0.15) << what.str() << " (pre-asymptotic regime)";
    else
      EXPECT_NEAR(p, make_solver(k.c.name, k.c.opt)->traits().order, 0.15) << what.str() << " (declared order)";
  }
}

// 2-D mixture (8 modes): reference = rk4 in logsnr coordinates, 6000 steps (rk4 at 6000 vs 12000
// steps differ by 2e-13 relative). Slopes over N = 192..1536, asserted with the same tolerance.
TEST(Exponential, MeasuredOrdersOnMixture) {
  const auto gm = gmm8_2d();
  const auto sch = make_schedule("vp-linear");
  Model m(gm, *sch);
  const MatrixXd X0 = start_points(gm, *sch, 64, 9);
  const MatrixXd ref = run("rk4", {{"coordinates", "logsnr"}}, m, make_grid(*sch, spec("logsnr", 6000)), X0).X;
  const std::vector<std::pair<OrderCase, double>> cases = {
      {{"dpm_solver_3", {}}, -1},
      {{"dpmpp_2m", {}}, -1},
      {{"dpmpp_3m", {}}, -1},
      {{"dpmpp_3m", {{"variant", "taylor"}}}, 3.0},  // pre-asymptotic regime (declared 2, see above)
      {{"dpm_solver_fast", {}}, 3.0},                // pre-asymptotic regime (declared 2, see above)
  };
  const std::vector<int> Ns = {192, 384, 768, 1536};
  for (const auto& [c, expect] : cases) {
    std::vector<double> e;
    for (int N : Ns) e.push_back(rel_dev(run(c.name, c.opt, m, make_grid(*sch, spec("logsnr", N)), X0).X, ref));
    const double p = fit_order(Ns, e);
    report("gmm8_2d vp-linear/logsnr " + label(c), Ns, e, p);
    EXPECT_NEAR(p, expect > 0 ? expect : make_solver(c.name, c.opt)->traits().order, 0.15) << label(c);
  }
}

// Long runs for the record (not part of the default suite):
//   ./test_exponential --gtest_also_run_disabled_tests --gtest_filter='*Explore*'
TEST(Exponential, DISABLED_ExploreOrders) {
  const std::vector<OrderCase> cases = {
      {"ddim", {}},         {"dpm_solver_2", {}}, {"dpm_solver_3", {}}, {"dpmpp_2s", {}}, {"dpmpp_2m", {}},
      {"dpmpp_3m", {}},     {"dpmpp_3m", {{"variant", "taylor"}}},     {"dpm_solver_fast", {}}};
  const std::vector<int> Ns = {24, 48, 96, 192, 384, 768, 1536, 3072};
  for (const std::string gk : {"logsnr", "edm"})
    for (const auto& c : cases) {
      const auto e = errors_single_gaussian(c, "vp-linear", gk, Ns);
      report("single/" + gk + " " + label(c), Ns, e, fit_order(Ns, e));
    }
  for (const auto& c : std::vector<OrderCase>{{"dpmpp_3m", {{"variant", "taylor"}}}, {"dpm_solver_fast", {}}}) {
    const std::vector<int> Nl = {96, 192, 384, 768, 1536, 3072, 6144};
    for (double thi : {1.0, 0.5, 0.3}) {
      const auto e = errors_single_gaussian(c, "vp-linear", "logsnr", Nl, {{"t_hi", thi}});
      report("single/logsnr t_hi=" + std::to_string(thi) + " " + label(c), Nl, e, fit_order(Nl, e));
    }
  }
  const std::vector<int> Nf = {30, 31, 32, 60, 61, 62, 120, 121, 122, 240, 241, 242, 480, 481, 482};
  const auto e = errors_single_gaussian({"dpm_solver_fast", {}}, "vp-linear", "logsnr", Nf);
  report("single/logsnr dpm_solver_fast mod 3 = 0,1,2", Nf, e, fit_order(Nf, e));
  const auto e2 = errors_single_gaussian({"dpm_solver_fast", {}}, "vp-linear", "edm", Nf);
  report("single/edm dpm_solver_fast mod 3 = 0,1,2", Nf, e2, fit_order(Nf, e2));
  const auto gm = gmm8_2d();
  const auto sch = make_schedule("vp-linear");
  Model m(gm, *sch);
  const MatrixXd X0 = start_points(gm, *sch, 64, 9);
  for (const std::string gk : {"logsnr", "edm"}) {
    const MatrixXd ref = run("rk4", {{"coordinates", "logsnr"}}, m, make_grid(*sch, spec(gk, 12000)), X0).X;
    const MatrixXd ref2 = run("rk4", {{"coordinates", "logsnr"}}, m, make_grid(*sch, spec(gk, 6000)), X0).X;
    std::cout << "[mixture reference " << gk << "] rk4 N=6000 vs 12000: " << rel_dev(ref2, ref) << "\n";
    for (const auto& c : cases) {
      std::vector<double> er;
      const std::vector<int> Nm = {24, 48, 96, 192, 384, 768, 1536};
      for (int N : Nm) er.push_back(rel_dev(run(c.name, c.opt, m, make_grid(*sch, spec(gk, N)), X0).X, ref));
      report("gmm8_2d/" + gk + " " + label(c), Nm, er, fit_order(Nm, er));
    }
  }
}

// ---- NFE ----------------------------------------------------------------------------------

TEST(Exponential, NfeCountsAsDocumented) {
  const auto gm = gmm8_2d();
  const auto sch = make_schedule("vp-linear");
  Model m(gm, *sch);
  const MatrixXd X0 = start_points(gm, *sch, 8, 4);
  const int N = 10;
  const Grid gs = make_grid(*sch, spec("logsnr", N));
  const Grid gd = make_grid(*sch, spec("edm", N, FinalStep::kDenoise));
  struct Want {
    std::string name;
    int per_step;
  };
  for (const Want& w : std::vector<Want>{{"ddim", 1}, {"dpm_solver_2", 2}, {"dpm_solver_3", 3}, {"dpmpp_2s", 2},
                                         {"dpmpp_2m", 1}, {"dpmpp_3m", 1}, {"dpm_solver_fast", 1}}) {
    EXPECT_EQ(run(w.name, {}, m, gs, X0).nfe, w.per_step * N) << w.name;
    EXPECT_EQ(run(w.name, {}, m, gd, X0).nfe, w.per_step * (N - 1) + 1) << w.name << " (denoise final)";
    if (w.name != "dpm_solver_fast") {
      EXPECT_EQ(make_solver(w.name)->traits().evals_per_step, w.per_step);
    }
  }
  // dpm_solver_fast: budget S groups as [3]*(K-2)+[2,1] (S%3==0), [3]*(K-1)+[1], [3]*(K-1)+[2].
  for (auto [S, reached] : std::vector<std::pair<int, std::vector<int>>>{
           {6, {0, 3, 5, 6}}, {7, {0, 3, 6, 7}}, {8, {0, 3, 6, 8}}, {3, {0, 2, 3}}, {1, {0, 1}}, {2, {0, 2}}}) {
    const auto r = run("dpm_solver_fast", {}, m, make_grid(*sch, spec("logsnr", S)), X0);
    EXPECT_EQ(r.reached, reached) << "S = " << S;
    EXPECT_EQ(r.nfe, S);
  }
  const auto r2 = run("dpm_solver_fast", {{"order", "2"}}, m, make_grid(*sch, spec("logsnr", 5)), X0);
  EXPECT_EQ(r2.reached, (std::vector<int>{0, 2, 4, 5}));
  // adaptive: `order` evaluations per attempt (+1 for the driver's final denoising step)
  for (int order : {2, 3}) {
    const SolverOptions o{{"order", std::to_string(order)}};
    const long a = run("dpm_solver_adaptive", o, m, make_grid(*sch, spec("logsnr", 1)), X0).nfe;
    const long b = run("dpm_solver_adaptive", o, m, gd, X0).nfe;
    EXPECT_EQ(a % order, 0);
    EXPECT_EQ((b - 1) % order, 0);
    EXPECT_GT(a, 10 * order);  // an ell-range of ~10 at h_init = 0.05 takes many steps
    std::cout << "[adaptive order " << order << "] NFE 1-step grid " << a << ", 10-step edm+denoise grid " << b << "\n";
  }
}

// Adaptive DPM-Solver: error follows the tolerance (single Gaussian, exact reference).
TEST(Exponential, AdaptiveErrorFollowsTolerance) {
  const auto gm = single_gaussian(4, 5);
  const GaussianFlow flow(gm);
  const auto sch = make_schedule("vp-linear");
  Model m(gm, *sch);
  const MatrixXd X0 = start_points(gm, *sch, 16, 3);
  MatrixXd exact = X0;
  flow.transport(exact, *sch, sch->t_hi(), sch->t_lo());
  const Grid g = make_grid(*sch, spec("logsnr", 1));
  double prev_err = 1e300;
  long prev_nfe = 0;
  for (double tol : {1e-2, 1e-4, 1e-6}) {
    const SolverOptions o{{"rtol", std::to_string(tol)}, {"atol", std::to_string(tol)}};
    const auto r = run("dpm_solver_adaptive", o, m, g, X0);
    const double e = rel_dev(r.X, exact);
    std::cout << "[adaptive 23] rtol=atol=" << tol << ": NFE " << r.nfe << ", rel error " << e << "\n";
    EXPECT_LT(e, 50 * tol);
    EXPECT_LT(e, prev_err);
    EXPECT_GT(r.nfe, prev_nfe);
    prev_err = e;
    prev_nfe = r.nfe;
  }
}

TEST(Exponential, OptionsAreChecked) {
  EXPECT_THROW(make_solver("dpmpp_3m", {{"variant", "fixed"}}), InputError);
  EXPECT_THROW(make_solver("dpmpp_2m", {{"solver_type", "taylor"}}), InputError);
  EXPECT_THROW(make_solver("ddim", {{"order", "2"}}), InputError);
  EXPECT_THROW(make_solver("dpm_solver_fast", {{"order", "4"}}), InputError);
  EXPECT_THROW(make_solver("dpm_solver_adaptive", {{"rtol", "-1"}, {"atol", "0"}}), InputError);
  for (const std::string n : {"ddim", "dpm_solver_2", "dpm_solver_3", "dpmpp_2s", "dpmpp_2m", "dpmpp_3m",
                              "dpm_solver_fast", "dpm_solver_adaptive"}) {
    const auto s = make_solver(n);
    EXPECT_EQ(s->traits().name, n);
    EXPECT_EQ(s->traits().family, "exponential");
  }
  EXPECT_TRUE(make_solver("dpm_solver_adaptive")->traits().adaptive);
}

}  // namespace
}  // namespace flowgauge
