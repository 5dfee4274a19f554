// Schedules (closed_forms.md sections 1-2): every registered schedule is checked automatically.
// Reference values come from finite differences, from the formulas of the closed_forms table
// re-implemented here in long double, or from published numbers (samplers.md 2.2).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numbers>
#include <string>
#include <vector>

#include "analytics/errors.hpp"
#include "analytics/schedule.hpp"

namespace flowgauge {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();

// Test times spread over the sampling interval: a uniform grid plus, when t_lo > 0, a geometric
// grid (EDM spans 0.002..80 and VP's interesting end is t -> 0), plus points just inside both ends.
std::vector<double> test_times(const Schedule& s, int n = 40) {
  const double lo = s.t_lo(), hi = s.t_hi();
  std::vector<double> t;
  for (int i = 0; i <= n; ++i) t.push_back(lo + (hi - lo) * i / n);
  if (lo > 0)
    for (int i = 0; i <= n; ++i) t.push_back(lo * std::pow(hi / lo, double(i) / n));
  t.push_back(lo + 1e-6 * (hi - lo));
  t.push_back(hi - 1e-6 * (hi - lo));
  std::sort(t.begin(), t.end());
  t.erase(std::unique(t.begin(), t.end()), t.end());
  return t;
}

// Finite-difference step at t: 1e-3 x the distance to the nearer natural-domain end (alpha or
// sigma may be singular or vanish there), capped by 5% of the sampling interval. A point that sits
// AT a natural-domain end (closer than 1e-4 x the cap, e.g. vp-linear's t_hi = 1) gets a one-sided
// stencil pointing inwards instead: side = +1 forward, -1 backward, 0 central.
struct Step {
  double h;
  int side;
};
Step fd_step(const Schedule& s, double t) {
  auto [a, b] = s.natural_domain();
  const double cap = 0.05 * (s.t_hi() - s.t_lo());
  const double da = t - a, db = b - t;
  const bool at_a = da < 1e-4 * cap, at_b = db < 1e-4 * cap;
  double d = cap;
  if (!at_a) d = std::min(d, da);
  if (!at_b) d = std::min(d, db);
  return {1e-3 * d, at_a ? +1 : at_b ? -1 : 0};
}

// Fourth-order finite differences: central [f(t-2h) - 8 f(t-h) + 8 f(t+h) - f(t+2h)] / (12 h), or
// one-sided [-25 f0 + 48 f1 - 36 f2 + 16 f3 - 3 f4] / (12 h) with f_i = f(t + side i h).
// Returns the derivative and a rounding-error bound for it.
struct Fd {
  double value, rounding;
};
Fd finite_diff(const std::function<double(double)>& f, double t, Step st) {
  const double h = st.h;
  double v, wsum, mag = 0;
  if (st.side == 0) {
    const double fm2 = f(t - 2 * h), fm1 = f(t - h), fp1 = f(t + h), fp2 = f(t + 2 * h);
    mag = std::max({std::abs(fm2), std::abs(fm1), std::abs(fp1), std::abs(fp2)});
    v = (fm2 - 8 * fm1 + 8 * fp1 - fp2) / (12 * h);
    wsum = 18.0 / 12;
  } else {
    const double w[5] = {-25, 48, -36, 16, -3};
    v = 0;
    for (int i = 0; i < 5; ++i) {
      const double fi = f(t + st.side * i * h);
      mag = std::max(mag, std::abs(fi));
      v += w[i] * fi;
    }
    v *= st.side / (12 * h);
    wsum = 128.0 / 12;
  }
  // Each f value carries a few ulps (assume <= 8 eps |f|), amplified by the stencil weights / h.
  return {v, 8 * kEps * mag * wsum / h};
}

// Independent long-double versions of the closed_forms.md table (default parameters).
struct RefSchedule {
  std::function<long double(long double)> alpha, sigma;
};
const std::map<std::string, RefSchedule>& reference_table() {
  static const std::map<std::string, RefSchedule> table = [] {
    std::map<std::string, RefSchedule> m;
    const long double pi = std::numbers::pi_v<long double>;
    auto vp_alpha = [](long double t) { return std::exp(-t * t * (20.0L - 0.1L) / 4 - t * 0.1L / 2); };
    m["vp-linear"] = {vp_alpha, [vp_alpha](long double t) { return std::sqrt(1 - vp_alpha(t) * vp_alpha(t)); }};
    m["sub-vp"] = {vp_alpha, [vp_alpha](long double t) { return 1 - vp_alpha(t) * vp_alpha(t); }};
    const long double s = 0.008L;
    auto cos_alpha = [pi, s](long double t) {
      return std::cos(pi / 2 * (t + s) / (1 + s)) / std::cos(pi / 2 * s / (1 + s));
    };
    m["vp-cosine"] = {cos_alpha, [cos_alpha](long double t) { return std::sqrt(1 - cos_alpha(t) * cos_alpha(t)); }};
    m["ve"] = {[](long double) { return 1.0L; }, [](long double t) { return 0.01L * std::pow(5000.0L, t); }};
    m["edm"] = {[](long double) { return 1.0L; }, [](long double t) { return t; }};
    m["fm-linear"] = {[](long double t) { return 1 - t; }, [](long double t) { return t; }};
    m["fm-cosine"] = {[pi](long double t) { return std::cos(pi * t / 2); },
                      [pi](long double t) { return std::sin(pi * t / 2); }};
    return m;
  }();
  return table;
}

class EverySchedule : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { s = make_schedule(GetParam()); }
  std::unique_ptr<Schedule> s;
};

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

