// The claims ledger (claims.hpp). One small function per claim, all registered in ledger() below.
// Every figure is computed with the harness's machinery: schedules (make_schedule), the mixture's exact
// evaluation and sampling, the parameterization maps, registry solvers, the reference integrator, the
// exact law propagation of stochastic samplers, the likelihood integrator, trajectory_geometry and
// fit_order. Seed formulas are transcribed as the seed writes them (cited at each function).
#include "experiments/claims/claims.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <numbers>

#include "analytics/gaussian_flow.hpp"
#include "analytics/metrics/curvature.hpp"
#include "analytics/mixture.hpp"
#include "analytics/order_fit.hpp"
#include "analytics/parameterization.hpp"
#include "analytics/presets.hpp"
#include "analytics/random.hpp"
#include "analytics/schedule.hpp"
#include "solvers/brownian/explicit_noise.hpp"
#include "solvers/coordinates.hpp"
#include "solvers/grid.hpp"
#include "solvers/likelihood/likelihood.hpp"
#include "solvers/model.hpp"
#include "solvers/reference/reference.hpp"
#include "solvers/solver.hpp"
#include "solvers/stochastic/metrics.hpp"

namespace flowgauge::claims {

std::string verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kHolds: return "holds";
    case Verdict::kFails: return "fails";
    case Verdict::kHoldsUnderCondition: return "holds-under-condition";
  }
  return "?";
}

