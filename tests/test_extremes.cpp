// Extremes (issue 10, "Numerical trouble"): numerically rank-deficient covariances, d = 1024,
// K = 256, weights down to 1e-300, covariance eigenvalues from 1e-12 to 1e6, and t at both ends of
// every schedule's domain. Each result is finite and within a stated bound of an independent
// long-double route, or the failure is named (InputError naming key and value, or the documented
// std::domain_error for a singular C_k(t)).
#include <gtest/gtest.h>

#include <Eigen/Cholesky>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "analytics/errors.hpp"
#include "analytics/mixture.hpp"
#include "analytics/mixture_io.hpp"
#include "analytics/schedule.hpp"
#include "experiments/config.hpp"
#include "solvers/multistep/common.hpp"
#include "solvers/brownian/brownian_tree.hpp"
#include "solvers/solver.hpp"
#include "tests/fixtures.hpp"

namespace flowgauge {
namespace {

using LD = long double;
using MatL = Eigen::Matrix<LD, Eigen::Dynamic, Eigen::Dynamic>;
using VecL = Eigen::Matrix<LD, Eigen::Dynamic, 1>;
constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr unsigned kAll = kLogp | kScore | kTrace | kResp | kDenoiser;

MatrixXd gaussian_matrix(int rows, int cols, unsigned seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> n;
  MatrixXd A(rows, cols);
  for (Eigen::Index j = 0; j < A.cols(); ++j)
    for (Eigen::Index i = 0; i < A.rows(); ++i) A(i, j) = n(g);
  return A;
}

bool all_finite(const MixtureEval& ev) {
  return ev.logp.allFinite() && ev.score.allFinite() && ev.trace.allFinite() && ev.resp.allFinite() &&
         ev.x0.allFinite();
}

// ---- straightforward long-double reference: per component Cholesky, log-sum-exp by hand ----

struct RefEval {
  VectorXd logp, trace;
  MatrixXd score, x0, resp;
};

// Evaluates sum_k w_k N(x; alpha mu_k, alpha^2 S_k + sigma^2 I) in long double from the double
// inputs: C_k = L L^T, log det = 2 sum log L_ii, z = C^-1 y by two triangular solves.
RefEval reference(const std::vector<Component>& comps, const MatrixXd& X, double alpha, double sigma) {
  const int K = static_cast<int>(comps.size()), d = static_cast<int>(X.rows());
  const Eigen::Index N = X.cols();
  LD total = 0;
  for (const auto& c : comps) total += c.weight;
  struct Fac {
    Eigen::LLT<MatL> llt;
    LD logdet, trinv, logw;
    VecL mu;
    MatL S;
  };
  std::vector<Fac> f;
  for (const auto& c : comps) {
    Fac r;
    r.S = (0.5 * (c.cov + c.cov.transpose())).cast<LD>();
    const MatL C = LD(alpha) * LD(alpha) * r.S + LD(sigma) * LD(sigma) * MatL::Identity(d, d);
    r.llt.compute(C);
    r.logdet = 0;
    for (int i = 0; i < d; ++i) r.logdet += 2 * std::log(r.llt.matrixL()(i, i));
    r.trinv = r.llt.solve(MatL::Identity(d, d)).trace();
    r.logw = std::log(static_cast<LD>(c.weight) / total);
    r.mu = c.mean.cast<LD>();
    f.push_back(std::move(r));
  }
  RefEval out{VectorXd(N), VectorXd(N), MatrixXd(d, N), MatrixXd(d, N), MatrixXd(K, N)};
  const LD log2pi = std::log(2 * std::numbers::pi_v<LD>);
  for (Eigen::Index j = 0; j < N; ++j) {
    const VecL x = X.col(j).cast<LD>();
    std::vector<LD> logn(K);
    std::vector<VecL> z(K);
    LD m = -std::numeric_limits<LD>::infinity();
    for (int k = 0; k < K; ++k) {
      const VecL y = x - LD(alpha) * f[k].mu;
      z[k] = f[k].llt.solve(y);
      logn[k] = f[k].logw - 0.5L * (d * log2pi + f[k].logdet + y.dot(z[k]));
      m = std::max(m, logn[k]);
    }
    LD acc = 0;
    for (int k = 0; k < K; ++k) acc += std::exp(logn[k] - m);
    const LD lse = m + std::log(acc);
    VecL s = VecL::Zero(d), x0 = VecL::Zero(d);
    LD tr = 0;
    for (int k = 0; k < K; ++k) {
      const LD r = std::exp(logn[k] - lse);
      out.resp(k, j) = static_cast<double>(r);
      s -= r * z[k];
      x0 += r * (f[k].mu + LD(alpha) * (f[k].S * z[k]));
      tr += r * (z[k].squaredNorm() - f[k].trinv);
    }
    tr -= s.squaredNorm();
    out.logp(j) = static_cast<double>(lse);
    out.trace(j) = static_cast<double>(tr);
    out.score.col(j) = s.cast<double>();
    out.x0.col(j) = x0.cast<double>();
  }
  return out;
}

// Condition number of C_k(t) = alpha^2 S_k + sigma^2 I, largest over the components.
double kappa_t(const GaussianMixture& gm, double alpha, double sigma) {
  double kappa = 1;
  for (int k = 0; k < gm.size(); ++k) {
    const VectorXd c = (alpha * alpha * gm.eigvals(k).array() + sigma * sigma).matrix();
    kappa = std::max(kappa, c.maxCoeff() / c.minCoeff());
  }
  return kappa;
}

// Error bound for the library against the reference, from its algorithm class:
//  - the eigensolver is backward stable, so the decomposition used is exact for S_k + E_k with
//    ||E_k|| <= p eps ||S_k|| (p = 16 d covers Householder tridiagonalization + QR, Golub & Van
//    Loan 8.4; p = 0 for diagonal S_k, read off exactly). That perturbs C_k(t) by a relative
//    rel = p eps kappa(C_k(t)) at most; to first order log N_k moves by rel (quad_k + d) / 2, z_k
//    = C_k^-1 y_k by rel |z_k|;
//  - the projections y_k = U_k^T x - alpha U_k^T mu_k carry ey = 4 d eps (|x| + alpha |mu_k|)
//    (sums of d products), so z_k carries ey / c_min and log N_k 2 |z_k| ey;
//  - responsibilities move by r_k times the log N error (twice: theirs and the log-sum-exp's), and
//    carry it into the score (|z|), the trace (|z|^2 + tr C^-1) and the denoiser (|mu| + alpha |S||z|);
//  - plus 64 eps of every value's own size (the final sums).
// The bound takes the worst component at each point.
struct Tol {
  double logp, score, trace, x0;
};
Tol bound(const GaussianMixture& gm, const RefEval& ref, const MatrixXd& X, Eigen::Index j, double alpha,
          double sigma, double p) {
  const int d = gm.dim();
  const double rel = p * kEps * kappa_t(gm, alpha, sigma);
  double quad = 0, zmax = 0, smax = 0, trinv = 0, mumax = 0, cinv = 0, logc = 0;
  for (int k = 0; k < gm.size(); ++k) {
    const VectorXd c = (alpha * alpha * gm.eigvals(k).array() + sigma * sigma).matrix();
    const VectorXd y = gm.eigvecs(k).transpose() * (X.col(j) - alpha * gm.mean(k));
    const VectorXd z = y.cwiseQuotient(c);
    quad = std::max(quad, y.dot(z));
    zmax = std::max(zmax, z.norm());
    smax = std::max(smax, gm.eigvals(k).maxCoeff());
    trinv = std::max(trinv, c.cwiseInverse().sum());
    cinv = std::max(cinv, 1 / c.minCoeff());
    mumax = std::max(mumax, gm.mean(k).norm());
    logc = std::max(logc, c.array().log().abs().sum());
  }
  const double ey = 4 * d * kEps * (X.col(j).norm() + alpha * mumax);
  const double ez = rel * zmax + ey * cinv;  // error of each z_k
  Tol t;
  t.logp = rel * (quad + d) + 2 * zmax * ey + 64 * kEps * (std::abs(ref.logp(j)) + quad + d + logc);
  const double er = 2 * t.logp;  // relative error of each responsibility
  t.score = ez + er * zmax + 64 * kEps * (ref.score.col(j).norm() + zmax);
  t.trace = 2 * zmax * ez + rel * trinv + er * (zmax * zmax + trinv) + 2 * ref.score.col(j).norm() * t.score +
            64 * kEps * (std::abs(ref.trace(j)) + trinv + zmax * zmax);
  t.x0 = alpha * smax * ez + er * (mumax + alpha * smax * zmax) + 64 * kEps * (ref.x0.col(j).norm() + mumax);
  return t;
}

void expect_close(const GaussianMixture& gm, const MatrixXd& X, double alpha, double sigma, double p,
                  const std::string& what) {
  const MixtureEval ev = gm.evaluate(X, alpha, sigma, kAll);
  ASSERT_TRUE(all_finite(ev)) << what;
  const RefEval ref = reference(gm.components(), X, alpha, sigma);
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    SCOPED_TRACE(what + ", column " + std::to_string(j));
    const Tol t = bound(gm, ref, X, j, alpha, sigma, p);
    EXPECT_NEAR(ev.logp(j), ref.logp(j), t.logp);
    EXPECT_LE((ev.score.col(j) - ref.score.col(j)).norm(), t.score);
    EXPECT_NEAR(ev.trace(j), ref.trace(j), t.trace);
    EXPECT_LE((ev.x0.col(j) - ref.x0.col(j)).norm(), t.x0);
    EXPECT_NEAR(ev.resp.col(j).sum(), 1.0, 64 * kEps);
  }
}

// ---------------------------------------------------------------------------------------------
// Rank-deficient covariances: S = A A^T with A d x r is singular, but its computed eigenvalues are
// +-1e-17 |S| rather than 0. They are zeros (eigenvalues <= d eps lambda_max, mixture.cpp).

TEST(ExtremesRankDeficient, AAtIsSingularExactlyLikeAnExactlySingularCovariance) {
  for (auto [d, r] : std::vector<std::pair<int, int>>{{6, 3}, {64, 10}, {200, 1}}) {
    SCOPED_TRACE("d = " + std::to_string(d) + ", r = " + std::to_string(r));
    const MatrixXd A = gaussian_matrix(d, r, 10 + d);
    const MatrixXd S = A * A.transpose();
    const GaussianMixture gm({{1.0, VectorXd::Zero(d), S}}, "AAt");
    // Exactly d - r zeros (ascending order: the first d - r), the rest clearly positive.
    EXPECT_EQ((gm.eigvals(0).array() == 0.0).count(), d - r);
    EXPECT_GT(gm.eigvals(0)(d - r), 1e-6 * gm.eigvals(0).maxCoeff());
    // An exactly singular covariance (zeros on the diagonal) of the same rank.
    VectorXd diag = VectorXd::Zero(d);
    diag.tail(r).setOnes();
    const GaussianMixture exact({{1.0, VectorXd::Zero(d), MatrixXd(diag.asDiagonal())}}, "exact");
    EXPECT_EQ((exact.eigvals(0).array() == 0.0).count(), d - r);
    // Both refused at sigma = 0 with the documented error, not answered with log p ~ 1e17.
    const MatrixXd x = MatrixXd::Zero(d, 1);
    std::string m1, m2;
    try {
      gm.evaluate(x, 1.0, 0.0, kLogp);
    } catch (const std::domain_error& e) {
      m1 = e.what();
    }
    try {
      exact.evaluate(x, 1.0, 0.0, kLogp);
    } catch (const std::domain_error& e) {
      m2 = e.what();
    }
    EXPECT_FALSE(m1.empty()) << "A A^T at sigma = 0 was evaluated";
    EXPECT_EQ(m1, m2);
  }
}

// At sigma > 0 the answer agrees with the exact rank-r Gaussian computed in long double through the
// factor A (Woodbury: no d x d matrix is rounded, so the null space is exact):
//   C = alpha^2 A A^T + sigma^2 I,  M = sigma^2 I_r + alpha^2 A^T A,
//   C^-1 y = (y - alpha^2 A M^-1 A^T y) / sigma^2,  log det C = (d - r) log sigma^2 + log det M.
TEST(ExtremesRankDeficient, AgreesWithTheExactFactorRouteInLongDouble) {
  const int d = 6, r = 3;
  const MatrixXd A = gaussian_matrix(d, r, 5);
  const VectorXd mu = VectorXd::LinSpaced(d, -1, 1);
  const GaussianMixture gm({{1.0, mu, A * A.transpose()}}, "AAt");
  const MatL AL = A.cast<LD>();
  const MatL AtA = AL.transpose() * AL;
  // Orthonormal basis of range(A), for the split y = y_range + y_null of the bound below.
  const MatL Qr = Eigen::HouseholderQR<MatL>(AL).householderQ() * MatL::Identity(d, r);
  const VectorXd sA = Eigen::SelfAdjointEigenSolver<MatrixXd>(A.transpose() * A).eigenvalues();  // nonzero s_i
  const double s_r = sA.minCoeff(), s_1 = sA.maxCoeff();
  for (double alpha : {1.0, 0.6}) {
    for (double sigma : {1e-6, 1e-3, 0.5}) {
      SCOPED_TRACE("alpha = " + std::to_string(alpha) + ", sigma = " + std::to_string(sigma));
      // Points of p_t drawn through the factor: alpha mu + alpha A z + sigma e.
      const MatrixXd X = (alpha * A * gaussian_matrix(r, 6, 7) + sigma * gaussian_matrix(d, 6, 8)).colwise() + alpha * mu;
      const MixtureEval ev = gm.evaluate(X, alpha, sigma, kAll);
      ASSERT_TRUE(all_finite(ev));
      const LD a = alpha, s2 = LD(sigma) * LD(sigma);
      const MatL M = s2 * MatL::Identity(r, r) + a * a * AtA;
      const Eigen::LLT<MatL> llt(M);
      LD logdetM = 0;
      for (int i = 0; i < r; ++i) logdetM += 2 * std::log(llt.matrixL()(i, i));
      const LD logdet = (d - r) * std::log(s2) + logdetM;
      const LD trinv = (d - a * a * llt.solve(AtA).trace()) / s2;
      // Davis-Kahan: the computed range of S is within theta = delta / s_r of range(A), delta = 16 d eps |S|.
      const double delta = 16 * d * kEps * s_1, theta = delta / s_r;
      for (Eigen::Index j = 0; j < X.cols(); ++j) {
        const VecL y = X.col(j).cast<LD>() - a * mu.cast<LD>();
        const VecL z = (y - a * a * AL * llt.solve(AL.transpose() * y)) / s2;
        const LD logp = -0.5L * (d * std::log(2 * std::numbers::pi_v<LD>) + logdet + y.dot(z));
        const VecL x0 = mu.cast<LD>() + a * AL * (AL.transpose() * z);
        const double yr = static_cast<double>((Qr.transpose() * y).norm());
        const double yn = static_cast<double>((y - Qr * (Qr.transpose() * y)).norm());
        const double s2d = sigma * sigma, cr = alpha * alpha * s_r + s2d;
        // Projections U^T x carry eps (|x| + alpha |mu|) each (the stored x is shared, not rounded again).
        const double proj = 16 * kEps * (X.col(j).norm() + alpha * mu.norm()) * std::sqrt(double(d));
        // log p: the rotated null space couples y_null and y_range through 1/sigma^2 (2 theta yn yr /
        // sigma^2 + theta^2 yr^2 / sigma^2); the nonzero eigenvalues move by delta (r delta / c_r on the
        // log det, yr^2 delta / c_r^2 on the quadratic form); projection rounding gives 2 proj yn / sigma^2.
        const double tol_logp = (2 * theta * yn * yr * alpha + theta * theta * yr * yr) / s2d +
                                alpha * alpha * delta * (r + yr * yr / cr) / cr + 2 * proj * (yn + yr) / s2d +
                                64 * kEps * std::abs(double(logp));
        const double znorm = static_cast<double>(z.norm());
        const double tol_score = theta * (yn + yr) / s2d + alpha * alpha * delta * yr / (cr * cr) + proj / s2d +
                                 64 * kEps * znorm;
        EXPECT_NEAR(ev.logp(j), double(logp), tol_logp) << "column " << j;
        EXPECT_LE((ev.score.col(j) + z.cast<double>()).norm(), tol_score) << "column " << j;
        // tr J_s = -tr C^-1 = -((d - r)/sigma^2 + sum_range 1/c_i): the (d - r)/sigma^2 part is exact
        // only with exact zeros (1e-17 eigenvalues moved it by 1e-5 relative at sigma = 1e-6).
        EXPECT_NEAR(ev.trace(j), -double(trinv), 64 * kEps * double(trinv) + r * alpha * alpha * delta / (cr * cr))
            << "column " << j;
        // Denoiser: alpha S C^-1 y has no null-space part; rotation leaks theta |z| alpha |S| into it.
        EXPECT_LE((ev.x0.col(j) - x0.cast<double>()).norm(),
                  alpha * s_1 * tol_score + 64 * kEps * static_cast<double>(x0.norm())) << "column " << j;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// d = 1024: Gaussians with known eigenvalues. S_k = H_k diag(ev) H_k with the Householder reflection
// H_k = I - 2 v v^T / |v|^2 (orthogonal and symmetric), so the closed form needs no factorization:
// log N = -(d log 2pi + sum log c_i + |diag(c)^-1/2 H y|^2) / 2, score = -H diag(1/c) H y,
// tr J_s = -sum 1/c_i for a single Gaussian.

struct Reflected {
  VectorXd v, ev;
  MatrixXd S;
};
Reflected reflected(int d, double lo, double hi, unsigned seed) {
  Reflected r;
  r.v = gaussian_matrix(d, 1, seed).col(0);
  r.ev.resize(d);
  for (int i = 0; i < d; ++i) r.ev(i) = lo * std::pow(hi / lo, double(i) / (d - 1));
  // S = H D H computed in long double, then rounded once.
  const VecL v = r.v.cast<LD>();
  const LD vv = v.squaredNorm();
  const VecL Dv = r.ev.cast<LD>().cwiseProduct(v);
  const LD vDv = v.dot(Dv);
  MatL S = r.ev.cast<LD>().asDiagonal();
  S -= (2 / vv) * (v * Dv.transpose() + Dv * v.transpose());
  S += (4 * vDv / (vv * vv)) * (v * v.transpose());
  r.S = S.cast<double>();
  return r;
}
VecL reflect(const VectorXd& v, const VecL& y) {  // H y in long double
  const VecL vl = v.cast<LD>();
  return y - (2 * vl.dot(y) / vl.squaredNorm()) * vl;
}

TEST(ExtremesDimension, D1024SingleGaussianMatchesTheClosedForm) {
  const int d = 1024;
  const Reflected g = reflected(d, 0.1, 2.0, 1);
  const VectorXd mu = VectorXd::LinSpaced(d, -1, 1);
  const GaussianMixture gm({{1.0, mu, g.S}}, "d1024");
  const double alpha = 0.8, sigma = 0.6;
  const MatrixXd X = gm.sample(alpha, sigma, 3, 4);
  const MixtureEval ev = gm.evaluate(X, alpha, sigma, kAll);
  ASSERT_TRUE(all_finite(ev));
  const VecL c = (LD(alpha) * LD(alpha) * g.ev.cast<LD>().array() + LD(sigma) * LD(sigma)).matrix();
  const LD logdet = c.array().log().sum(), trinv = c.cwiseInverse().sum();
  const double kappa = static_cast<double>(c.maxCoeff() / c.minCoeff());
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    const VecL y = X.col(j).cast<LD>() - LD(alpha) * mu.cast<LD>();
    const VecL Hy = reflect(g.v, y);
    const VecL z = reflect(g.v, Hy.cwiseQuotient(c));  // C^-1 y
    const LD quad = y.dot(z);
    const double logp = static_cast<double>(-0.5L * (d * std::log(2 * std::numbers::pi_v<LD>) + logdet + quad));
    // Backward-stable eigensolver, S rounded once: relative perturbation of C <= p eps kappa with
    // p = 16 d (bound() above); here kappa = 1.64 / 0.424 = 3.9, so 1.4e-11 relative.
    const double rel = 16 * d * kEps * kappa;
    EXPECT_NEAR(ev.logp(j), logp, rel * (static_cast<double>(quad) + d)) << j;
    EXPECT_LE((ev.score.col(j) + z.cast<double>()).norm(), rel * static_cast<double>(z.norm())) << j;
    EXPECT_NEAR(ev.trace(j), -static_cast<double>(trinv), rel * static_cast<double>(trinv)) << j;
    const VecL x0 = mu.cast<LD>() + LD(alpha) * reflect(g.v, g.ev.cast<LD>().cwiseProduct(reflect(g.v, z)));
    EXPECT_LE((ev.x0.col(j) - x0.cast<double>()).norm(), rel * static_cast<double>(x0.norm())) << j;
  }
}

// The same closed form for a mixture of such components (H = I for v = 0), log-sum-exp in long
// double: the reference for d = 1024 with K > 1 needs no d x d factorization at all.
struct Known {
  double weight;
  VectorXd mu, v, ev;  // S = H diag(ev) H, H = I - 2 v v^T / |v|^2 (I if v = 0)
};
RefEval reference_known(const std::vector<Known>& comps, const MatrixXd& X, double alpha, double sigma) {
  const int K = static_cast<int>(comps.size()), d = static_cast<int>(X.rows());
  const LD a = alpha, log2pi = std::log(2 * std::numbers::pi_v<LD>);
  LD total = 0;
  for (const auto& c : comps) total += c.weight;
  auto H = [](const Known& c, const VecL& y) { return c.v.squaredNorm() > 0 ? reflect(c.v, y) : y; };
  RefEval out{VectorXd(X.cols()), VectorXd(X.cols()), MatrixXd(d, X.cols()), MatrixXd(d, X.cols()), MatrixXd(K, X.cols())};
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    std::vector<LD> logn(K), trinv(K);
    std::vector<VecL> z(K), x0(K);
    LD m = -std::numeric_limits<LD>::infinity();
    for (int k = 0; k < K; ++k) {
      const Known& c = comps[k];
      const VecL cl = (a * a * c.ev.cast<LD>().array() + LD(sigma) * LD(sigma)).matrix();
      const VecL w = H(c, X.col(j).cast<LD>() - a * c.mu.cast<LD>());
      const VecL wc = w.cwiseQuotient(cl);
      logn[k] = std::log(LD(c.weight) / total) - 0.5L * (d * log2pi + cl.array().log().sum() + w.dot(wc));
      z[k] = H(c, wc);
      x0[k] = c.mu.cast<LD>() + a * H(c, c.ev.cast<LD>().cwiseProduct(wc));
      trinv[k] = cl.cwiseInverse().sum();
      m = std::max(m, logn[k]);
    }
    LD acc = 0;
    for (int k = 0; k < K; ++k) acc += std::exp(logn[k] - m);
    const LD lse = m + std::log(acc);
    VecL sc = VecL::Zero(d), xx = VecL::Zero(d);
    LD tr = 0;
    for (int k = 0; k < K; ++k) {
      const LD r = std::exp(logn[k] - lse);
      out.resp(k, j) = static_cast<double>(r);
      sc -= r * z[k];
      xx += r * x0[k];
      tr += r * (z[k].squaredNorm() - trinv[k]);
    }
    out.logp(j) = static_cast<double>(lse);
    out.trace(j) = static_cast<double>(tr - sc.squaredNorm());
    out.score.col(j) = sc.cast<double>();
    out.x0.col(j) = xx.cast<double>();
  }
  return out;
}

TEST(ExtremesDimension, D1024FiveComponentsMatchTheClosedForm) {
  const int d = 1024;
  std::vector<Known> known;
  std::vector<Component> comps;
  for (int k = 0; k < 3; ++k) {  // dense, rotated by a reflection
    const Reflected g = reflected(d, 0.05 * (k + 1), 1.0 + k, 20 + k);
    known.push_back({0.2 + 0.3 * k, 0.04 * gaussian_matrix(d, 1, 30 + k).col(0), g.v, g.ev});
    comps.push_back({known.back().weight, known.back().mu, g.S});
  }
  // An isotropic and a diagonal component (decomposed exactly, no eigensolver).
  known.push_back({0.3, VectorXd::Zero(d), VectorXd::Zero(d), VectorXd::Constant(d, 0.5)});
  known.push_back({0.3, VectorXd::Constant(d, 0.02), VectorXd::Zero(d), VectorXd::LinSpaced(d, 0.1, 1.5)});
  for (int k = 3; k < 5; ++k) comps.push_back({known[k].weight, known[k].mu, MatrixXd(known[k].ev.asDiagonal())});
  const GaussianMixture gm(comps, "d1024 K5");
  for (auto [alpha, sigma] : std::vector<std::pair<double, double>>{{0.8, 0.6}, {1.0, 0.05}}) {
    const MatrixXd X = gm.sample(alpha, sigma, 4, 6);
    const MixtureEval ev = gm.evaluate(X, alpha, sigma, kAll);
    ASSERT_TRUE(all_finite(ev));
    const RefEval ref = reference_known(known, X, alpha, sigma);
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      SCOPED_TRACE("d = 1024, K = 5, sigma = " + std::to_string(sigma) + ", column " + std::to_string(j));
      const Tol t = bound(gm, ref, X, j, alpha, sigma, 16 * d);  // S_k rounded once, then decomposed
      EXPECT_NEAR(ev.logp(j), ref.logp(j), t.logp);
      EXPECT_LE((ev.score.col(j) - ref.score.col(j)).norm(), t.score);
      EXPECT_NEAR(ev.trace(j), ref.trace(j), t.trace);
      EXPECT_LE((ev.x0.col(j) - ref.x0.col(j)).norm(), t.x0);
      EXPECT_NEAR(ev.resp.col(j).sum(), 1.0, 64 * kEps);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// K = 256 components in d = 3, overlapping (means ~ N(0, 2^2 I), covariances with eigenvalues in
// [0.05, 0.5]), against the per-component long-double log-sum-exp.

TEST(ExtremesComponents, K256MatchesThePerComponentLongDoubleEvaluation) {
  const int d = 3, K = 256;
  std::mt19937_64 g(256);
  std::uniform_real_distribution<double> u(0.1, 1.0);
  std::vector<Component> comps;
  const MatrixXd means = 2.0 * gaussian_matrix(d, K, 9);
  for (int k = 0; k < K; ++k) comps.push_back({u(g), means.col(k), testing::random_spd(d, 0.05, 0.5, 1000 + k)});
  const GaussianMixture gm(comps, "K256");
  for (auto [alpha, sigma] : std::vector<std::pair<double, double>>{{1.0, 0.01}, {0.8, 0.6}, {0.1, 0.995}}) {
    MatrixXd X = gm.sample(alpha, sigma, 5, 40);
    X.col(0).setConstant(30.0);  // far outside every mode: log-sum-exp of K values ~ -1e3
    expect_close(gm, X, alpha, sigma, 16 * d, "K = 256, sigma = " + std::to_string(sigma));
  }
}

// ---------------------------------------------------------------------------------------------
// Weights down to 1e-300 are kept to full precision; a weight that normalizes below the smallest
// normal double (2.2e-308: subnormal, ~3 digits at 1e-320, or 0) is refused by name.

TEST(ExtremesWeights, DownTo1e300AreExactAndSubnormalOnesAreRefusedByName) {
  const MatrixXd I = MatrixXd::Identity(2, 2);
  std::vector<Component> c = {{1.0, Eigen::Vector2d(0, 0), I},
                              {1e-100, Eigen::Vector2d(5, 0), 0.5 * I},
                              {1e-200, Eigen::Vector2d(0, 5), 0.2 * I},
                              {1e-300, Eigen::Vector2d(-5, 0), 0.1 * I}};
  const GaussianMixture gm(c, "tiny weights");
  const double total = 1.0 + 1e-100;  // 1e-200 and 1e-300 vanish in the double sum, as they should
  for (int k = 0; k < 4; ++k)  // w / total rounded once, log of it rounded once
    EXPECT_NEAR(gm.log_weights()(k), std::log(c[k].weight / total), 2 * kEps * std::abs(std::log(c[k].weight)));
  // At each tiny mode the responsibilities and the score match the long-double reference.
  MatrixXd X(2, 5);
  X << 0, 5, 0, -5, -40, 0, 0, 5, 0, 3;
  for (auto [alpha, sigma] : std::vector<std::pair<double, double>>{{1.0, 0.1}, {0.9, 0.4}}) {
    const MixtureEval ev = gm.evaluate(X, alpha, sigma, kAll);
    ASSERT_TRUE(all_finite(ev));
    const RefEval ref = reference(c, X, alpha, sigma);
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      // r_k = exp(log N_k - lse) is right to the error of log N_k and lse (bound() above), relative,
      // all the way down to the smallest normal double: the tiny weight costs no precision.
      const double er = 2 * bound(gm, ref, X, j, alpha, sigma, 16 * 2).logp;
      for (int k = 0; k < 4; ++k) {
        if (ref.resp(k, j) < std::numeric_limits<double>::min()) continue;
        EXPECT_NEAR(ev.resp(k, j), ref.resp(k, j), er * ref.resp(k, j)) << "k = " << k << ", column " << j;
      }
    }
    expect_close(gm, X, alpha, sigma, 16 * 2, "tiny weights");
  }
  // All weights tiny (or huge): normalization is exact, nothing underflows or overflows.
  const GaussianMixture tiny({{1e-300, Eigen::Vector2d(0, 0), I}, {3e-300, Eigen::Vector2d(1, 0), I}}, "t");
  EXPECT_DOUBLE_EQ(tiny.weights()(0), 0.25);
  const GaussianMixture huge({{1e308, Eigen::Vector2d(0, 0), I}, {1.5e308, Eigen::Vector2d(1, 0), I}}, "h");
  EXPECT_DOUBLE_EQ(huge.weights()(0), 0.4);
  // Subnormal, or normal but normalizing to a subnormal or 0: named error.
  for (auto [w0, w1] : std::vector<std::pair<double, double>>{{1.0, 1e-320}, {1e10, 1e-300}, {1e300, 1e-300}}) {
    try {
      GaussianMixture bad({{w0, Eigen::Vector2d(0, 0), I}, {w1, Eigen::Vector2d(1, 0), I}}, "unit");
      ADD_FAILURE() << "weights " << w0 << ", " << w1 << " accepted";
    } catch (const InputError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("unit: component[1].weight"), std::string::npos) << m;
      EXPECT_NE(m.find(fmt::format("{:.6g}", w1)), std::string::npos) << m;  // the value as given
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Covariance eigenvalues from 1e-12 to 1e6 (condition number 1e18).

VectorXd spread(int d, double lo, double hi) {
  VectorXd ev(d);
  for (int i = 0; i < d; ++i) ev(i) = lo * std::pow(hi / lo, double(i) / (d - 1));
  return ev;
}

TEST(ExtremesConditioning, DiagonalEigenvaluesFrom1e12To1e6AreExactAtEverySigma) {
  // Diagonal covariances are decomposed without rounding, so the spread costs nothing: the errors
  // are those of the elementwise arithmetic, 64 eps of the values (no kappa), even at sigma = 0.
  const int d = 8;
  const VectorXd ev = spread(d, 1e-12, 1e6);
  std::vector<Component> c = {{0.6, VectorXd::LinSpaced(d, -1, 1), MatrixXd(ev.asDiagonal())},
                              {0.4, VectorXd::Constant(d, 0.5), MatrixXd(ev.reverse().asDiagonal())}};
  const GaussianMixture gm(c, "spread diag");
  EXPECT_EQ(gm.eigvals(0), ev);  // exact
  for (double sigma : {0.0, 1e-9, 1e-3, 1.0}) {
    const MatrixXd X = gm.sample(1.0, sigma, 6, 8);
    expect_close(gm, X, 1.0, sigma, 0.0, "diagonal, sigma = " + std::to_string(sigma));
  }
}

TEST(ExtremesConditioning, RotatedEigenvaluesFrom1e12To1e6AreWithinTheConditionBound) {
  // Rotated, the matrix cannot hold them: S = Q diag(ev) Q^T rounded to double is exact only for
  // S + E with |E| ~ eps 1e6 = 2e-10, which swamps every eigenvalue below it. The library zeroes
  // those under d eps lambda_max (1.8e-9 here), so sigma = 0 is refused as singular, and at
  // sigma > 0 the error against the long-double reference of the same double S stays within the
  // backward-stability bound 16 d eps kappa(C_t) (bound() above; kappa(C_t) = 1e12 at sigma = 1e-3).
  const int d = 8;
  const VectorXd ev = spread(d, 1e-12, 1e6);
  const MatrixXd Q = Eigen::HouseholderQR<MatrixXd>(gaussian_matrix(d, d, 12)).householderQ();
  MatrixXd S = Q * ev.asDiagonal() * Q.transpose();
  S = 0.5 * (S + S.transpose());
  const GaussianMixture gm({{1.0, VectorXd::LinSpaced(d, -1, 1), S}}, "spread rotated");
  EXPECT_GT((gm.eigvals(0).array() == 0.0).count(), 0);
  EXPECT_THROW(gm.evaluate(MatrixXd::Zero(d, 1), 1.0, 0.0, kLogp), std::domain_error);
  for (double sigma : {1e-3, 0.1, 1.0}) {
    const MatrixXd X = gm.sample(1.0, sigma, 7, 8);
    expect_close(gm, X, 1.0, sigma, 16 * d, "rotated, sigma = " + std::to_string(sigma));
  }
}

// ---------------------------------------------------------------------------------------------
// t at both ends of every registered schedule's domain.

struct Ends {
  double t_lo, t_hi;
};

// The most extreme t_lo and t_hi the schedule accepts, tried from the natural domain's ends
// inwards; every refusal on the way must name the key and the value.
Ends extreme_ends(const std::string& name) {
  const auto def = make_schedule(name);
  const auto [a, b] = def->natural_domain();
  std::vector<double> lo = {a, std::nextafter(a, b), a + 1e-300, a + 1e-150, a + 1e-100, a + 1e-30, a + 1e-12,
                            a + 1e-6, def->t_lo()};
  std::vector<double> hi = {b, std::nextafter(b, a), 1e300, 1e200, 1e150, 1e100, 1e30, b - 1e-12, b - 1e-6,
                            def->t_hi()};
  Ends e{def->t_lo(), def->t_hi()};
  auto try_one = [&](const char* key, double v, double& out) {
    if (!std::isfinite(v) || v < a || v > b) return false;
    try {
      make_schedule(name, {{key, v}});
      out = v;
      return true;
    } catch (const InputError& err) {
      const std::string m = err.what();
      EXPECT_NE(m.find(key), std::string::npos) << m;
      EXPECT_NE(m.find(fmt::format("{}", v)), std::string::npos) << m;
      return false;
    }
  };
  for (double v : lo)
    if (try_one("t_lo", v, e.t_lo)) break;
  for (double v : hi)
    if (v > e.t_lo && try_one("t_hi", v, e.t_hi)) break;
  return e;
}

// Mixtures for the end checks: full rank, and rank-deficient (singular where sigma = 0).
std::vector<GaussianMixture> end_mixtures() {
  const MatrixXd A = gaussian_matrix(3, 1, 4);
  return {testing::gmm8_2d(),
          GaussianMixture({{0.5, Eigen::Vector3d(1, 0, 0), A * A.transpose()},
                           {0.5, Eigen::Vector3d(-1, 0, 0), MatrixXd(Eigen::Vector3d(0.2, 0, 0.1).asDiagonal())}},
                          "rank 1 and 2")};
}

TEST(ExtremesSchedules, EveryScheduleIsFiniteAtBothEndsOfItsDomain) {
  const auto mixtures = end_mixtures();
  for (const auto& name : schedule_names()) {
    const Ends e = extreme_ends(name);
    const auto sch = make_schedule(name, {{"t_lo", e.t_lo}, {"t_hi", e.t_hi}});
    for (double t : {e.t_lo, e.t_hi}) {
      SCOPED_TRACE(name + " at t = " + fmt::format("{}", t));
      const TimePoint p = sch->at(t);
      EXPECT_TRUE(std::isfinite(p.alpha) && std::isfinite(p.sigma) && std::isfinite(p.alpha_dot) &&
                  std::isfinite(p.sigma_dot));
      EXPECT_GT(p.sigma, 0.0);
      EXPECT_GE(p.alpha, 0.0);
      // lambda is -inf exactly where alpha = 0 (fm-linear's t = 1, the exact N(0, I) prior); its
      // derivative and the SDE coefficients f = alpha'/alpha, g^2 = -sigma^2 lambda' with it.
      if (p.alpha > 0) {
        EXPECT_TRUE(std::isfinite(sch->lambda(t)) && std::isfinite(sch->lambda_dot(t)));
        EXPECT_TRUE(std::isfinite(sch->f(t)) && std::isfinite(sch->g2(t)));
        // The inverse of lambda lands back on t (to the Newton tolerance 1e-14 (1 + |t|) and what
        // rounding lambda itself loses near the ends: 64 eps |lambda| / |lambda'|).
        EXPECT_NEAR(sch->t_of_lambda(sch->lambda(t)), t,
                    1e-13 * (1 + std::abs(t)) + 64 * kEps * std::abs(sch->lambda(t) / sch->lambda_dot(t)));
      } else {
        EXPECT_EQ(sch->lambda(t), -std::numeric_limits<double>::infinity());
        EXPECT_FALSE(std::isnan(sch->f(t)) || std::isnan(sch->g2(t)) || std::isnan(sch->lambda_dot(t)));
      }
      for (const auto& gm : mixtures) {
        const MatrixXd X = gm.sample(p.alpha, p.sigma, 11, 16);
        ASSERT_TRUE(X.allFinite());
        const MixtureEval ev = gm.evaluate(X, p.alpha, p.sigma, kAll);
        EXPECT_TRUE(all_finite(ev)) << "d = " << gm.dim();
      }
    }
  }
}

TEST(ExtremesSchedules, SolversRunFromTHiToTLoAtTheDomainEndsFinitelyOrRefuseByName) {
  // Every registered solver (defaults), plus the coordinate systems that are defined at alpha = 0,
  // on uniform, logSNR and denoising grids whose first and last points are the extreme ends.
  const auto mixtures = end_mixtures();
  std::vector<std::pair<std::string, SolverOptions>> solvers;
  for (const auto& name : solver_names()) solvers.push_back({name, {}});
  solvers.push_back({"euler", {{"coordinates", "t"}}});
  solvers.push_back({"rk4", {{"coordinates", "fm"}}});
  int ran = 0, refused = 0;
  for (const auto& name : schedule_names()) {
    const Ends e = extreme_ends(name);
    const auto sch = make_schedule(name, {{"t_lo", e.t_lo}, {"t_hi", e.t_hi}});
    std::vector<GridSpec> grids = {{.kind = "uniform", .steps = 6}, {.kind = "logsnr", .steps = 6}};
    if (sch->t_sigma_zero()) grids.push_back({.kind = "uniform", .steps = 6, .final_step = FinalStep::kDenoise});
    for (const auto& spec : grids) {
      Grid grid;
      try {
        grid = make_grid(*sch, spec);
      } catch (const InputError& err) {  // a logSNR grid where lambda(t_hi) = -inf: named
        EXPECT_NE(std::string(err.what()).find("logSNR is infinite"), std::string::npos) << err.what();
        ++refused;
        continue;
      }
      EXPECT_EQ(grid.t.front(), e.t_hi);
      EXPECT_EQ(grid.t[grid.denoise_final ? grid.t.size() - 2 : grid.t.size() - 1], e.t_lo);
      for (const auto& gm : mixtures)
        for (const auto& [sv, opts] : solvers) {
          auto solver = make_solver(sv, opts);
          const std::string what = fmt::format("{} on {} [{}, {}], grid {}{}, d = {}", solver->describe(), name, e.t_lo,
                                               e.t_hi, spec.kind, grid.denoise_final ? "+denoise" : "", gm.dim());
          if (solver->traits().stochastic)
            solver->set_noise(std::make_shared<BrownianTree>(gm.dim(), 5, grid.t.back(), grid.t.front()));
          const TimePoint p = sch->at(e.t_hi);
          MatrixXd X = gm.sample(p.alpha, p.sigma, 12, 8);
          Model model(gm, *sch);
          // At the exact prior (alpha(t_hi) = 0) a solver declaring starts_at_prior = false is refused
          // by name before its first step; every other run must stay finite.
          const bool prior = !(p.alpha > 0);
          try {
            sample(*solver, model, grid, X);
            EXPECT_TRUE(X.allFinite()) << what;
            EXPECT_TRUE(!prior || solver->traits().starts_at_prior) << what << ": ran, declared unable";
            ++ran;
          } catch (const InputError& err) {
            const std::string m = err.what();
            EXPECT_TRUE(prior && !solver->traits().starts_at_prior) << what << ": " << m;
            EXPECT_NE(m.find(fmt::format("cannot start at t = {} where alpha = 0", e.t_hi)), std::string::npos) << m;
            ++refused;
          } catch (const std::exception& err) {
            ADD_FAILURE() << what << ": unnamed failure: " << err.what();
          }
        }
    }
  }
  EXPECT_GT(ran, 10 * refused);  // refusals are the exception: alpha = 0 at fm-linear's t = 1 only
  RecordProperty("ran", ran);
  RecordProperty("refused", refused);
}

// ---------------------------------------------------------------------------------------------
// Plans at their size limits (experiments/config.cpp PlanLimits), files that are not files, the
// exact prior with a solver that cannot start there, and a quadrature that cannot converge: each
// refused by name (key and value), never a hang, an out-of-memory or a NaN.

void expect_plan_error(const std::string& text, const std::string& key, const std::string& fragment,
                       const PlanLimits& limits = {}) {
  const std::string path = std::string(FLOWGAUGE_SOURCE_DIR) + "/experiments/extremes.toml";
  try {
    parse_experiment(text, path, limits);
    ADD_FAILURE() << "accepted; expected an error at " << key;
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind(path + ":", 0), 0u) << m;
    EXPECT_NE(m.find(key), std::string::npos) << m;
    EXPECT_NE(m.find(fragment), std::string::npos) << m;
  }
}

const std::string kPlanHead = "name = \"x\"\nsteps = [4]\n[schedules]\nvp = { name = \"vp-linear\" }\n"
                              "[[grids]]\nkind = \"uniform\"\n[[solvers]]\nname = \"euler\"\n";

TEST(ExtremesPlan, SizesBeyondTheLimitsAreRefusedByName) {
  // A preset mixture too large to hold (K d^2 numbers per covariance copy), before it is built.
  expect_plan_error(kPlanHead + "[data]\ng = { preset = \"random\", dim = 100000, components = 100 }\n",
                    "data.g.dim", "100 x 100000^2");
  // Plans with more cells than the limit, from seeds or from option lists, before they are listed.
  const PlanLimits small{.max_cells = 1000, .max_steps = 100, .max_preset_size = 1 << 20};
  std::string seeds = "seeds = [";
  for (int i = 0; i < 2000; ++i) seeds += std::to_string(i) + ",";
  seeds += "]\n";
  expect_plan_error(seeds + kPlanHead + "[data]\ng = { preset = \"gaussian\" }\n", "plan", "2000 cells", small);
  std::string eta = "eta = [";
  for (int i = 0; i < 40; ++i) eta += std::to_string(i) + ",";
  eta += "]\n";
  expect_plan_error(kPlanHead + "[[solvers]]\nname = \"euler_maruyama\"\n" + eta + "[data]\ng = { preset = \"gaussian\" }\n",
                    "solvers[1]", "40 solver configurations", {.max_cells = 30});
  expect_plan_error("name = \"x\"\nsteps = [101]\n[data]\ng = { preset = \"gaussian\" }\n", "steps", "101", small);
}

TEST(ExtremesPlan, AnExplicitGridNeedsTwoPoints) {
  // Named at its key, not later as a grid "with -1 steps" (the plan marks explicit grids by their step count).
  const std::string head = "name = \"x\"\nsteps = [4]\n[data]\ng = { preset = \"gaussian\" }\n[schedules]\n"
                           "vp = { name = \"vp-linear\" }\n[[solvers]]\nname = \"euler\"\n[[grids]]\nkind = \"explicit\"\n";
  expect_plan_error(head + "times = []\n", "grids[0].times", "at least 2 points (one step), got 0");
  expect_plan_error(head + "sigmas = [80]\n", "grids[0].sigmas", "at least 2 points (one step), got 1");
}

TEST(ExtremesPlan, DataThatIsNotARegularFileIsNeverRead) {
  // /dev/zero would be read forever; a directory is not a mixture.
  expect_plan_error(kPlanHead + "[data]\ng = { file = \"/dev/zero\" }\n", "data.g.file", "not a regular file");
  expect_plan_error(kPlanHead + "[data]\ng = { file = \"data\" }\n", "data.g.file", "not a regular file");
  expect_plan_error(kPlanHead + "[data]\ng = { file = \"" + std::string(300, 'a') + "\" }\n", "data.g.file", "no such file");
}

TEST(ExtremesPlan, TheExactPriorNeedsASolverThatCanStartThere) {
  const std::string plan = "name = \"x\"\nsteps = [4]\n[data]\ng = { preset = \"gmm8-2d\" }\n"
                           "[schedules]\nfm = { name = \"fm-linear\", t_hi = 1.0 }\n[[grids]]\nkind = \"uniform\"\n";
  // heun in ve coordinates steps in rho = sigma/alpha, infinite at alpha = 0: refused at plan time.
  expect_plan_error(plan + "[[solvers]]\nname = \"heun\"\n", "schedules.fm", "solver heun cannot start");
  const std::string path = std::string(FLOWGAUGE_SOURCE_DIR) + "/experiments/extremes.toml";
  EXPECT_NO_THROW(parse_experiment(plan + "[[solvers]]\nname = \"heun\"\ncoordinates = \"t\"\n", path));
  EXPECT_NO_THROW(parse_experiment(plan + "[[solvers]]\nname = [\"ddim\", \"dpmpp_2m\", \"ddpm\"]\n", path));
}

TEST(ExtremesPlan, AnUnresolvableQuadratureIsRefusedNotBisectedForever) {
  // deis_tab's coefficients come from adaptive Gauss-Legendre; an integrand that is rounding noise
  // (alpha ~ 6e-17 at vp-cosine's t = 1) never meets the tolerance anywhere, which used to mean
  // 2^60 panels. A hash-noise integrand stands in for it: refused by name after the panel budget.
  const multistep::GaussLegendre gl(16);
  auto noise = [](double t) {
    std::uint64_t h;
    std::memcpy(&h, &t, sizeof h);
    h = (h ^ (h >> 31)) * 0x9e3779b97f4a7c15ull;
    return static_cast<double>(h >> 11) * 0x1p-53;
  };
  EXPECT_THROW(multistep::integrate_adaptive(gl, noise, 0.0, 1.0, 1e-15), InputError);
  // A smooth integrand is unaffected: int_0^1 cos = sin 1.
  EXPECT_NEAR(multistep::integrate_adaptive(gl, [](double t) { return std::cos(t); }, 0.0, 1.0, 1e-15), std::sin(1.0),
              1e-15);
}

TEST(ExtremesPlan, AFloatDimIsRefusedNotCastToAnInteger) {
  // Found by fuzz_mixture (tests/fuzz/corpus/mixture/crash-dim-float-1e63.toml): toml++'s
  // value<int64_t>() of the float 1e63 casts before checking the range (UBSan: float-cast-overflow).
  for (const char* text : {"dim = 1e63\n", "dim = 2.0\n", "dim = -1\n"}) {
    const auto t = toml::parse(std::string_view(text), std::string_view("m.toml"));
    try {
      mixture_from_toml(t, "m.toml");
      ADD_FAILURE() << text;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("m.toml:1:7: dim: expected a positive integer"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace flowgauge