TEST_P(EverySchedule, DerivativesMatchFiniteDifferences) {
  for (double t : test_times(*s)) {
    // h = 1e-3 x (distance to a singular end): the 5-point stencils' truncation error is
    // ~ (h/scale)^4 ~ 1e-12 relative; rounding is bounded explicitly by Fd::rounding.
    const Step st = fd_step(*s, t);
    ASSERT_GT(st.h, 0) << "t = " << t;
    struct Pair {
      const char* what;
      std::function<double(double)> f;
      double analytic;
    };
    const Pair pairs[] = {
        {"alpha_dot", [&](double u) { return s->alpha(u); }, s->alpha_dot(t)},
        {"sigma_dot", [&](double u) { return s->sigma(u); }, s->sigma_dot(t)},
        {"lambda_dot", [&](double u) { return s->lambda(u); }, s->lambda_dot(t)},
    };
    for (const auto& p : pairs) {
      const Fd fd = finite_diff(p.f, t, st);
      // 1e-8 relative: 1e4 x the ~1e-12 truncation estimate, far below any wrong-formula error.
      EXPECT_NEAR(p.analytic, fd.value, 1e-8 * std::abs(p.analytic) + fd.rounding)
          << GetParam() << " " << p.what << " at t = " << t << " (h = " << st.h << ", side " << st.side << ")";
    }
  }
}

TEST_P(EverySchedule, MatchesClosedFormsTable) {
  const auto& table = reference_table();
  auto it = table.find(GetParam());
  if (it == table.end()) GTEST_SKIP() << "no reference formula for " << GetParam() << " in this test";
  for (double t : test_times(*s)) {
    const long double a = it->second.alpha(t), sg = it->second.sigma(t);
    // 1e-13 relative: a handful of double roundings in exp/sqrt/cos on well-scaled arguments;
    // plus, for cos(theta) near theta = pi/2 (cosine schedules at t ~ 1), the argument's rounding
    // (a few eps x pi/2, absolute) turns into a relative error of that over alpha.
    const double tol_a = 1e-13 + 16 * kEps / std::abs(static_cast<double>(a));
    EXPECT_NEAR(s->alpha(t) / a, 1.0, tol_a) << GetParam() << " alpha at t = " << t;
    EXPECT_NEAR(s->sigma(t) / sg, 1.0, 1e-13) << GetParam() << " sigma at t = " << t;
  }
}

TEST_P(EverySchedule, LambdaEqualsTwoLogAlphaOverSigma) {
  for (double t : test_times(*s)) {
    const double a = s->alpha(t), sg = s->sigma(t);
    const long double ref = 2.0L * (std::log(static_cast<long double>(a)) - std::log(static_cast<long double>(sg)));
    // Both sides derive from the same few-ulp alpha and sigma: agreement to 64 eps (|lambda| + 1).
    EXPECT_NEAR(s->lambda(t), static_cast<double>(ref), 64 * kEps * (std::abs(ref) + 1))
        << GetParam() << " at t = " << t;
  }
}

