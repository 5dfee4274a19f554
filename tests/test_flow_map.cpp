// Exact PF-ODE flow map for single-Gaussian data (closed_forms.md section 5), checked against an
// independent numerical integration of dx/dt = alpha_dot x0hat + sigma_dot epshat with Boost.Odeint
// (Eigen state, vector_space_algebra), driven by the mixture's exact score.
#include <gtest/gtest.h>

#include <Eigen/LU>
#include <boost/numeric/odeint.hpp>
#include <boost/numeric/odeint/external/eigen/eigen.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "analytics/gaussian_flow.hpp"
#include "analytics/mixture.hpp"
#include "analytics/schedule.hpp"
#include "tests/fixtures.hpp"

namespace flowgauge {
namespace {

namespace odeint = boost::numeric::odeint;
using Stepper = odeint::runge_kutta_dopri5<Eigen::VectorXd, double, Eigen::VectorXd, double, odeint::vector_space_algebra>;
constexpr double kEps = std::numeric_limits<double>::epsilon();

// PF-ODE right-hand side from the exact score: x0 = (x + sigma^2 s)/alpha, eps = -sigma s.
// With augment = true the state is [x; ell] and ell' = div u = d f + 0.5 sigma^2 lambda_dot tr J_s
// (closed_forms section 4), so ell accumulates the log-determinant of the flow map (Liouville).
struct PfOde {
  const GaussianMixture& gm;
  const Schedule& s;
  bool augment = false;
  long* calls = nullptr;  // odeint copies the system, so count through a pointer
  void operator()(const Eigen::VectorXd& y, Eigen::VectorXd& dydt, double t) const {
    if (calls) ++*calls;
    const int d = gm.dim();
    const double a = s.alpha(t), sg = s.sigma(t), ad = s.alpha_dot(t), sd = s.sigma_dot(t);
    const MixtureEval ev = gm.evaluate(y.head(d), a, sg, augment ? (kScore | kTrace) : kScore);
    const Eigen::VectorXd sc = ev.score.col(0);
    const Eigen::VectorXd x0 = (y.head(d) + sg * sg * sc) / a;
    const Eigen::VectorXd eps = -sg * sc;
    dydt.resize(y.size());
    dydt.head(d) = ad * x0 + sd * eps;
    if (augment) dydt(d) = d * s.f(t) + 0.5 * sg * sg * s.lambda_dot(t) * ev.trace(0);
  }
};

// Integrates from ta to tb (either direction) with dopri5 at abs = rel = 1e-12.
Eigen::VectorXd integrate(const PfOde& ode, Eigen::VectorXd y, double ta, double tb) {
  auto stepper = odeint::make_controlled(1e-12, 1e-12, Stepper());
  odeint::integrate_adaptive(stepper, ode, y, ta, tb, (tb - ta) * 1e-3);
  return y;
}

// The schedules of the brief plus the others whose t_hi keeps alpha > 0 (x0 = .../alpha).
const std::vector<std::string> kSchedules = {"vp-linear", "edm", "fm-linear", "vp-cosine", "sub-vp", "ve", "fm-cosine"};

class FlowMap : public ::testing::TestWithParam<std::string> {};

TEST_P(FlowMap, MatchesOdeintIntegration) {
  const auto s = make_schedule(GetParam());
  const GaussianMixture gm = testing::single_gaussian(3, 42);
  const GaussianFlow flow(gm);
  const double ta = s->t_hi(), tb = s->t_lo();
  // Start points drawn from p_{t_hi}, plus one far in the tail.
  MatrixXd X = gm.sample(s->alpha(ta), s->sigma(ta), 17, 4);
  Eigen::VectorXd dir(3);
  dir << 1, -1, 0.5;
  X.col(3) = gm.marginal_mean(s->alpha(ta)) + 4 * s->sigma(ta) * dir;
  MatrixXd Y = X;
  flow.transport(Y, *s, ta, tb);
  long calls = 0;
  PfOde ode{gm, *s, false, &calls};
  for (int j = 0; j < X.cols(); ++j) {
    const Eigen::VectorXd y = integrate(ode, X.col(j), ta, tb);
    // dopri5 keeps each step's local error below 1e-12 (abs + rel |y|) over a few hundred steps
    // (< 2000 evaluations per point were measured) and the flow contracts towards t_lo, so the
    // global error stays below ~100 x 1e-12: compare at 1e-10 (|y| + 1). Observed: <= 3e-12.
    EXPECT_LE((y - Y.col(j)).norm(), 1e-10 * (Y.col(j).norm() + 1))
        << GetParam() << " column " << j << "\n odeint " << y.transpose() << "\n exact  " << Y.col(j).transpose();
  }
  // The integration did real work: not a trivially short path.
  EXPECT_GT(calls, 4 * 50) << GetParam();
  // And the reverse direction (t_lo -> t_hi), from the exact end points.
  for (int j = 0; j < 2; ++j) {
    const Eigen::VectorXd x = integrate(ode, Y.col(j), tb, ta);
    // Backwards the flow expands errors by up to max_i sqrt(c_i(t_hi) / c_i(t_lo)); the fixture's
    // eigenvalues lie in [0.1, 2], which bounds that factor. Loosen by it.
    const double expand = std::sqrt((s->alpha(ta) * s->alpha(ta) * 2.0 + s->sigma(ta) * s->sigma(ta)) /
                                    (s->alpha(tb) * s->alpha(tb) * 0.1 + s->sigma(tb) * s->sigma(tb)));
    EXPECT_LE((x - X.col(j)).norm(), 1e-10 * expand * (X.col(j).norm() + 1)) << GetParam() << " reverse " << j;
  }
}

TEST_P(FlowMap, LogDeterminantMatchesLiouville) {
  // ell' = div u integrated along a trajectory equals log det of the map (any trajectory: for a
  // Gaussian the Jacobian is the same everywhere).
  const auto s = make_schedule(GetParam());
  const GaussianMixture gm = testing::single_gaussian(3, 42);
  const GaussianFlow flow(gm);
  const double ta = s->t_hi(), tb = s->t_lo();
  PfOde ode{gm, *s, true};
  Eigen::VectorXd y0(4);
  y0 << gm.sample(s->alpha(ta), s->sigma(ta), 3, 1).col(0), 0.0;
  const Eigen::VectorXd y = integrate(ode, y0, ta, tb);
  const double ld = flow.logdet(s->alpha(ta), s->sigma(ta), s->alpha(tb), s->sigma(tb));
  // Same dopri5 error budget as the state: 1e-10 (|ell| + 1). Observed: <= 6e-12.
  EXPECT_NEAR(y(3), ld, 1e-10 * (std::abs(ld) + 1)) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Schedules, FlowMap, ::testing::ValuesIn(kSchedules),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

// Jacobian of the map by central differences. The map is affine, so central differences have no
// truncation error: only rounding, ~eps |x| / h per entry.
MatrixXd fd_jacobian(const GaussianFlow& flow, const Eigen::VectorXd& x, double aa, double sa, double ab, double sb,
                     double h) {
  const int d = flow.dim();
  MatrixXd P(d, 2 * d);
  for (int i = 0; i < d; ++i) {
    P.col(2 * i) = x;
    P.col(2 * i + 1) = x;
    P(i, 2 * i) += h;
    P(i, 2 * i + 1) -= h;
  }
  flow.transport(P, aa, sa, ab, sb);
  MatrixXd J(d, d);
  for (int i = 0; i < d; ++i) J.col(i) = (P.col(2 * i) - P.col(2 * i + 1)) / (2 * h);
  return J;
}

TEST(GaussianFlowMap, LogDeterminantMatchesFiniteDifferenceJacobian) {
  const GaussianMixture gm = testing::single_gaussian(5, 7);
  const GaussianFlow flow(gm);
  const auto s = make_schedule("vp-linear");
  for (auto [ta, tb] : std::vector<std::pair<double, double>>{{1.0, 1e-3}, {0.3, 0.7}, {0.5, 0.05}}) {
    const double aa = s->alpha(ta), sa = s->sigma(ta), ab = s->alpha(tb), sb = s->sigma(tb);
    const Eigen::VectorXd x = gm.sample(aa, sa, 1, 1).col(0);
    const MatrixXd J = fd_jacobian(flow, x, aa, sa, ab, sb, 0.1);
    // Entries carry ~eps (|x| + |T x|) / h ~ 1e-14; log det moves by ~ d cond(J) x that relative.
    EXPECT_NEAR(std::log(J.determinant()), flow.logdet(aa, sa, ab, sb), 1e-11) << ta << " -> " << tb;
    // The PF-ODE map of a Gaussian is the gradient of a convex potential: J symmetric positive.
    EXPECT_LE((J - J.transpose()).cwiseAbs().maxCoeff(), 1e-12 * J.cwiseAbs().maxCoeff());
    // It pushes p_a = N(alpha_a mu, C_a) onto p_b exactly: J C_a J^T = C_b, and the mean to the mean.
    const MatrixXd Ca = gm.marginal_cov(aa, sa), Cb = gm.marginal_cov(ab, sb);
    EXPECT_LE((J * Ca * J.transpose() - Cb).cwiseAbs().maxCoeff(), 1e-12 * Cb.cwiseAbs().maxCoeff());
    MatrixXd m = gm.marginal_mean(aa);
    flow.transport(m, aa, sa, ab, sb);
    EXPECT_LE((m - gm.marginal_mean(ab)).norm(), 1e-14 * (gm.marginal_mean(ab).norm() + 1));
  }
}

TEST(GaussianFlowMap, CompositionAndInverse) {
  const GaussianMixture gm = testing::single_gaussian(4, 9);
  const GaussianFlow flow(gm);
  const auto s = make_schedule("edm");
  const double ta = 80, tb = 3, tc = 0.002;
  const MatrixXd X = gm.sample(1.0, ta, 5, 16);
  MatrixXd two = X, one = X;
  flow.transport(two, *s, ta, tb);
  flow.transport(two, *s, tb, tc);
  flow.transport(one, *s, ta, tc);
  // Three O(d) products per map: a few eps relative to the point sizes.
  EXPECT_LE((two - one).cwiseAbs().maxCoeff(), 64 * kEps * X.cwiseAbs().maxCoeff());
  EXPECT_NEAR(flow.logdet(1, ta, 1, tb) + flow.logdet(1, tb, 1, tc), flow.logdet(1, ta, 1, tc), 1e-13);
  // a -> b -> a is the identity.
  MatrixXd back = X;
  flow.transport(back, *s, ta, tb);
  flow.transport(back, *s, tb, ta);
  EXPECT_LE((back - X).cwiseAbs().maxCoeff(), 64 * kEps * X.cwiseAbs().maxCoeff());
  // Composition across schedules that share (alpha, sigma) values: the map only depends on them.
  MatrixXd viaMixed = X;
  flow.transport(viaMixed, 1.0, ta, 1.0, tb);
  flow.transport(viaMixed, 1.0, tb, 1.0, tc);
  EXPECT_LE((viaMixed - one).cwiseAbs().maxCoeff(), 64 * kEps * X.cwiseAbs().maxCoeff());
  // The mean-plus-mixture constructor agrees with the from-mixture one.
  const GaussianFlow flow2(gm.mean(0), gm.components()[0].cov);
  MatrixXd Z = X;
  flow2.transport(Z, *s, ta, tc);
  EXPECT_LE((Z - one).cwiseAbs().maxCoeff(), 64 * kEps * X.cwiseAbs().maxCoeff());
  EXPECT_THROW(GaussianFlow(testing::gmm8_2d()), std::invalid_argument);
}

}  // namespace
}  // namespace flowgauge
