// Exact linear maps between score, eps-, x0-, v- and velocity-predictions (closed_forms.md
// sections 3 and 8.1). Ground truth is a known pair (x0, eps) with x = alpha x0 + sigma eps, so
// every representation has an exact value; tolerances are rounding bounds: 16 eps times the sum of
// the magnitudes of the terms each formula adds, divided by its denominator.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "analytics/parameterization.hpp"
#include "analytics/schedule.hpp"

namespace flowgauge {
namespace {

using Eigen::ArrayXXd;
using Eigen::MatrixXd;
constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr int kD = 5, kN = 7;

std::vector<double> times(const Schedule& s) {
  const double lo = s.t_lo(), hi = s.t_hi();
  std::vector<double> t;
  for (double u : {0.0, 1e-3, 0.1, 0.5, 0.9, 0.999, 1.0}) t.push_back(lo + (hi - lo) * u);
  if (lo > 0)
    for (double u : {0.25, 0.5, 0.75}) t.push_back(lo * std::pow(hi / lo, u));
  return t;
}

// Column-wise max of |got - want| / scale must be <= 16 eps.
void expect_rounding(const MatrixXd& got, const MatrixXd& want, const ArrayXXd& scale, const std::string& what) {
  const ArrayXXd ratio = (got - want).array().abs() / (16 * kEps * scale);
  Eigen::Index i, j;
  const double worst = ratio.maxCoeff(&i, &j);
  EXPECT_LE(worst, 1.0) << what << ": entry (" << i << "," << j << ") got " << got(i, j) << " want " << want(i, j)
                        << " (" << worst << " x the rounding bound " << 16 * kEps * scale(i, j) << ")";
}

class Conversions : public ::testing::TestWithParam<std::string> {};

TEST_P(Conversions, RoundTripsToRoundingError) {
  const auto s = make_schedule(GetParam());
  std::mt19937_64 g(12345);
  std::normal_distribution<double> n;
  for (double t : times(*s)) {
    const TimePoint p = s->at(t);
    SCOPED_TRACE(GetParam() + " t = " + std::to_string(t));
    ASSERT_GT(p.alpha, 0);
    ASSERT_GT(p.sigma, 0);
    MatrixXd x0(kD, kN), eps(kD, kN);
    for (int i = 0; i < kD; ++i)
      for (int j = 0; j < kN; ++j) {
        x0(i, j) = 2 * n(g);
        eps(i, j) = n(g);
      }
    const double a = p.alpha, sg = p.sigma, ad = p.alpha_dot, sd = p.sigma_dot;
    const MatrixXd x = a * x0 + sg * eps;
    const ArrayXXd X = x.array().abs(), X0 = x0.array().abs(), E = eps.array().abs();
    const ArrayXXd Xerr = a * X0 + sg * E;  // x itself carries eps x this

    // score <-> eps: score = -eps / sigma.
    const MatrixXd score = param::score_from_eps(p, eps);
    expect_rounding(score, -eps / sg, E / sg, "score_from_eps");
    expect_rounding(param::eps_from_score(p, score), eps, E, "eps_from_score");
    // x0 <-> score (Tweedie).
    expect_rounding(param::x0_from_score(p, x, score), x0, (X + Xerr + sg * E) / a, "x0_from_score");
    expect_rounding(param::score_from_x0(p, x, x0), score, (a * X0 + X + Xerr) / (sg * sg), "score_from_x0");
    // x0 <-> eps.
    expect_rounding(param::x0_from_eps(p, x, eps), x0, (X + Xerr + sg * E) / a, "x0_from_eps");
    expect_rounding(param::eps_from_x0(p, x, x0), eps, (X + Xerr + a * X0) / sg, "eps_from_x0");
    // v = alpha eps - sigma x0 <-> (x0, eps).
    const MatrixXd v = param::v_from(p, x0, eps);
    const ArrayXXd V = a * E + sg * X0;
    const double n2 = a * a + sg * sg;
    expect_rounding(v, a * eps - sg * x0, V, "v_from");
    expect_rounding(param::x0_from_v(p, x, v), x0, (a * (X + Xerr) + sg * V) / n2, "x0_from_v");
    expect_rounding(param::eps_from_v(p, x, v), eps, (sg * (X + Xerr) + a * V) / n2, "eps_from_v");
    // u = alpha_dot x0 + sigma_dot eps <-> (x0, eps); Delta = alpha sigma_dot - sigma alpha_dot.
    const MatrixXd u = param::u_from(p, x0, eps);
    const ArrayXXd U = std::abs(ad) * X0 + std::abs(sd) * E;
    const double delta = param::delta(p);
    EXPECT_GT(delta, 0);
    expect_rounding(u, ad * x0 + sd * eps, U, "u_from");
    expect_rounding(param::x0_from_u(p, x, u), x0, (std::abs(sd) * (X + Xerr) + sg * U) / delta, "x0_from_u");
    expect_rounding(param::eps_from_u(p, x, u), eps, (a * U + std::abs(ad) * (X + Xerr)) / delta, "eps_from_u");
    // Chain score -> eps -> x0 -> v -> (x0, eps) -> u -> eps -> score: each stage adds its own
    // rounding bound and passes on its inputs' errors through the (known) linear map.
    const MatrixXd e1 = param::eps_from_score(p, score);
    const MatrixXd d1 = param::x0_from_eps(p, x, e1);
    const MatrixXd v1 = param::v_from(p, d1, e1);
    const MatrixXd d2 = param::x0_from_v(p, x, v1), e2 = param::eps_from_v(p, x, v1);
    const MatrixXd u1 = param::u_from(p, d2, e2);
    const MatrixXd e3 = param::eps_from_u(p, x, u1);
    const MatrixXd s3 = param::score_from_eps(p, e3);
    const double r = 16 * kEps;  // per-stage unit, as in expect_rounding
    const ArrayXXd err_e1 = r * E;
    const ArrayXXd err_d1 = r * (X + Xerr + sg * E) / a + sg / a * err_e1;
    const ArrayXXd err_v1 = r * V + a * err_e1 + sg * err_d1;
    const ArrayXXd err_d2 = r * (a * (X + Xerr) + sg * V) / n2 + sg / n2 * err_v1;
    const ArrayXXd err_e2 = r * (sg * (X + Xerr) + a * V) / n2 + a / n2 * err_v1;
    const ArrayXXd err_u1 = r * U + std::abs(ad) * err_d2 + std::abs(sd) * err_e2;
    const ArrayXXd err_e3 = r * (a * U + std::abs(ad) * (X + Xerr)) / delta + a / delta * err_u1;
    const ArrayXXd chain = (r * E + err_e3) / sg;
    expect_rounding(s3, score, chain / r, "chain score -> eps -> x0 -> v -> u -> eps -> score");
  }
}

TEST_P(Conversions, VelocityEqualsDriftMinusHalfG2Score) {
  // u = alpha_dot x0 + sigma_dot eps = f x - 0.5 g^2 s (closed_forms section 3) with f, g^2 from
  // Schedule::f, Schedule::g2. The two right-hand terms can nearly cancel (VP at t ~ 1, fm-linear at
  // t ~ 1), so the bound is relative to their magnitudes, not to |u|.
  const auto s = make_schedule(GetParam());
  std::mt19937_64 g(777);
  std::normal_distribution<double> n;
  for (double t : times(*s)) {
    const TimePoint p = s->at(t);
    SCOPED_TRACE(GetParam() + " t = " + std::to_string(t));
    MatrixXd x0(kD, kN), eps(kD, kN);
    for (int i = 0; i < kD; ++i)
      for (int j = 0; j < kN; ++j) {
        x0(i, j) = n(g);
        eps(i, j) = n(g);
      }
    const MatrixXd x = p.alpha * x0 + p.sigma * eps;
    const MatrixXd score = param::score_from_eps(p, eps);
    const double f = s->f(t), g2 = s->g2(t);
    const MatrixXd sde = f * x - 0.5 * g2 * score;
    const MatrixXd u = param::u_from(p, x0, eps);
    const ArrayXXd scale = std::abs(f) * (x.array().abs() + p.alpha * x0.array().abs() + p.sigma * eps.array().abs()) +
                           0.5 * g2 * score.array().abs() + std::abs(p.alpha_dot) * x0.array().abs() +
                           std::abs(p.sigma_dot) * eps.array().abs();
    expect_rounding(u, sde, scale, "u_from vs f x - g^2 s / 2");
    // g^2 = alpha^2 d/dt (sigma^2 / alpha^2) = 2 sigma sigma_dot - 2 f sigma^2 (section 1).
    const double t1 = 2 * p.sigma * p.sigma_dot, t2 = 2 * f * p.sigma * p.sigma;
    EXPECT_NEAR(g2, t1 - t2, 16 * kEps * (std::abs(t1) + std::abs(t2)));
  }
}

TEST_P(Conversions, PredictionsFromOneScoreReassembleTheState) {
  // For ANY score s (not just the exact one), x0hat and epshat from it satisfy x = alpha x0hat +
  // sigma epshat; v and u built from them convert back to the same pair.
  const auto s = make_schedule(GetParam());
  std::mt19937_64 g(99);
  std::normal_distribution<double> n;
  for (double t : times(*s)) {
    const TimePoint p = s->at(t);
    MatrixXd x(kD, kN), sc(kD, kN);
    for (int i = 0; i < kD; ++i)
      for (int j = 0; j < kN; ++j) {
        x(i, j) = 3 * n(g);
        sc(i, j) = n(g) / p.sigma;
      }
    const MatrixXd d = param::x0_from_score(p, x, sc), e = param::eps_from_score(p, sc);
    const ArrayXXd scale = x.array().abs() + p.sigma * p.sigma * sc.array().abs();
    expect_rounding(p.alpha * d + p.sigma * e, x, 2 * scale, GetParam() + " x = alpha x0hat + sigma epshat");
    // Nested expressions (temporaries inside temporaries) evaluate to the same numbers as stepwise.
    const MatrixXd nested = param::x0_from_eps(p, x, param::eps_from_score(p, sc));
    const MatrixXd stepwise = param::x0_from_eps(p, x, e);
    EXPECT_TRUE(nested.isApprox(stepwise, 4 * kEps) || (nested - stepwise).norm() <= 4 * kEps * x.norm() / p.alpha);
    MatrixXd out(kD, kN);
    out.noalias() = param::score_from_x0(p, x, param::x0_from_score(p, x, sc));
    const ArrayXXd sscale = (x.array().abs() + p.alpha * d.array().abs() + p.sigma * p.sigma * sc.array().abs()) /
                            (p.sigma * p.sigma);
    expect_rounding(out, sc, 2 * sscale, GetParam() + " score -> x0 -> score");
  }
}

INSTANTIATE_TEST_SUITE_P(Schedules, Conversions, ::testing::ValuesIn(schedule_names()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

TEST(ConversionValues, HandComputedFmLinear) {
  // fm-linear at t = 0.25: alpha = 0.75, sigma = 0.25, alpha_dot = -1, sigma_dot = 1, Delta = 1.
  const TimePoint p{0.25, 0.75, 0.25, -1.0, 1.0};
  Eigen::VectorXd x0(2), eps(2);
  x0 << 1.0, -2.0;
  eps << 0.5, 4.0;
  const Eigen::VectorXd x = 0.75 * x0 + 0.25 * eps;  // (0.875, -0.5), exact in binary
  Eigen::VectorXd v = param::v_from(p, x0, eps), u = param::u_from(p, x0, eps);
  EXPECT_EQ(v, (Eigen::VectorXd(2) << 0.125, 3.5).finished());   // 0.75 eps - 0.25 x0
  EXPECT_EQ(u, (Eigen::VectorXd(2) << -0.5, 6.0).finished());    // eps - x0 (rectified flow)
  Eigen::VectorXd sc = param::score_from_eps(p, eps);
  EXPECT_EQ(sc, (Eigen::VectorXd(2) << -2.0, -16.0).finished());  // -eps / 0.25
  EXPECT_EQ(param::delta(p), 1.0);
}

}  // namespace
}  // namespace flowgauge