TEST_P(EverySchedule, InverseLambdaRoundTrip) {
  std::vector<double> ts = test_times(*s);
  auto [a, b] = s->natural_domain();
  // Also outside the default sampling interval, towards the natural-domain ends (a user may move
  // t_lo/t_hi there): t -> 0 where sigma vanishes, and up to 1e-6 short of a finite upper end.
  if (a == 0 && s->t_lo() > 0) {
    ts.push_back(s->t_lo() / 10);
    ts.push_back(s->t_lo() / 100);
  }
  if (std::isfinite(b))
    for (double f : {1e-3, 1e-4, 1e-5, 1e-6}) ts.push_back(b - f * (b - std::max(a, 0.0)));
  for (double t : ts) {
    const double lam = s->lambda(t);
    // lambda carries ~4 ulps, i.e. dt ~ 4 eps |lambda| / |lambda_dot|; 1e-12 |t| is above that
    // for every schedule here (t = 0 only occurs for VE, where t = 0 is an ordinary point).
    const double tol = std::max(1e-12 * std::abs(t), 1e-15);
    const double dt_rounding = 8 * kEps * std::abs(lam) / std::abs(s->lambda_dot(t));
    EXPECT_NEAR(s->t_of_lambda(lam), t, tol + dt_rounding) << GetParam() << " closed form, t = " << t;
    EXPECT_NEAR(s->t_of_lambda_numeric(lam), t, tol + dt_rounding) << GetParam() << " numeric, t = " << t;
    EXPECT_NEAR(s->t_of_lambda(lam), s->t_of_lambda_numeric(lam), tol + dt_rounding)
        << GetParam() << " closed vs numeric, t = " << t;
  }
}

TEST_P(EverySchedule, InverseLambdaOnALambdaGrid) {
  // Uniform logSNR grid between the interval ends (what exponential integrators build).
  const double l0 = s->lambda(s->t_hi()), l1 = s->lambda(s->t_lo());
  ASSERT_TRUE(std::isfinite(l0) && std::isfinite(l1));
  for (int i = 0; i <= 50; ++i) {
    const double lam = l0 + (l1 - l0) * i / 50;
    const double t = s->t_of_lambda(lam);
    ASSERT_TRUE(t >= s->t_lo() * (1 - 1e-12) - 1e-15 && t <= s->t_hi() * (1 + 1e-12) + 1e-15) << t;
    // lambda(t(lam)) = lam: error = lambda_dot x dt plus lambda's own rounding.
    const double tol = std::abs(s->lambda_dot(t)) * std::max(1e-12 * std::abs(t), 1e-15) + 8 * kEps * (std::abs(lam) + 1);
    EXPECT_NEAR(s->lambda(t), lam, tol) << GetParam() << " lam = " << lam;
  }
}

TEST_P(EverySchedule, EndpointsAndMonotonicity) {
  EXPECT_GT(s->sigma(s->t_lo()), 0);
  EXPECT_GT(s->alpha(s->t_lo()), 0);
  EXPECT_GE(s->alpha(s->t_hi()), 0);
  EXPECT_LT(s->t_lo(), s->t_hi());
  auto [a, b] = s->natural_domain();
  EXPECT_LE(a, s->t_lo());
  EXPECT_GE(b, s->t_hi());
  // lambda strictly decreasing, lambda_dot < 0, g^2 > 0 and Delta = alpha sigma_dot - sigma alpha_dot > 0.
  double prev = std::numeric_limits<double>::infinity();
  const int n = 4000;
  for (int i = 0; i <= n; ++i) {
    const double t = s->t_lo() + (s->t_hi() - s->t_lo()) * i / n;
    const double lam = s->lambda(t);
    EXPECT_LT(lam, prev) << GetParam() << " at t = " << t;
    prev = lam;
    EXPECT_LT(s->lambda_dot(t), 0) << t;
    EXPECT_GT(s->g2(t), 0) << t;
    EXPECT_GT(s->alpha(t) * s->sigma_dot(t) - s->sigma(t) * s->alpha_dot(t), 0) << t;
  }
  if (auto t0 = s->t_sigma_zero()) {
    EXPECT_EQ(s->sigma(*t0), 0.0) << GetParam();
    EXPECT_GT(s->alpha(*t0), 0.0) << GetParam();
    EXPECT_LE(*t0, s->t_lo());
    EXPECT_GE(*t0, a);
  } else {
    for (int i = 0; i <= 100; ++i) EXPECT_GT(s->sigma(a + (b - a) * i / 100), 0);
  }
}

TEST_P(EverySchedule, DriftAndDiffusionCoefficients) {
  for (double t : test_times(*s)) {
    const double a = s->alpha(t), sg = s->sigma(t), ad = s->alpha_dot(t), sd = s->sigma_dot(t);
    // 16 eps: one division each.
    EXPECT_NEAR(s->f(t), ad / a, 16 * kEps * std::abs(ad / a));
    // g^2 = 2 sigma sigma_dot - 2 f sigma^2 (closed_forms section 1); the two terms can cancel
    // (VP near t = 1), so the bound is relative to their magnitudes.
    const double t1 = 2 * sg * sd, t2 = 2 * (ad / a) * sg * sg;
    EXPECT_NEAR(s->g2(t), t1 - t2, 64 * kEps * (std::abs(t1) + std::abs(t2))) << GetParam() << " t = " << t;
    const TimePoint p = s->at(t);
    EXPECT_EQ(p.alpha, a);
    EXPECT_EQ(p.sigma, sg);
    EXPECT_EQ(p.alpha_dot, ad);
    EXPECT_EQ(p.sigma_dot, sd);
  }
}