namespace {



const GaussianMixture& gmm8() {
  static const GaussianMixture g = mixture_preset("gmm8-2d");
  return g;
}

// Standard normals, d x n, from the harness's counter-based generator.
MatrixXd normals(int d, Eigen::Index n, std::uint64_t seed) {
  CounterRng rng(seed, Stream::kMixtureNoise);
  MatrixXd z(d, n);
  for (Eigen::Index j = 0; j < n; ++j) rng.normals(static_cast<std::uint64_t>(j), z.col(j).data(), d);
  return z;
}

// max |a - b| / max |b|.
double rel(const MatrixXd& a, const MatrixXd& b) {
  const double scale = std::max(b.cwiseAbs().maxCoeff(), 1e-300);
  return (a - b).cwiseAbs().maxCoeff() / scale;
}

const std::vector<double> kTimes = {0.1, 0.3, 0.5, 0.7, 0.9};
const std::vector<std::string> kSchedules = {"vp-linear", "fm-linear", "fm-cosine", "sub-vp", "ve"};

// ---------------------------------------------------------------------------------------------
// (1) conversions

// Round trips score -> eps, x0, v, u -> back, at every schedule and time, on gmm8 points.
Measured conv_roundtrip() {
  double worst = 0;
  for (const auto& name : kSchedules) {
    const auto s = make_schedule(name);
    for (double t : kTimes) {
      const TimePoint p = s->at(t);
      const MatrixXd x = gmm8().sample(p.alpha, p.sigma, 11, 256);
      const MatrixXd sc = gmm8().evaluate(x, p.alpha, p.sigma, kScore).score;
      const MatrixXd eps = param::eps_from_score(p, sc);
      const MatrixXd x0 = param::x0_from_score(p, x, sc);
      const MatrixXd v = param::v_from(p, x0, eps);
      const MatrixXd u = param::u_from(p, x0, eps);
      worst = std::max({worst, rel(param::score_from_eps(p, eps), sc), rel(param::score_from_x0(p, x, x0), sc),
                        rel(param::x0_from_eps(p, x, eps), x0), rel(param::eps_from_x0(p, x, x0), eps),
                        rel(param::x0_from_v(p, x, v), x0), rel(param::eps_from_v(p, x, v), eps),
                        rel(param::x0_from_u(p, x, u), x0), rel(param::eps_from_u(p, x, u), eps)});
    }
  }
  return {worst, NAN, "max relative round-trip error, 5 schedules x 5 times, gmm8"};
}

// Tweedie x0 = (x + sigma^2 s)/alpha (seed 004 proof of velocity_gaussian) against the mixture's
// posterior mean computed component-wise (kDenoiser, no division by alpha): two independent routes.
Measured conv_tweedie() {
  double worst = 0;
  for (const auto& name : kSchedules) {
    const auto s = make_schedule(name);
    for (double t : kTimes) {
      const TimePoint p = s->at(t);
      const MatrixXd x = gmm8().sample(p.alpha, p.sigma, 12, 256);
      const auto ev = gmm8().evaluate(x, p.alpha, p.sigma, kScore | kDenoiser);
      worst = std::max(worst, rel(param::x0_from_score(p, x, ev.score), ev.x0));
    }
  }
  return {worst, NAN, "max relative |Tweedie - E[x0|x]|, 5 schedules x 5 times"};
}

// ---------------------------------------------------------------------------------------------
// (2) PF-ODE velocity as each seed writes it, against the exact velocity alpha_dot x0 + sigma_dot eps
// from the model (Model::predict).

using VelocityFormula = std::function<MatrixXd(const Schedule&, const TimePoint&, const MatrixXd& x, const MatrixXd& score)>;

double velocity_error(const std::vector<std::string>& schedules, const VelocityFormula& formula) {
  double worst = 0;
  for (const auto& name : schedules) {
    const auto s = make_schedule(name);
    Model model(gmm8(), *s);
    for (double t : kTimes) {
      const TimePoint p = s->at(t);
      const MatrixXd x = gmm8().sample(p.alpha, p.sigma, 13, 256);
      MatrixXd x0(2, x.cols()), eps(2, x.cols());
      model.predict(x, p, x0, eps);
      const MatrixXd exact = param::u_from(p, x0, eps);
      const MatrixXd sc = gmm8().evaluate(x, p.alpha, p.sigma, kScore).score;
      worst = std::max(worst, rel(formula(*s, p, x, sc), exact));
    }
  }
  return worst;
}

Measured pfode_seed004() {
  // seed 004 (eq. velocity_gaussian): v_t(x) = (alpha_dot/alpha) x + sigma^2 grad log p_t(x) [alpha_dot/alpha - sigma_dot/sigma]
  const double e = velocity_error(kSchedules, [](const Schedule&, const TimePoint& p, const MatrixXd& x, const MatrixXd& s) {
    const double a = p.alpha_dot / p.alpha;
    return MatrixXd(a * x + p.sigma * p.sigma * (a - p.sigma_dot / p.sigma) * s);
  });
  return {e, NAN, "max relative velocity error, 5 schedules x 5 times"};
}

Measured pfode_seed000() {
  // seed 000 ("From Diffusion Models to Flow Matching", Flow Matching):
  //   v_t(x) = (alpha_dot/alpha) x - sigma (sigma_dot - (alpha_dot/alpha) sigma) grad log p_t(x)
  const double e = velocity_error(kSchedules, [](const Schedule&, const TimePoint& p, const MatrixXd& x, const MatrixXd& s) {
    const double a = p.alpha_dot / p.alpha;
    return MatrixXd(a * x - p.sigma * (p.sigma_dot - a * p.sigma) * s);
  });
  return {e, NAN, "max relative velocity error, 5 schedules x 5 times"};
}

Measured pfode_seed003() {
  // seed 003 (PF-ODE of the VP SDE): v_t(x) = -1/2 beta(t) x - 1/2 beta(t) grad log p_t(x),
  // beta(t) = beta_min + t (beta_max - beta_min) (continuous DDPM), evaluated on vp-linear (0.1, 20).
  const double e = velocity_error({"vp-linear"}, [](const Schedule&, const TimePoint& p, const MatrixXd& x, const MatrixXd& s) {
    const double beta = 0.1 + p.t * (20.0 - 0.1);
    return MatrixXd(-0.5 * beta * x - 0.5 * beta * s);
  });
  return {e, NAN, "max relative velocity error, vp-linear x 5 times"};
}

// seed 002 (Diffusion section): b^F_t(x) = (d log alpha/dt) x, g_t = alpha d/dt[sigma^2/alpha^2]; PF-ODE
// v = b^F - 1/2 g^2 s. d/dt(sigma^2/alpha^2) = 2 sigma (alpha sigma_dot - sigma alpha_dot) / alpha^3.
double g_seed002(const TimePoint& p) {
  return p.alpha * 2.0 * p.sigma * (p.alpha * p.sigma_dot - p.sigma * p.alpha_dot) / (p.alpha * p.alpha * p.alpha);
}

Measured pfode_seed002() {
  const double e = velocity_error(kSchedules, [](const Schedule&, const TimePoint& p, const MatrixXd& x, const MatrixXd& s) {
    const double g = g_seed002(p);
    return MatrixXd((p.alpha_dot / p.alpha) * x - 0.5 * g * g * s);
  });
  return {e, NAN, "max relative velocity error, 5 schedules x 5 times"};
}

// ---------------------------------------------------------------------------------------------
// (3) f and g^2 as each seed writes them, against Schedule::f and Schedule::g2.

double fg_error(const std::vector<std::string>& schedules, const std::function<double(const TimePoint&)>& f,
                const std::function<double(const TimePoint&)>& g2) {
  double worst = 0;
  for (const auto& name : schedules) {
    const auto s = make_schedule(name);
    for (double t : kTimes) {
      const TimePoint p = s->at(t);
      worst = std::max({worst, std::abs(f(p) - s->f(t)) / std::max(std::abs(s->f(t)), 1e-300),
                        std::abs(g2(p) - s->g2(t)) / s->g2(t)});
    }
  }
  return worst;
}

double f_dlogalpha(const TimePoint& p) { return p.alpha_dot / p.alpha; }
// d/dt (sigma/alpha)
double drho(const TimePoint& p) { return (p.sigma_dot * p.alpha - p.sigma * p.alpha_dot) / (p.alpha * p.alpha); }

Measured fg_seed000_backup() {
  // seed 000 (ruiqi backup): f = d log alpha/dt, g^2 = d sigma^2/dt - 2 (d log alpha/dt) sigma^2
  return {fg_error(kSchedules, f_dlogalpha,
                   [](const TimePoint& p) { return 2 * p.sigma * p.sigma_dot - 2 * (p.alpha_dot / p.alpha) * p.sigma * p.sigma; }),
          NAN, "max relative error of f and g^2, 5 schedules x 5 times"};
}

Measured fg_seed000_relation() {
  // seed 000 ("How to relate"): f = d_t log alpha, g = (2 alpha sigma d_t(sigma/alpha))^{1/2}
  return {fg_error(kSchedules, f_dlogalpha,
                   [](const TimePoint& p) {
                     const double g = std::sqrt(2 * p.alpha * p.sigma * drho(p));
                     return g * g;
                   }),
          NAN, "max relative error of f and g^2, 5 schedules x 5 times"};
}

Measured fg_seed000_summary() {
  // seed 000 ("To summarize"): g_t = 2 alpha_t sigma_t d_t(sigma_t/alpha_t)   (no square root)
  return {fg_error(kSchedules, f_dlogalpha,
                   [](const TimePoint& p) {
                     const double g = 2 * p.alpha * p.sigma * drho(p);
                     return g * g;
                   }),
          NAN, "max relative error of f and g^2, 5 schedules x 5 times"};
}

Measured fg_seed002() {
  // seed 002: b^F = (d log alpha/dt) x, g_t = alpha d/dt[sigma^2/alpha^2]
  return {fg_error(kSchedules, f_dlogalpha,
                   [](const TimePoint& p) {
                     const double g = g_seed002(p);
                     return g * g;
                   }),
          NAN, "max relative error of f and g^2, 5 schedules x 5 times"};
}

Measured fg_seed003() {
  // seed 003: f(x, t) = -1/2 beta(t) x, g(t) = sqrt(beta(t)) (VP), beta(t) = 0.1 + 19.9 t on vp-linear
  return {fg_error({"vp-linear"}, [](const TimePoint& p) { return -0.5 * (0.1 + 19.9 * p.t); },
                   [](const TimePoint& p) {
                     const double g = std::sqrt(0.1 + 19.9 * p.t);
                     return g * g;
                   }),
          NAN, "max relative error of f and g^2, vp-linear x 5 times"};
}

// ---------------------------------------------------------------------------------------------
// (4) DDIM vs Euler (registry solvers), gmm8 on vp-linear, 10 logSNR-uniform steps.

MatrixXd run_solver(const std::string& name, const SolverOptions& opts, const Schedule& s, const GaussianMixture& gm,
                    const Grid& g, const MatrixXd& x_start) {
  auto solver = make_solver(name, opts);
  Model model(gm, s);
  MatrixXd X = x_start;
  sample(*solver, model, g, X);
  return X;
}

double ddim_vs_euler(const std::string& coordinates) {
  const auto s = make_schedule("vp-linear");
  GridSpec spec;
  spec.kind = "logsnr";
  spec.steps = 10;
  const Grid g = make_grid(*s, spec);
  const MatrixXd x = gmm8().sample(s->alpha(g.t[0]), s->sigma(g.t[0]), 14, 256);
  const MatrixXd a = run_solver("ddim", {}, *s, gmm8(), g, x);
  const MatrixXd b = run_solver("euler", {{"coordinates", coordinates}}, *s, gmm8(), g, x);
  return rel(b, a);
}

Measured ddim_euler_fm() { return {ddim_vs_euler("fm"), NAN, "max relative |euler(fm) - ddim| after 10 steps, vp-linear"}; }
Measured ddim_euler_t() { return {ddim_vs_euler("t"), NAN, "max relative |euler(t) - ddim| after 10 steps, vp-linear"}; }

// ---------------------------------------------------------------------------------------------
// (5) Schedule invariance: vp-linear and fm-linear on a common lambda grid, mapped to y = x/alpha.

struct LambdaRun {
  std::vector<MatrixXd> y_vp, y_fm;  // y = x/alpha at every grid point
};

Grid lambda_grid(const Schedule& s, const std::vector<double>& lams) {
  GridSpec spec;
  spec.kind = "explicit";
  for (double l : lams) spec.times.push_back(s.t_of_lambda(l));
  spec.steps = static_cast<int>(lams.size()) - 1;
  return make_grid(s, spec);
}

std::vector<double> lambdas(int steps) {
  std::vector<double> l;
  for (int i = 0; i <= steps; ++i) l.push_back(-8.0 + 16.0 * i / steps);  // noisy (-8) to clean (+8)
  return l;
}

// Runs `solver` ("reference" = the adaptive reference) on both schedules from the same y at lambda = -8.
LambdaRun lambda_run(const std::string& solver, const SolverOptions& opts, int steps) {
  const auto vp = make_schedule("vp-linear");
  const auto fm = make_schedule("fm-linear");
  const auto lams = lambdas(steps);
  const Grid gv = lambda_grid(*vp, lams), gf = lambda_grid(*fm, lams);
  const double av = vp->alpha(gv.t[0]), af = fm->alpha(gf.t[0]);
  const MatrixXd xv = gmm8().sample(av, vp->sigma(gv.t[0]), 15, 128);
  const MatrixXd xf = (xv / av) * af;  // same y
  LambdaRun r;
  auto collect = [&](const Schedule& s, const Grid& g, const MatrixXd& x0, std::vector<MatrixXd>& out) {
    Model model(gmm8(), s);
    if (solver == "reference") {
      ReferenceOptions ro;
      const auto ref = reference_solve(model, g, x0, ro);
      for (std::size_t i = 0; i < ref.states.size(); ++i) out.push_back(ref.states[i] / s.alpha(g.t[i]));
    } else {
      auto sv = make_solver(solver, opts);
      MatrixXd X = x0;
      sample(*sv, model, g, X);
      out.push_back(X / s.alpha(g.t.back()));
    }
  };
  collect(*vp, gv, xv, r.y_vp);
  collect(*fm, gf, xf, r.y_fm);
  return r;
}

Measured sched_same_solution() {
  const auto r = lambda_run("reference", {}, 32);
  double worst = 0;
  for (std::size_t i = 0; i < r.y_vp.size(); ++i) worst = std::max(worst, rel(r.y_fm[i], r.y_vp[i]));
  return {worst, NAN, "max relative |y_fm - y_vp| at 33 common lambdas, reference solves (rtol 1e-12)"};
}

// Relative difference of the fixed-step errors of `solver` on the two schedules (8 common-lambda steps).
double error_difference(const std::string& solver, const SolverOptions& opts, const LambdaRun& ref, std::string& note) {
  const auto run = lambda_run(solver, opts, 8);
  const double ev = rms_error(run.y_vp.back(), ref.y_vp.back());
  const double ef = rms_error(run.y_fm.back(), ref.y_fm.back());
  note += fmt::format("{}: err_vp {:.3g}, err_fm {:.3g}; ", solver, ev, ef);
  return std::abs(ev - ef) / std::max(ev, ef);
}

Measured sched_discretization() {
  const auto ref = lambda_run("reference", {}, 8);
  std::string note = "|err_vp - err_fm| / max, 8 steps: ";
  const double euler = error_difference("euler", {{"coordinates", "t"}}, ref, note);
  const double ddim = error_difference("ddim", {}, ref, note);
  return {euler, ddim, note + "euler(t) | ddim"};
}

// ---------------------------------------------------------------------------------------------
// (6) Straightness of exact PF-ODE paths under fm-linear in fm coordinates (z, tau).

double straightness_ratio(const GaussianMixture& gm) {
  const auto s = make_schedule("fm-linear");
  GridSpec spec;
  spec.kind = "uniform";
  spec.steps = 256;
  const Grid g = make_grid(*s, spec);
  Model model(gm, *s);
  const MatrixXd x = gm.sample(s->alpha(g.t[0]), s->sigma(g.t[0]), 16, 128);
  const auto ref = reference_solve(model, g, x);
  const Coordinates cs{Coord::kFm, s.get()};
  std::vector<MatrixXd> Z, dZ;
  std::vector<double> tau;
  MatrixXd x0(gm.dim(), x.cols()), eps(gm.dim(), x.cols());
  for (std::size_t i = 0; i < ref.states.size(); ++i) {
    const TimePoint p = s->at(g.t[i]);
    model.predict(ref.states[i], p, x0, eps);
    double cx, ce;
    cs.drift_coeffs(p, cx, ce);
    Z.push_back(ref.states[i] / cs.scale(p));
    dZ.push_back(cx * x0 + ce * eps);
    tau.push_back(cs.tau(g.t[i]));
  }
  const auto geo = metrics::trajectory_geometry(Z, dZ, tau);
  return geo.straightness / geo.kinetic;
}

Measured straight_fm() {
  return {straightness_ratio(mixture_preset("point")), straightness_ratio(gmm8()),
          "straightness S / kinetic energy K, fm-linear, (z, tau), 256 steps: point mass | gmm8"};
}

// ---------------------------------------------------------------------------------------------
// (7) Loss weights relative to x-MSE, by Monte Carlo: perturb x0-predictions, convert with the
// parameterization maps, and compare E|h_hat - h|^2 / E|x0_hat - x0|^2 with the row's formula.

enum class Target { kEps, kV, kU, kScore };

double mc_weight(const Schedule& s, double t, Target target) {
  const TimePoint p = s.at(t);
  const Eigen::Index n = 4096;
  const MatrixXd x0 = gmm8().sample(1.0, 0.0, 17, n);
  const MatrixXd eps = normals(2, n, 18);
  const MatrixXd x0hat = x0 + 0.1 * normals(2, n, 19);
  const MatrixXd z = p.alpha * x0 + p.sigma * eps;
  const MatrixXd epshat = param::eps_from_x0(p, z, x0hat);
  MatrixXd hhat, h;
  switch (target) {
    case Target::kEps: hhat = epshat, h = eps; break;
    case Target::kV: hhat = param::v_from(p, x0hat, epshat), h = param::v_from(p, x0, eps); break;
    case Target::kU: hhat = param::u_from(p, x0hat, epshat), h = param::u_from(p, x0, eps); break;
    case Target::kScore: hhat = param::score_from_x0(p, z, x0hat), h = param::score_from_eps(p, eps); break;
  }
  return (hhat - h).squaredNorm() / (x0hat - x0).squaredNorm();
}

using WeightFormula = std::function<double(const TimePoint&, double lambda)>;

double weight_error(const std::vector<std::string>& schedules, Target target, const WeightFormula& w) {
  double worst = 0;
  for (const auto& name : schedules) {
    const auto s = make_schedule(name);
    for (double t : kTimes) {
      const double mc = mc_weight(*s, t, target);
      worst = std::max(worst, std::abs(w(s->at(t), s->lambda(t)) / mc - 1));
    }
  }
  return worst;
}

// seed 000 "Network output" table, rows as written (weight on ||x_hat - x||^2):
Measured loss_seed000_eps() {  // ||eps_hat - eps||^2 = e^lambda ||x_hat - x||^2
  return {weight_error({"vp-linear", "fm-linear", "fm-cosine"}, Target::kEps,
                       [](const TimePoint&, double l) { return std::exp(l); }),
          NAN, "max |row / MC - 1|, 3 schedules x 5 times"};
}
Measured loss_seed000_v() {  // ||v_hat - v||^2 = sigma_t^2 (e^{-lambda} + 1)^2 ||x_hat - x||^2
  return {weight_error({"vp-linear", "fm-cosine"}, Target::kV,
                       [](const TimePoint& p, double l) { return p.sigma * p.sigma * std::pow(std::exp(-l) + 1, 2); }),
          NAN, "max |row / MC - 1|, vp-linear, fm-cosine x 5 times"};
}
Measured loss_seed000_u() {  // ||u_hat - u||^2 = (1 + e^{lambda/2})^2 ||x_hat - x||^2, u = x - eps
  const WeightFormula row = [](const TimePoint&, double l) { return std::pow(1 + std::exp(l / 2), 2); };
  return {weight_error({"fm-linear"}, Target::kU, row), weight_error({"fm-cosine", "vp-linear"}, Target::kU, row),
          "max |row / MC - 1|: fm-linear | fm-cosine, vp-linear"};
}
// samplers.md 7.12 general forms:
Measured loss_doc_v() {  // v-MSE: (alpha^2 + sigma^2)^2 / sigma^2
  return {weight_error(kSchedules, Target::kV,
                       [](const TimePoint& p, double) {
                         const double q = p.alpha * p.alpha + p.sigma * p.sigma;
                         return q * q / (p.sigma * p.sigma);
                       }),
          NAN, "max |row / MC - 1|, 5 schedules x 5 times"};
}
Measured loss_doc_u() {  // FM velocity MSE: Delta^2 / sigma^2
  return {weight_error(kSchedules, Target::kU,
                       [](const TimePoint& p, double) { return std::pow(param::delta(p) / p.sigma, 2); }),
          NAN, "max |row / MC - 1|, 5 schedules x 5 times"};
}
Measured loss_doc_score() {  // DSM: alpha^2 / sigma^4
  return {weight_error(kSchedules, Target::kScore,
                       [](const TimePoint& p, double) { return p.alpha * p.alpha / std::pow(p.sigma, 4); }),
          NAN, "max |row / MC - 1|, 5 schedules x 5 times"};
}

// ---------------------------------------------------------------------------------------------
// (8) Effective weight per unit lambda, p(lambda) w_eps(lambda), t ~ U(0, 1): p(lambda) = 1/|lambda_dot(t(lambda))|.

double eff_weight(const Schedule& s, double lam, bool velocity) {
  const double t = s.t_of_lambda(lam);
  const TimePoint p = s.at(t);
  const double w_x = velocity ? std::pow(param::delta(p) / p.sigma, 2)
                              : std::pow(p.alpha * p.alpha + p.sigma * p.sigma, 2) / (p.sigma * p.sigma);
  return w_x / std::exp(lam) / std::abs(s.lambda_dot(t));
}

double fm_vs_vcos(const std::string& cosine) {
  const auto fm = make_schedule("fm-linear");
  const auto cs = make_schedule(cosine);
  double worst = 0;
  for (int i = 0; i <= 40; ++i) {
    const double lam = -10.0 + 0.5 * i;
    const double ratio = eff_weight(*fm, lam, true) / eff_weight(*cs, lam, false);
    worst = std::max(worst, std::abs(ratio / (std::numbers::pi / 2) - 1));
  }
  return worst;
}

Measured loss_fm_vcos() {
  return {fm_vs_vcos("fm-cosine"), fm_vs_vcos("vp-cosine"),
          "max |ratio/(pi/2) - 1| over lambda in [-10, 10]: offset-free cosine | vp-cosine s=0.008"};
}

// ---------------------------------------------------------------------------------------------
// (9) One DDPM step lambda -> lambda + dl equals a DDIM step to lambda + 2 dl plus forward renoising.

Measured ddpm_ddim_renoise() {
  const auto s = make_schedule("vp-linear");
  double worst = 0;
  for (double ts : {0.9, 0.6, 0.3}) {
    const double ls = s->lambda(ts), t = s->t_of_lambda(ls + 1.0), t2 = s->t_of_lambda(ls + 2.0);
    const MatrixXd x = gmm8().sample(s->alpha(ts), s->sigma(ts), 20, 256);
    const MatrixXd xi = normals(2, 256, 21);
    GridSpec one;
    one.kind = "explicit";
    one.steps = 1;
    one.times = {ts, t};
    const Grid g1 = make_grid(*s, one);
    one.times = {ts, t2};
    const Grid g2 = make_grid(*s, one);
    auto ddpm = make_solver("ddpm");
    ddpm->set_noise(std::make_shared<ExplicitNoise>(std::vector<double>{ts, t}, std::vector<MatrixXd>{xi}));
    Model m(gmm8(), *s);
    MatrixXd a = x;
    sample(*ddpm, m, g1, a);
    const MatrixXd b2 = run_solver("ddim", {}, *s, gmm8(), g2, x);
    // forward renoising t2 -> t: x_t = (alpha_t/alpha_t2) x_t2 + sqrt(sigma_t^2 - (alpha_t/alpha_t2)^2 sigma_t2^2) xi
    const double k = s->alpha(t) / s->alpha(t2);
    const MatrixXd b = k * b2 + std::sqrt(std::pow(s->sigma(t), 2) - std::pow(k * s->sigma(t2), 2)) * xi;
    worst = std::max(worst, rel(b, a));
  }
  return {worst, NAN, "max relative |ddim(2 dl) + renoise - ddpm(dl)|, dl = 1, 3 start times"};
}

// ---------------------------------------------------------------------------------------------
// (10) Reverse-SDE family: W2 of the exact output law to the true marginal, single Gaussian.

double sde_w2(const std::string& solver, double eta) {
  static const GaussianMixture single = mixture_preset("gaussian", 2);
  const auto s = make_schedule("vp-linear");
  GridSpec spec;
  spec.kind = "uniform";
  spec.steps = 512;
  const Grid g = make_grid(*s, spec);
  Model m(single, *s);
  const auto start = stoch::marginal_law(single, s->alpha(g.t.front()), s->sigma(g.t.front()));
  const auto truth = stoch::marginal_law(single, s->alpha(g.t.back()), s->sigma(g.t.back()));
  return stoch::w2_distance(stoch::propagate_law(solver, {{"eta", fmt::format("{}", eta)}}, m, g, start), truth);
}

Measured sde_eta2() { return {sde_w2("euler_maruyama", 0.5), NAN, "W2 to the true marginal, eta = 0.5, 512 steps"}; }
Measured sde_seed_eta() {
  return {std::max(sde_w2("euler_maruyama_seed", 0.0), sde_w2("euler_maruyama_seed", 1.0)),
          sde_w2("euler_maruyama_seed", 0.5), "W2 to the true marginal, 512 steps: max over eta in {0, 1} | eta = 0.5"};
}

// ---------------------------------------------------------------------------------------------
// (11) Marginal = posterior mean of the conditional: E[(cond(X) - marg(X)) h(X)] = 0 for test functions
// h (1, x_i, tanh x_i), on joint draws (x0, eps). Figure: largest |mean| / standard error.

double posterior_mean_z(bool velocity) {
  double worst = 0;
  for (const std::string name : {"vp-linear", "fm-linear"}) {
    const auto s = make_schedule(name);
    Model model(gmm8(), *s);
    for (double t : {0.3, 0.7}) {
      const TimePoint p = s->at(t);
      const Eigen::Index n = 20000;
      const MatrixXd x0 = gmm8().sample(1.0, 0.0, 22, n);
      const MatrixXd x = p.alpha * x0 + p.sigma * normals(2, n, 23);
      MatrixXd cond, marg;
      if (velocity) {
        // seed 001: u(x | z) = (alpha_dot - (beta_dot/beta) alpha) z + (beta_dot/beta) x, beta = sigma
        cond = (p.alpha_dot - (p.sigma_dot / p.sigma) * p.alpha) * x0 + (p.sigma_dot / p.sigma) * x;
        MatrixXd xh(2, n), eh(2, n);
        model.predict(x, p, xh, eh);
        marg = param::u_from(p, xh, eh);
      } else {
        // seed 001: s(x, t | z) = -(x - alpha z) / beta^2
        cond = -(x - p.alpha * x0) / (p.sigma * p.sigma);
        marg = gmm8().evaluate(x, p.alpha, p.sigma, kScore).score;
      }
      const MatrixXd r = cond - marg;
      for (int i = 0; i < 2; ++i)
        for (int k = 0; k < 3; ++k) {
          const Eigen::ArrayXd xi = x.row(i).transpose().array();
          const Eigen::ArrayXd h = k == 0 ? Eigen::ArrayXd::Ones(n) : k == 1 ? xi : Eigen::ArrayXd(xi.tanh());
          const Eigen::ArrayXd v = r.row(i).transpose().array() * h;
          const double mean = v.mean(), sd = std::sqrt((v - mean).square().sum() / (n - 1));
          worst = std::max(worst, std::abs(mean) / (sd / std::sqrt(double(n))));
        }
    }
  }
  return worst;
}

Measured cond_velocity() { return {posterior_mean_z(true), NAN, "max |mean|/SE over 24 tests, 20000 draws"}; }
Measured cond_score() { return {posterior_mean_z(false), NAN, "max |mean|/SE over 24 tests, 20000 draws"}; }

// ---------------------------------------------------------------------------------------------
// (12) Exact likelihood via d/dt log p_t(x_t) = -div v (seed 002), exact prior, gmm8 on vp-linear.

Measured likelihood_seed002() {
  const auto s = make_schedule("vp-linear");
  Model model(gmm8(), *s);
  const MatrixXd x = gmm8().sample(s->alpha(s->t_lo()), s->sigma(s->t_lo()), 24, 32);
  AdaptiveLikelihoodOptions ao;
  ao.rtol = ao.atol = 1e-10;
  const auto r = likelihood_adaptive(model, s->t_lo(), s->t_hi(), x, ao);
  return {r.error.cwiseAbs().maxCoeff(), NAN, "max |log p - closed form| (nats), 32 points, dopri5 rtol 1e-10"};
}

// ---------------------------------------------------------------------------------------------
// (13) Measured global order against the exact single-Gaussian flow map (relative max error at t_lo).

double measured_order(const std::string& solver, const SolverOptions& opts, const ScheduleParams& sp,
                      std::vector<double> ns) {
  static const GaussianMixture single = mixture_preset("gaussian", 2);
  const auto s = make_schedule("vp-linear", sp);
  const GaussianFlow flow(single);
  const MatrixXd x = single.sample(s->alpha(s->t_hi()), s->sigma(s->t_hi()), 25, 64);
  MatrixXd exact = x;
  flow.transport(exact, *s, s->t_hi(), s->t_lo());
  std::vector<double> err;
  for (double n : ns) {
    GridSpec spec;
    spec.kind = "logsnr";
    spec.steps = static_cast<int>(n);
    err.push_back(rel(run_solver(solver, opts, *s, single, make_grid(*s, spec), x), exact));
  }
  return fit_order(ns, err).order;
}

Measured order_3m_published() {
  const double p = measured_order("dpmpp_3m", {{"variant", "published"}}, {}, {384, 768, 1536, 3072});
  return {std::abs(p - 3), NAN, fmt::format("|order - 3|, fitted order {:.3f}, logsnr N = 384..3072", p)};
}
Measured order_3m_taylor() {
  const double p = measured_order("dpmpp_3m", {{"variant", "taylor"}}, {{"t_hi", 0.5}}, {384, 768, 1536, 3072});
  return {std::abs(p - 3), NAN, fmt::format("|order - 3|, fitted order {:.3f}, t_hi = 0.5, logsnr N = 384..3072", p)};
}
Measured order_lms_ramp() {
  const double p = measured_order("lms", {{"warmup", "ramp"}, {"coordinates", "logsnr"}}, {}, {512, 1024, 2048});
  return {std::abs(p - 4), NAN, fmt::format("|order - 4|, fitted order {:.3f}, logsnr N = 512..2048", p)};
}
Measured order_lms_rk4() {
  const double p = measured_order("lms", {{"warmup", "rk4"}, {"coordinates", "logsnr"}}, {}, {32, 64, 128});
  return {std::abs(p - 4), NAN, fmt::format("|order - 4|, fitted order {:.3f}, logsnr N = 32..128", p)};
}

}  // namespace