TEST_P(EverySchedule, ProvenanceAndParameterErrors) {
  // describe() names the schedule and lists t_lo/t_hi with the values in use.
  EXPECT_NE(s->describe().find(GetParam()), std::string::npos);
  bool has_lo = false, has_hi = false;
  for (const auto& p : s->params()) {
    has_lo |= p.name == "t_lo" && p.value == s->t_lo();
    has_hi |= p.name == "t_hi" && p.value == s->t_hi();
  }
  EXPECT_TRUE(has_lo && has_hi) << s->describe();
  // Overriding the interval works.
  const double mid = 0.5 * (s->t_lo() + s->t_hi());
  auto s2 = make_schedule(GetParam(), {{"t_hi", mid}});
  EXPECT_EQ(s2->t_hi(), mid);
  EXPECT_EQ(s2->t_lo(), s->t_lo());
  // Errors name the key.
  try {
    make_schedule(GetParam(), {{"t_lo", s->t_hi()}, {"t_hi", s->t_lo()}});
    ADD_FAILURE() << "t_lo >= t_hi accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("t_lo"), std::string::npos) << e.what();
  }
  try {
    make_schedule(GetParam(), {{"t_lo", s->t_lo()}, {"t_hi", s->t_lo()}});
    ADD_FAILURE() << "t_lo == t_hi accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("t_hi"), std::string::npos) << e.what();
  }
  try {
    make_schedule(GetParam(), {{"t_hii", 0.5}});
    ADD_FAILURE() << "unknown key accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'t_hii'"), std::string::npos) << m;
    EXPECT_NE(m.find("did you mean 't_hi'"), std::string::npos) << m;
  }
  EXPECT_THROW(make_schedule(GetParam(), {{"t_hi", std::nan("")}}), InputError);
}

INSTANTIATE_TEST_SUITE_P(Registered, EverySchedule, ::testing::ValuesIn(schedule_names()), test_name);

// ---- schedule-specific facts ----

TEST(Schedules, RegistryCoversTheClosedFormsTable) {
  const auto names = schedule_names();
  for (const auto& [name, ref] : reference_table())
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name << " is not registered";
  EXPECT_EQ(make_schedule("vp_linear")->name(), "vp-linear");  // underscores accepted
  try {
    make_schedule("vp-linaer");
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'vp-linear'"), std::string::npos) << e.what();
  }
}

TEST(Schedules, VpLinearPublishedNumbers) {
  // samplers.md 2.2 [measured], printed to the digits compared here (half a unit in the last digit).
  auto s = make_schedule("vp-linear");
  EXPECT_EQ(s->t_lo(), 1e-3);
  EXPECT_EQ(s->t_hi(), 1.0);
  EXPECT_NEAR(s->lambda(1.0), -10.05, 0.005);
  EXPECT_NEAR(s->alpha(1.0), 6.6e-3, 0.05e-3);
  EXPECT_NEAR(s->at(1.0).rho(), 152.2, 0.05);
  EXPECT_NEAR(s->lambda(1e-3), 9.12, 0.005);
  EXPECT_NEAR(s->at(1e-3).rho(), 0.0105, 0.00005);
  auto s5 = make_schedule("vp-linear", {{"t_lo", 1e-5}});
  EXPECT_EQ(s5->t_lo(), 1e-5);
  EXPECT_NEAR(s5->lambda(1e-5), 13.81, 0.005);
  EXPECT_NEAR(s5->at(1e-5).rho(), 0.0010, 0.00005);
  // EDM's rho(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1), beta_d = 19.9 (samplers.md 2.2).
  for (double t : {1e-3, 0.1, 0.5, 1.0}) {
    const double rho = std::sqrt(std::expm1(0.5 * 19.9 * t * t + 0.1 * t));
    EXPECT_NEAR(s->at(t).rho() / rho, 1.0, 1e-13) << t;  // a few roundings in exp/sqrt
  }
}

TEST(Schedules, DocumentedDefaults) {
  auto edm = make_schedule("edm");
  EXPECT_EQ(edm->t_lo(), 0.002);
  EXPECT_EQ(edm->t_hi(), 80.0);
  EXPECT_EQ(edm->sigma(80.0), 80.0);
  auto ve = make_schedule("ve");
  EXPECT_NEAR(ve->sigma(ve->t_lo()), 0.01, 1e-17);  // sigma_min exactly up to rounding
  EXPECT_NEAR(ve->sigma(ve->t_hi()), 50.0, 1e-13);  // exp(log 5000) carries a few ulps
  auto cosine = make_schedule("vp-cosine");
  EXPECT_LT(cosine->t_hi(), 1.0);  // alpha(1) = 0, so the interval must stop short of 1
  EXPECT_NEAR(cosine->alpha(1.0), 0.0, 1e-15);
  EXPECT_NEAR(cosine->alpha(0.0), 1.0, 1e-15);
  auto fm = make_schedule("fm-linear");
  EXPECT_EQ(fm->alpha(0.25), 0.75);
  EXPECT_EQ(fm->sigma(0.25), 0.25);
  // "t in [t_lo, 1 - eps] or up to 1": the prior end t = 1 is allowed for fm-linear.
  auto fm1 = make_schedule("fm-linear", {{"t_hi", 1.0}});
  EXPECT_EQ(fm1->alpha(1.0), 0.0);
  EXPECT_EQ(fm1->lambda(1.0), -std::numeric_limits<double>::infinity());
}

TEST(Schedules, ParameterOverrides) {
  auto s = make_schedule("vp-linear", {{"beta_max", 10}});
  // log alpha(1) = -(b1 - b0)/4 - b0/2 with b1 = 10.
  EXPECT_NEAR(std::log(s->alpha(1.0)), -(10 - 0.1) / 4 - 0.05, 1e-15);
  EXPECT_NE(s->describe().find("beta_max=10"), std::string::npos) << s->describe();
  auto sub = make_schedule("sub-vp", {{"beta_min", 0.2}, {"beta_max", 5}});
  EXPECT_NEAR(std::log(sub->alpha(0.5)), -0.25 * 0.25 * 4.8 - 0.25 * 0.2, 1e-15);
  auto ve = make_schedule("ve", {{"sigma_min", 0.02}, {"sigma_max", 100}});
  EXPECT_NEAR(ve->sigma(0.0), 0.02, 1e-17);
  EXPECT_NEAR(ve->sigma(1.0), 100.0, 1e-12);
  auto cosine = make_schedule("vp-cosine", {{"s", 0.02}});
  const double th0 = std::numbers::pi / 2 * 0.02 / 1.02;
  EXPECT_NEAR(cosine->alpha(0.5), std::cos(std::numbers::pi / 2 * 0.52 / 1.02) / std::cos(th0), 1e-15);
}

// Expects InputError whose message contains every fragment.
void expect_input_error(const std::string& name, const ScheduleParams& p, std::vector<std::string> fragments) {
  try {
    make_schedule(name, p);
    ADD_FAILURE() << name << ": bad parameters accepted";
  } catch (const InputError& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(Schedules, BadParameters) {
  expect_input_error("vp-linear", {{"beta_mx", 10}}, {"'beta_mx'", "did you mean 'beta_max'"});
  expect_input_error("vp-linear", {{"beta_min", -0.1}}, {"beta_min", "> 0"});
  expect_input_error("vp-linear", {{"beta_max", -20}}, {"beta_max", "> 0"});
  expect_input_error("sub-vp", {{"beta_min", 0}}, {"beta_min"});
  expect_input_error("vp-cosine", {{"s", -0.008}}, {"parameter s ", "> 0"});
  expect_input_error("ve", {{"sigma_min", -1}}, {"sigma_min"});
  expect_input_error("ve", {{"sigma_max", 0.001}}, {"sigma_max"});  // sigma_max <= sigma_min
  expect_input_error("vp-linear", {{"t_lo", 0.5}, {"t_hi", 0.5}}, {"t_lo", "t_hi"});
  expect_input_error("vp-linear", {{"t_lo", 0.9}, {"t_hi", 0.1}}, {"t_lo", "t_hi"});
  expect_input_error("vp-linear", {{"t_hi", 1.5}}, {"domain"});  // beyond the natural domain
  expect_input_error("edm", {{"t_lo", 0.0}}, {"sigma(t_lo"});     // sigma(t_lo) = 0 is not a sampling end
  expect_input_error("edm", {{"t_lo", -1.0}}, {"domain"});
}

}  // namespace
}  // namespace flowgauge