const std::vector<Claim>& ledger() {
  using V = Verdict;
  const std::string order_tol = "samplers.md 4.7 pre-asymptotic slopes sit within 0.2 of the asymptotic order";
  static const std::vector<Claim> L = {
      {"conv.roundtrip", "closed_forms.md 8.1; seed 004 (Gaussian flows)",
       "score, eps, x0, v and u are one-to-one linear maps of each other",
       "round trips through analytics/parameterization.hpp on gmm8 points", "", 1e-12,
       "rounding: maps have O(1) coefficients (1/alpha <= 1e2 at the times used)", Sense::kAtMost, V::kHolds, conv_roundtrip},
      {"conv.tweedie", "seed 004 (proof of velocity_gaussian); closed_forms.md 3",
       "Tweedie: E[x0 | x] = (x + sigma^2 grad log p_t(x)) / alpha",
       "Tweedie from the exact score vs the component-wise posterior mean (kDenoiser)", "", 1e-10,
       "rounding amplified by 1/alpha (<= 1e2) and the cancellation x + sigma^2 s", Sense::kAtMost, V::kHolds, conv_tweedie},
      {"pfode.seed004", "seed 004 (eq. velocity_gaussian)",
       "v = (alpha'/alpha) x + sigma^2 s [alpha'/alpha - sigma'/sigma]",
       "seed formula vs alpha' x0 + sigma' eps from Model::predict, 5 schedules", "", 1e-10,
       "rounding, as conv.tweedie", Sense::kAtMost, V::kHolds, pfode_seed004},
      {"pfode.seed000", "seed 000 (From Diffusion Models to Flow Matching / Flow Matching)",
       "v = (alpha'/alpha) x - sigma (sigma' - (alpha'/alpha) sigma) s",
       "seed formula vs alpha' x0 + sigma' eps from Model::predict, 5 schedules", "", 1e-10,
       "rounding, as conv.tweedie", Sense::kAtMost, V::kHolds, pfode_seed000},
      {"pfode.seed003", "seed 003 (PF-ODE of the VP SDE)", "v = -beta/2 x - beta/2 s (VP, beta linear in t)",
       "seed formula with beta = 0.1 + 19.9 t vs the exact vp-linear velocity", "", 1e-10,
       "rounding, as conv.tweedie", Sense::kAtMost, V::kHolds, pfode_seed003},
      {"pfode.seed002", "seed 002 (Diffusion / PF-ODE)",
       "v = (d log alpha/dt) x - g^2/2 s with g = alpha d/dt(sigma^2/alpha^2)",
       "seed formula vs the exact velocity, 5 schedules", "", 1e-10, "rounding, as conv.tweedie", Sense::kAtMost,
       V::kFails, pfode_seed002},
      {"fg.seed000.backup", "seed 000 (ruiqi backup, forward SDE)", "f = d log alpha/dt, g^2 = d sigma^2/dt - 2 f sigma^2",
       "vs Schedule::f, Schedule::g2 (= -sigma^2 lambda'), 5 schedules", "", 1e-12, "rounding of O(1) expressions",
       Sense::kAtMost, V::kHolds, fg_seed000_backup},
      {"fg.seed000.relation", "seed 000 (How to relate these two models)", "g = (2 alpha sigma d/dt(sigma/alpha))^{1/2}",
       "seed g^2 vs Schedule::g2, 5 schedules", "", 1e-12, "rounding of O(1) expressions", Sense::kAtMost, V::kHolds,
       fg_seed000_relation},
      {"fg.seed000.summary", "seed 000 (To summarize)", "g = 2 alpha sigma d/dt(sigma/alpha)  (written as g, is g^2)",
       "seed g, squared, vs Schedule::g2, 5 schedules", "", 1e-12, "rounding of O(1) expressions", Sense::kAtMost,
       V::kFails, fg_seed000_summary},
      {"fg.seed002", "seed 002 (Diffusion, forward SDE coefficients)", "g = alpha d/dt(sigma^2/alpha^2)",
       "seed g, squared, vs Schedule::g2, 5 schedules", "", 1e-12, "rounding of O(1) expressions", Sense::kAtMost,
       V::kFails, fg_seed002},
      {"fg.seed003", "seed 003 (continuous DDPM / VP SDE)", "f = -beta/2, g = sqrt(beta) for VP",
       "vs Schedule::f, Schedule::g2 on vp-linear", "", 1e-12, "rounding of O(1) expressions", Sense::kAtMost, V::kHolds,
       fg_seed003},
      {"ddim.euler_fm", "seed 000 (Flow matching: sampling processes are exactly the same); seed 004; closed_forms.md 8.2",
       "DDIM equals the flow-matching Euler sampler in tau = sigma/(alpha+sigma), z = x/(alpha+sigma)",
       "registry ddim vs euler(coordinates=fm), gmm8, vp-linear, 10 logSNR steps", "", 1e-12,
       "rounding over 10 steps of O(1) updates", Sense::kAtMost, V::kHolds, ddim_euler_fm},
      {"ddim.euler_xt", "samplers.md 7.2 (false for native time)", "DDIM equals Euler on the PF-ODE in the schedule's own (x, t)",
       "registry ddim vs euler(coordinates=t), same setting", "", 1e-12, "same tolerance as ddim.euler_fm", Sense::kAtMost,
       V::kFails, ddim_euler_t},
      {"sched.same_solution", "seed 000 (Noise schedule remarks 1-3); closed_forms.md 8.3",
       "the schedule does not change the PF-ODE solution: x/alpha as a function of lambda is schedule-free",
       "reference solves on vp-linear and fm-linear from the same y at lambda = -8, compared at 33 common lambdas", "",
       1e-8, "two rtol = atol = 1e-12 reference solves (global error ~1-10x tol each, reference.hpp), y up to ~5",
       Sense::kAtMost, V::kHolds, sched_same_solution},
      {"sched.discretization", "seed 000 (Noise schedule remark 3); samplers.md 7.3",
       "the sampling schedule changes the fixed-step discretization error",
       "relative difference of the final errors (vs reference) on vp-linear and fm-linear, 8 common-lambda steps",
       "a solver that is not an exponential integrator (Euler in t); DDIM's error is schedule-free", 1e-6,
       "1e6 x the resolution of the comparison (the two references agree to ~1e-14, sched.same_solution)",
       Sense::kAtLeast, V::kHoldsUnderCondition, sched_discretization},
      {"straight.fm", "seed 000 (Sampling and Straightness Misnomer); seed 002 VI",
       "flow-matching (fm-linear) PF-ODE paths are straight", "trajectory_geometry S/K of reference paths in (z, tau)",
       "point-mass data (a multimodal gmm8 bends its paths)", 1e-6,
       "straight = S below 1e-6 of K; a straight path's S is rounding, gmm8's bending is O(1e-2)", Sense::kAtMost,
       V::kHoldsUnderCondition, straight_fm},
      {"loss.seed000.eps", "seed 000 (Network output table, eps row)", "||eps_hat - eps||^2 = e^lambda ||x_hat - x||^2",
       "Monte Carlo ratio with parameterization maps, 3 schedules", "", 1e-10,
       "per-sample ratio is exact (linear map), so MC only averages rounding", Sense::kAtMost, V::kHolds, loss_seed000_eps},
      {"loss.seed000.v", "seed 000 (Network output table, v row)", "||v_hat - v||^2 = sigma^2 (e^{-lambda} + 1)^2 ||x_hat - x||^2",
       "Monte Carlo ratio, vp-linear and fm-cosine", "", 1e-10, "as loss.seed000.eps", Sense::kAtMost, V::kFails,
       loss_seed000_v},
      {"loss.seed000.u", "seed 000 (Network output table, u row)", "||u_hat - u||^2 = (1 + e^{lambda/2})^2 ||x_hat - x||^2",
       "Monte Carlo ratio with u = alpha' x0 + sigma' eps", "alpha + sigma = 1 (fm-linear); other schedules need Delta^2/sigma^2",
       1e-10, "as loss.seed000.eps", Sense::kAtMost, V::kHoldsUnderCondition, loss_seed000_u},
      {"loss.doc.v", "samplers.md 7.12; closed_forms.md 8.5", "v-MSE weight (alpha^2 + sigma^2)^2 / sigma^2",
       "Monte Carlo ratio, 5 schedules", "", 1e-10, "as loss.seed000.eps", Sense::kAtMost, V::kHolds, loss_doc_v},
      {"loss.doc.u", "samplers.md 7.12", "FM velocity-MSE weight Delta^2 / sigma^2", "Monte Carlo ratio, 5 schedules", "",
       1e-10, "as loss.seed000.eps", Sense::kAtMost, V::kHolds, loss_doc_u},
      {"loss.doc.score", "samplers.md 7.12", "DSM weight alpha^2 / sigma^4", "Monte Carlo ratio, 5 schedules", "", 1e-10,
       "as loss.seed000.eps", Sense::kAtMost, V::kHolds, loss_doc_score},
      {"loss.fm_vcos", "seed 000 (Weighting function box); samplers.md 7.13",
       "flow matching == v-MSE with a cosine schedule (effective weight per unit lambda, up to the factor pi/2)",
       "p(lambda) w_eps(lambda) of FM (fm-linear) over v-MSE (cosine), t ~ U(0,1), lambda in [-10, 10]",
       "offset-free cosine alpha = cos(pi t/2) (fm-cosine), not Nichol-Dhariwal s = 0.008", 1e-9,
       "closed forms; t_of_lambda is exact to 1e-14", Sense::kAtMost, V::kHoldsUnderCondition, loss_fm_vcos},
      {"ddpm.ddim_renoise", "seed 000 (Deterministic vs stochastic sampler); closed_forms.md 8.4",
       "one DDPM step lambda -> lambda + dl = DDIM to lambda + 2 dl, then forward renoising to lambda + dl",
       "registry ddpm (recorded noise) vs registry ddim + renoising with the same normals", "", 1e-12,
       "rounding of one step", Sense::kAtMost, V::kHolds, ddpm_ddim_renoise},
      {"sde.eta_squared", "closed_forms.md 4; samplers.md 1.5", "drift [f x - (1 + eta^2)/2 g^2 s], noise eta g: same marginals for all eta",
       "exact output law of euler_maruyama(eta = 0.5), single Gaussian, 512 steps: W2 to the marginal", "", 1e-2,
       "10x the weak (discretization) error of Euler-Maruyama at 512 steps (~1e-3, test_stochastic)", Sense::kAtMost,
       V::kHolds, sde_eta2},
      {"sde.seed000_eta", "seed 000 (Diffusion models, eta_t family)", "drift [-f Y + (1 + eta) g^2/2 s], noise eta g keeps the marginals",
       "exact output law of euler_maruyama_seed, as sde.eta_squared", "eta in {0, 1}", 1e-2, "as sde.eta_squared",
       Sense::kAtMost, V::kHoldsUnderCondition, sde_seed_eta},
      {"cond.velocity", "seed 001 (marginal vector field); seed 003 (CFM = FM gradients); seed 004",
       "marginal velocity = posterior mean of the conditional velocity (alpha' - (sigma'/sigma) alpha) z + (sigma'/sigma) x",
       "E[(u(x|z) - u(x)) h(x)] = 0 on joint draws, gmm8, 2 schedules x 2 times x 6 test functions", "", 5.0,
       "5 standard errors (24 tests: family-wise false alarm < 1e-4)", Sense::kAtMost, V::kHolds, cond_velocity},
      {"cond.score", "seed 001 (marginal score); seed 000 (ruiqi backup)",
       "marginal score = posterior mean of the conditional score -(x - alpha z)/sigma^2",
       "E[(s(x|z) - s(x)) h(x)] = 0 on joint draws, as cond.velocity", "", 5.0, "as cond.velocity", Sense::kAtMost,
       V::kHolds, cond_score},
      {"lik.seed002", "seed 002 (Likelihood Computation); closed_forms.md 6",
       "d/dt [x, log p_t(x)] = [v, -div v] gives the exact log-likelihood",
       "likelihood_adaptive (exact divergence, exact prior) vs closed-form log p, gmm8 vp-linear", "", 1e-6,
       "samplers.md 7.11 (~1e-6 with exact p_T)", Sense::kAtMost, V::kHolds, likelihood_seed002},
      {"order.dpmpp_3m.published", "samplers.md 4.3, 4.7, 7.10 (name: third-order multistep)",
       "DPM-Solver++(3M) as published is third order", "fit_order of the error vs the exact Gaussian flow map", "", 0.3,
       order_tol, Sense::kAtMost, V::kFails, order_3m_published},
      {"order.dpmpp_3m.taylor", "samplers.md 7.10", "DPM-Solver++(3M) with 2 D2 is third order",
       "fit_order, from t_hi = 0.5 (asymptotic regime), vs the exact flow map", "", 0.3, order_tol, Sense::kAtMost,
       V::kFails, order_3m_taylor},
      {"order.lms.ramp", "samplers.md 4.7 (LMS-4 3.82); k-diffusion sample_lms", "LMS-4 with the k-diffusion warm-up ramp is fourth order",
       "fit_order in logsnr coordinates, N = 512..2048, vs the exact flow map", "", 0.3, order_tol, Sense::kAtMost,
       V::kFails, order_lms_ramp},
      {"order.lms.rk4", "samplers.md 4.7 (LMS-4)", "LMS-4 with RK4 starting values is fourth order",
       "fit_order in logsnr coordinates, N = 32..128, vs the exact flow map", "", 0.3, order_tol, Sense::kAtMost,
       V::kHolds, order_lms_rk4},
  };
  return L;
}

const Claim* find_claim(const std::string& id) {
  for (const auto& c : ledger())
    if (c.id == id) return &c;
  return nullptr;
}

Outcome run_claim(const Claim& c) {
  Outcome o{&c, c.measure(), Verdict::kFails};
  auto pass = [&](double q) { return std::isfinite(q) && (c.sense == Sense::kAtMost ? q <= c.tolerance : q >= c.tolerance); };
  if (!pass(o.m.value))
    o.verdict = Verdict::kFails;
  else if (!c.condition.empty() && !pass(o.m.outside))
    o.verdict = Verdict::kHoldsUnderCondition;
  else
    o.verdict = Verdict::kHolds;
  return o;
}

}  // namespace flowgauge::claims
