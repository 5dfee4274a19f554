// Gaussian-mixture marginals (closed_forms.md section 3). Expected values come from an
// independent long-double evaluation (Cholesky of C_k = alpha^2 S_k + sigma^2 I, no eigen-
// decomposition), from finite differences, from quadrature, or from Monte Carlo with stated errors.
#include <gtest/gtest.h>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <thread>
#include <vector>
#include <fmt/format.h>

#include "analytics/errors.hpp"
#include "analytics/mixture.hpp"
#include "analytics/parameterization.hpp"
#include "tests/fixtures.hpp"

namespace flowgauge {
namespace {

using testing::gmm8_2d;
using testing::random_gmm;
using testing::random_spd;
using LD = long double;
using MatL = Eigen::Matrix<LD, Eigen::Dynamic, Eigen::Dynamic>;
using VecL = Eigen::Matrix<LD, Eigen::Dynamic, 1>;
constexpr double kEps = std::numeric_limits<double>::epsilon();

// ---------------------------------------------------------------------------------------------
// Independent reference: long double, Cholesky per component, plain loops, log-sum-exp by hand.
// Besides the values it returns a rounding-error bound for the DOUBLE library, derived from the
// library's algorithm class (backward-stable symmetric eigensolver => relative perturbation of C_k
// ~ c eps kappa(C_k)) with c = 16; the errors observed in these tests stay below 1/20 of the bound.
struct RefPoint {
  double logp, trace;
  VectorXd score, x0, resp, tol_resp;
  double tol_logp, tol_score, tol_x0, tol_trace;  // bounds: |.| for scalars, 2-norm for vectors
};

class Reference {
 public:
  Reference(const std::vector<Component>& comps, double alpha, double sigma) : alpha_(alpha), sigma_(sigma) {
    LD total = 0;
    for (const auto& c : comps) total += c.weight;
    for (std::size_t k = 0; k < comps.size(); ++k) {
      const auto& c = comps[k];
      const int d = static_cast<int>(c.mean.size());
      Comp r;
      r.logw = std::log(static_cast<LD>(c.weight) / total);
      r.mu = c.mean.cast<LD>();
      const auto same = [&](const Component& o) { return o.cov.size() == c.cov.size() && (o.cov.array() == c.cov.array()).all(); };
      if (const auto it = std::find_if(comps.begin(), comps.begin() + k, same); it != comps.begin() + k) {
        const Comp& o = comps_[it - comps.begin()];  // a covariance seen before: reuse its factorization
        r.S = o.S, r.Cinv = o.Cinv, r.logdet = o.logdet, r.cmin = o.cmin, r.cmax = o.cmax, r.smax = o.smax;
        comps_.push_back(r);
        continue;
      }
      r.S = (0.5 * (c.cov + c.cov.transpose())).cast<LD>();
      MatL C = LD(alpha) * LD(alpha) * r.S + LD(sigma) * LD(sigma) * MatL::Identity(d, d);
      Eigen::LLT<MatL> llt(C);
      r.Cinv = llt.solve(MatL::Identity(d, d));
      r.logdet = 0;
      for (int i = 0; i < d; ++i) r.logdet += 2 * std::log(llt.matrixL()(i, i));
      // Spectra enter only the tolerances (condition numbers): double precision suffices, and at
      // d = 256 it is ~100x cheaper than long double.
      const VectorXd ev = Eigen::SelfAdjointEigenSolver<MatrixXd>(0.5 * (c.cov + c.cov.transpose()),
                                                                  Eigen::EigenvaluesOnly).eigenvalues();
      r.cmin = alpha * alpha * std::max(ev.minCoeff(), 0.0) + sigma * sigma;
      r.cmax = alpha * alpha * ev.maxCoeff() + sigma * sigma;
      r.smax = ev.cwiseAbs().maxCoeff();
      comps_.push_back(r);
    }
  }

  RefPoint at(const VectorXd& xd) const {
    const int K = static_cast<int>(comps_.size()), d = static_cast<int>(xd.size());
    const VecL x = xd.cast<LD>();
    std::vector<LD> logn(K);
    std::vector<VecL> g(K), x0k(K);
    std::vector<double> e(K), gerr(K);
    LD m = -std::numeric_limits<LD>::infinity();
    for (int k = 0; k < K; ++k) {
      const auto& c = comps_[k];
      const VecL diff = x - LD(alpha_) * c.mu;
      const VecL z = c.Cinv * diff;
      const LD quad = diff.dot(z);
      logn[k] = c.logw - 0.5L * (d * std::log(2 * std::numbers::pi_v<LD>) + c.logdet + quad);
      g[k] = -z;
      x0k[k] = c.mu + LD(alpha_) * (c.S * z);
      m = std::max(m, logn[k]);
      const double kappa = c.cmax / c.cmin;
      const double xm = xd.norm() + alpha_ * static_cast<double>(c.mu.norm());
      e[k] = 16 * kEps * (kappa * (static_cast<double>(quad) + d) + xm * xm / c.cmin);
      gerr[k] = 16 * kEps * (kappa * static_cast<double>(z.norm()) + xm / c.cmin);
    }
    LD acc = 0;
    for (int k = 0; k < K; ++k) acc += std::exp(logn[k] - m);
    const LD lse = m + std::log(acc);
    RefPoint out;
    out.logp = static_cast<double>(lse);
    out.resp.resize(K);
    VecL s = VecL::Zero(d), x0 = VecL::Zero(d);
    LD tr = 0;
    for (int k = 0; k < K; ++k) {
      const LD r = std::exp(logn[k] - lse);
      out.resp(k) = static_cast<double>(r);
      s += r * g[k];
      x0 += r * x0k[k];
      tr += r * (g[k].squaredNorm() - comps_[k].Cinv.trace());
    }
    tr -= s.squaredNorm();
    out.score = s.cast<double>();
    out.x0 = x0.cast<double>();
    out.trace = static_cast<double>(tr);
    out.tol_logp = 16 * kEps * std::abs(out.logp);
    out.tol_score = 16 * kEps * out.score.norm();
    out.tol_x0 = 16 * kEps * out.x0.norm();
    out.tol_trace = 16 * kEps * std::abs(out.trace);
    for (int k = 0; k < K; ++k) {
      const double r = out.resp(k), gn = static_cast<double>(g[k].norm());
      const double trinv = static_cast<double>(comps_[k].Cinv.trace());
      out.tol_logp += r * e[k];
      out.tol_score += r * (gerr[k] + 2 * e[k] * gn);
      out.tol_x0 += r * (alpha_ * comps_[k].smax * gerr[k] + 2 * e[k] * static_cast<double>(x0k[k].norm()) +
                         16 * kEps * static_cast<double>(comps_[k].mu.norm()));
      out.tol_trace += r * (2 * gn * gerr[k] + 16 * kEps * (comps_[k].cmax / comps_[k].cmin) * trinv +
                            2 * e[k] * (gn * gn + trinv));
    }
    out.tol_trace += 2 * out.score.norm() * out.tol_score;
    // r_k = exp(logN_k - lse): relative error <= e_k + sum_j r_j e_j (+ the exp/log rounding). Below
    // 2^-1022 doubles are subnormal, spaced 2^-1074: two roundings there add 2 such spacings.
    out.tol_resp.resize(K);
    for (int k = 0; k < K; ++k)
      out.tol_resp(k) = out.resp(k) * (e[k] + (out.tol_logp - 16 * kEps * std::abs(out.logp)) + 16 * kEps) +
                        2 * std::numeric_limits<double>::denorm_min();
    return out;
  }

 private:
  struct Comp {
    LD logw, logdet;
    VecL mu;
    MatL S, Cinv;
    double cmin, cmax, smax;
  };
  std::vector<Comp> comps_;
  double alpha_, sigma_;
};

// Compares every evaluate() output at the columns of X with the reference.
void expect_matches_reference(const GaussianMixture& gm, const MatrixXd& X, double alpha, double sigma,
                              const std::string& what, EvalKernel kernel = EvalKernel::kAuto,
                              const Reference* reference = nullptr) {
  const Reference own = reference ? Reference({}, alpha, sigma) : Reference(gm.components(), alpha, sigma);
  const Reference& ref = reference ? *reference : own;
  MixtureEval ev;
  EvalWorkspace ws;
  ws.kernel = kernel;
  gm.evaluate(X, alpha, sigma, kLogp | kScore | kTrace | kResp | kDenoiser, ev, ws);
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    const RefPoint r = ref.at(X.col(j));
    SCOPED_TRACE(what + " column " + std::to_string(j));
    ASSERT_TRUE(std::isfinite(ev.logp(j)) && ev.score.col(j).allFinite() && std::isfinite(ev.trace(j)) &&
                ev.resp.col(j).allFinite() && ev.x0.col(j).allFinite());
    EXPECT_NEAR(ev.logp(j), r.logp, r.tol_logp);
    EXPECT_LE((ev.score.col(j) - r.score).norm(), r.tol_score) << ev.score.col(j).transpose() << " vs "
                                                              << r.score.transpose();
    EXPECT_NEAR(ev.trace(j), r.trace, r.tol_trace);
    EXPECT_LE((ev.x0.col(j) - r.x0).norm(), r.tol_x0);
    for (int k = 0; k < gm.size(); ++k) EXPECT_NEAR(ev.resp(k, j), r.resp(k), r.tol_resp(k)) << "k = " << k;
    EXPECT_NEAR(ev.resp.col(j).sum(), 1.0, 64 * kEps);
  }
}

// Fourth-order central differences of log p (-> score) and of the score (-> Jacobian trace).
// h = 1e-3 x the smallest component std of p_t: truncation ~ (h / length scale)^4 is ~1e-12
// relative; 1e-7 relative leaves room for mixtures whose log p bends faster between modes.
// The rounding part assumes log p and the score carry ~64 eps of their magnitudes plus the
// projection noise |s| eps (|x| + alpha |mu|) that the FD stencil divides by h.
void expect_fd_consistent(const GaussianMixture& gm, const MatrixXd& X, double alpha, double sigma,
                          const std::string& what) {
  const int d = gm.dim();
  double cmin = std::numeric_limits<double>::infinity(), mumax = 0;
  for (int k = 0; k < gm.size(); ++k) {
    cmin = std::min(cmin, alpha * alpha * gm.eigvals(k).minCoeff() + sigma * sigma);
    mumax = std::max(mumax, gm.mean(k).norm());
  }
  const double h = 1e-3 * std::sqrt(cmin);
  const double w[4] = {1.0 / 12, -8.0 / 12, 8.0 / 12, -1.0 / 12};
  const double off[4] = {-2, -1, 1, 2};
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    SCOPED_TRACE(what + " column " + std::to_string(j));
    // All 4 d perturbed points in one batch.
    MatrixXd P(d, 4 * d);
    for (int i = 0; i < d; ++i)
      for (int q = 0; q < 4; ++q) {
        P.col(4 * i + q) = X.col(j);
        P(i, 4 * i + q) += off[q] * h;
      }
    const MixtureEval e0 = gm.evaluate(X.col(j), alpha, sigma, kLogp | kScore | kTrace);
    const MixtureEval ep = gm.evaluate(P, alpha, sigma, kLogp | kScore);
    const double snorm = e0.score.col(0).norm();
    const double noise = 64 * kEps * (std::abs(e0.logp(0)) + snorm * (X.col(j).norm() + alpha * mumax));
    // Score noise: each z_k = y_k / c_k carries eps (|x| + alpha |mu|) / c_min from the projection.
    const double score_noise = 64 * kEps * (snorm + (X.col(j).norm() + alpha * mumax) / cmin);
    double fd_trace = 0;
    for (int i = 0; i < d; ++i) {
      double ds = 0, dd = 0;
      for (int q = 0; q < 4; ++q) {
        ds += w[q] * ep.logp(4 * i + q) / h;
        dd += w[q] * ep.score(i, 4 * i + q) / h;
      }
      EXPECT_NEAR(e0.score(i, 0), ds, 1e-7 * (snorm + 1 / std::sqrt(cmin)) + 1.5 * noise / h) << "i = " << i;
      fd_trace += dd;
    }
    EXPECT_NEAR(e0.trace(0), fd_trace, 1e-7 * (std::abs(e0.trace(0)) + d / cmin) + d * 1.5 * score_noise / h);
  }
}

// (alpha, sigma) pairs from data-like to noise-like, plus a VE-like sigma > 1.
const std::vector<std::pair<double, double>> kTimes = {{1.0, 0.1}, {0.8, 0.6}, {0.2, 0.98}, {1.0, 2.0}};

// Shorthands for hard-case mixtures.
GaussianMixture make_gmm(std::vector<Component> c) { return GaussianMixture(std::move(c), "test"); }

// ---------------------------------------------------------------------------------------------

TEST(Mixture, MatchesIndependentReference) {
  for (const auto& gm : {gmm8_2d(), random_gmm(5, 3, 11)}) {
    for (auto [a, s] : kTimes) {
      const MatrixXd X = gm.sample(a, s, 7, 20);
      expect_matches_reference(gm, X, a, s, gm.dim() == 2 ? "gmm8_2d" : "random_gmm(5,3)");
    }
  }
}

TEST(Mixture, ScoreAndTraceMatchFiniteDifferences) {
  for (const auto& gm : {gmm8_2d(), random_gmm(5, 3, 11)}) {
    for (auto [a, s] : kTimes) {
      const MatrixXd X = gm.sample(a, s, 8, 10);
      expect_fd_consistent(gm, X, a, s, "a = " + std::to_string(a) + ", s = " + std::to_string(s));
    }
  }
}

TEST(Mixture, SingleGaussianTraceIsMinusTraceOfInverse) {
  const GaussianMixture gm = testing::single_gaussian(4, 3);
  const double a = 0.7, s = 0.5;
  const MatrixXd C = a * a * gm.components()[0].cov + s * s * MatrixXd::Identity(4, 4);
  const double ref = -C.inverse().trace();
  const MatrixXd X = gm.sample(a, s, 1, 5);
  const MixtureEval ev = gm.evaluate(X, a, s, kTrace | kScore);
  // kappa(C) ~ 10 here; a matrix inverse and an eigendecomposition agree to ~100 eps relative.
  for (int j = 0; j < 5; ++j) EXPECT_NEAR(ev.trace(j), ref, 1e-13 * std::abs(ref));
  // The score of a single Gaussian is -C^{-1}(x - alpha mu).
  const MatrixXd sref = -C.inverse() * (X.colwise() - a * gm.mean(0));
  EXPECT_LE((ev.score - sref).cwiseAbs().maxCoeff(), 1e-13 * sref.cwiseAbs().maxCoeff());
}

TEST(Mixture, PredictionsFromTheScoreMatchTheirDefinitions) {
  // x0hat = E[x0 | x] (reference: sum_k r_k (mu_k + alpha S_k C_k^{-1} (x - alpha mu_k))),
  // epshat = E[eps | x] = (x - alpha x0hat)/sigma, vhat = alpha epshat - sigma x0hat,
  // computed from the library's SCORE via parameterization.hpp, and the direct kDenoiser.
  const GaussianMixture gm = random_gmm(4, 3, 5);
  for (auto [a, s] : kTimes) {
    const TimePoint p{0.5, a, s, -0.3, 0.4};  // rates do not enter these predictions
    const Reference ref(gm.components(), a, s);
    const MatrixXd X = gm.sample(a, s, 3, 12);
    const MixtureEval ev = gm.evaluate(X, a, s, kScore | kDenoiser);
    for (int j = 0; j < X.cols(); ++j) {
      const RefPoint r = ref.at(X.col(j));
      const VectorXd x = X.col(j), sc = ev.score.col(j);
      const VectorXd x0 = param::x0_from_score(p, x, sc);
      const VectorXd eps = param::eps_from_score(p, sc);
      const VectorXd v = param::v_from(p, x0, eps);
      const VectorXd eps_ref = (x - a * r.x0) / s;
      const VectorXd v_ref = a * eps_ref - s * r.x0;
      // Tweedie divides the score's error by alpha and multiplies by sigma^2; x0 also by 1/alpha.
      const double tol_x0 = (s * s * r.tol_score + 64 * kEps * (x.norm() + s * s * sc.norm())) / a + r.tol_x0;
      EXPECT_LE((x0 - r.x0).norm(), tol_x0);
      EXPECT_LE((eps - eps_ref).norm(), s * r.tol_score + a * r.tol_x0 / s + 64 * kEps * eps_ref.norm());
      EXPECT_LE((v - v_ref).norm(), a * (s * r.tol_score + a * r.tol_x0 / s) + s * tol_x0 + 64 * kEps * (x0.norm() + eps.norm()));
      // The direct denoiser needs no division by alpha; it agrees with Tweedie at moderate sigma/alpha.
      EXPECT_LE((ev.x0.col(j) - x0).norm(), tol_x0 + r.tol_x0);
      // Consistency: x = alpha x0hat + sigma epshat exactly (up to the rounding in both).
      EXPECT_LE((a * x0 + s * eps - x).norm(), 64 * kEps * (x.norm() + s * s * sc.norm()));
    }
  }
}

TEST(Mixture, DensityIntegratesToOne1D) {
  std::vector<Component> c = {{0.2, VectorXd::Constant(1, -2.0), MatrixXd::Constant(1, 1, 0.3)},
                              {0.5, VectorXd::Constant(1, 0.5), MatrixXd::Constant(1, 1, 0.01)},
                              {0.3, VectorXd::Constant(1, 3.0), MatrixXd::Constant(1, 1, 1.5)}};
  const GaussianMixture gm = make_gmm(c);
  for (auto [a, s] : kTimes) {
    // [-25, 25] is > 15 standard deviations from every mode (tails < 1e-50); step 1/4 of the
    // smallest std: the trapezoid rule on a Gaussian then errs by ~exp(-2 pi^2 16) ~ 1e-137.
    const double sd = std::sqrt(a * a * 0.01 + s * s), h = 0.25 * sd;
    const int n = static_cast<int>(50 / h) + 1;
    MatrixXd X(1, n);
    for (int i = 0; i < n; ++i) X(0, i) = -25 + i * h;
    const VectorXd lp = gm.evaluate(X, a, s, kLogp).logp;
    const double integral = lp.array().exp().sum() * h;
    EXPECT_NEAR(integral, 1.0, 1e-12) << "a = " << a << " s = " << s;  // summing ~1e3..1e4 terms
  }
}

TEST(Mixture, DensityIntegratesToOne2D) {
  const GaussianMixture gm = gmm8_2d();
  for (auto [a, s] : std::vector<std::pair<double, double>>{{1.0, 0.05}, {0.6, 0.8}}) {
    // Modes at radius 2 alpha; box half-width 2 alpha + 12 std_max leaves tails ~exp(-72); step
    // 0.3 std_min gives a trapezoid (aliasing) error ~exp(-2 pi^2 / 0.09) ~ 1e-95.
    const double sdmax = std::sqrt(a * a * 0.09 + s * s), sdmin = std::sqrt(a * a * 0.02 + s * s);
    const double L = 2 * a + 12 * sdmax, h = 0.3 * sdmin;
    const int n = static_cast<int>(2 * L / h) + 1;
    MatrixXd X(2, static_cast<Eigen::Index>(n) * n);
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < n; ++k) X.col(static_cast<Eigen::Index>(i) * n + k) << -L + i * h, -L + k * h;
    const VectorXd lp = gm.evaluate(X, a, s, kLogp).logp;
    // <= 6e4 positive terms, each ~10 eps relative; a vectorised sum errs by ~sqrt(n) eps.
    EXPECT_NEAR(lp.array().exp().sum() * h * h, 1.0, 1e-11) << "a = " << a << " (" << n << "^2 points)";
  }
}

// Exact mixture mean and covariance (closed_forms section 7), computed here from the components.
void exact_moments(const std::vector<Component>& c, double a, double s, VectorXd& m, MatrixXd& C) {
  const int d = static_cast<int>(c[0].mean.size());
  double W = 0;
  for (const auto& k : c) W += k.weight;
  m = VectorXd::Zero(d);
  MatrixXd M2 = MatrixXd::Zero(d, d);
  for (const auto& k : c) {
    m += k.weight / W * k.mean;
    M2 += k.weight / W * (k.cov + k.mean * k.mean.transpose());
  }
  C = a * a * (M2 - m * m.transpose()) + s * s * MatrixXd::Identity(d, d);
  m *= a;
}

TEST(Mixture, MarginalMomentsMatchDefinition) {
  const GaussianMixture gm = random_gmm(6, 4, 2);
  for (auto [a, s] : kTimes) {
    VectorXd m;
    MatrixXd C;
    exact_moments(gm.components(), a, s, m, C);
    // Sums of K = 4 terms of size ~|mu|^2 (up to ~10x the largest covariance entry here) minus
    // m m^T: 64 eps of |m| for the mean, 64 eps x 10 x the largest entry for the covariance.
    EXPECT_LE((gm.marginal_mean(a) - m).cwiseAbs().maxCoeff(), 64 * kEps * m.cwiseAbs().maxCoeff());
    EXPECT_LE((gm.marginal_cov(a, s) - C).cwiseAbs().maxCoeff(), 64 * kEps * 10 * C.cwiseAbs().maxCoeff());
  }
  for (int k = 0; k < gm.size(); ++k)  // the eigendecomposition reproduces S_k (backward stable)
    EXPECT_LE((gm.covariance(k) - gm.components()[k].cov).cwiseAbs().maxCoeff(), 64 * kEps);
}

TEST(Mixture, SamplesMatchExactMomentsAndWeights) {
  struct Case {
    GaussianMixture gm;
    double a, s;
  };
  const std::vector<Case> cases = {{gmm8_2d(), 1.0, 0.0}, {gmm8_2d(), 0.6, 0.8}, {random_gmm(3, 4, 9), 0.8, 0.6}};
  const Eigen::Index n = 200000;
  for (const auto& [gm, a, s] : cases) {
    SCOPED_TRACE("d = " + std::to_string(gm.dim()) + ", alpha = " + std::to_string(a));
    VectorXd m;
    MatrixXd C;
    exact_moments(gm.components(), a, s, m, C);
    const MatrixXd X = gm.sample(a, s, 20240601, n);
    const VectorXd mean = X.rowwise().mean();
    const MatrixXd Xc = X.colwise() - m;  // centred at the exact mean
    // Mean: standard error sqrt(C_ii / n). 5 SE: with ~20 checks per case, a false alarm has
    // probability ~1e-5 per seed; the seed is fixed, so the outcome is deterministic.
    for (int i = 0; i < gm.dim(); ++i)
      EXPECT_NEAR(mean(i), m(i), 5 * std::sqrt(C(i, i) / n)) << "mean " << i;
    // Covariance about the exact mean: entry (i,j) is the average of (x_i - m_i)(x_j - m_j), whose
    // standard error is the sample std of that product over sqrt(n).
    for (int i = 0; i < gm.dim(); ++i)
      for (int k = i; k < gm.dim(); ++k) {
        const Eigen::ArrayXd prod = Xc.row(i).array() * Xc.row(k).array();
        const double est = prod.mean();
        const double se = std::sqrt((prod - est).square().sum() / (n - 1) / n);
        EXPECT_NEAR(est, C(i, k), 5 * se) << "cov " << i << "," << k;
      }
    // E_{x ~ p_t}[r_k(x)] = w_k exactly: checks component picking against the responsibilities.
    if (s > 0) {
      const MatrixXd R = gm.evaluate(X, a, s, kResp).resp;
      for (int k = 0; k < gm.size(); ++k) {
        const Eigen::ArrayXd rk = R.row(k).transpose().array();
        const double est = rk.mean(), se = std::sqrt((rk - est).square().sum() / (n - 1) / n);
        EXPECT_NEAR(est, gm.weights()(k), 5 * se + 1e-15) << "weight " << k;
      }
    }
  }
}

TEST(Mixture, SamplingIsBatchSplitInvariant) {
  const GaussianMixture gm = random_gmm(5, 3, 4);
  const MatrixXd full = gm.sample(0.7, 0.4, 99, 1000);
  // Sub-ranges drawn on their own are bitwise the same columns.
  for (auto [first, len] : std::vector<std::pair<int, int>>{{0, 1}, {123, 300}, {999, 1}, {500, 500}}) {
    MatrixXd part(5, len);
    gm.sample(0.7, 0.4, 99, first, part);
    EXPECT_TRUE((part.array() == full.middleCols(first, len).array()).all()) << first << "+" << len;
  }
  // The same particle index with another seed is a different point; so is the next particle.
  const MatrixXd other = gm.sample(0.7, 0.4, 100, 1000);
  EXPECT_FALSE((other.col(0).array() == full.col(0).array()).any());
  EXPECT_FALSE((full.col(1).array() == full.col(0).array()).any());
}

TEST(Mixture, EvaluateIsBlockSplitInvariant) {
  const GaussianMixture gm = random_gmm(64, 8, 3);
  const double a = 0.9, s = 0.45;
  const Eigen::Index n = 2 * gm.block_size() + 37;  // three column blocks
  const MatrixXd X = gm.sample(a, s, 5, n);
  const unsigned all = kLogp | kScore | kTrace | kResp | kDenoiser;
  const MixtureEval full = gm.evaluate(X, a, s, all);
  // Pieces through one reused workspace (it shrinks and grows between calls).
  EvalWorkspace ws;
  MixtureEval piece;
  // Different blockings change only the summation order inside the d = 64 GEMMs: each projection
  // y differs by <= d eps |U||x|, i.e. ~1e-13 relative in log p, score, x0 for these O(1..100) values.
  auto close = [](const auto& A, const auto& B) {
    return (A - B).cwiseAbs().maxCoeff() <= 1e-13 * std::max(1.0, static_cast<double>(B.cwiseAbs().maxCoeff()));
  };
  std::vector<Eigen::Index> starts = {0, 1, gm.block_size() - 1, gm.block_size(), n - 1};
  for (Eigen::Index j : starts) {  // one column at a time (GEMV path)
    gm.evaluate(X.col(j), a, s, all, piece, ws);
    EXPECT_TRUE(close(piece.logp, full.logp.segment(j, 1))) << j;
    EXPECT_TRUE(close(piece.score, full.score.col(j))) << j;
    EXPECT_TRUE(close(piece.trace, full.trace.segment(j, 1))) << j;
    EXPECT_TRUE(close(piece.resp, full.resp.col(j))) << j;
    EXPECT_TRUE(close(piece.x0, full.x0.col(j))) << j;
  }
  for (Eigen::Index j0 = 0; j0 < n; j0 += 333) {  // blocks of 333 straddling the internal blocks
    const Eigen::Index nb = std::min<Eigen::Index>(333, n - j0);
    gm.evaluate(X.middleCols(j0, nb), a, s, all, piece, ws);
    EXPECT_TRUE(close(piece.logp, full.logp.segment(j0, nb))) << j0;
    EXPECT_TRUE(close(piece.score, full.score.middleCols(j0, nb))) << j0;
    EXPECT_TRUE(close(piece.trace, full.trace.segment(j0, nb))) << j0;
    EXPECT_TRUE(close(piece.resp, full.resp.middleCols(j0, nb))) << j0;
    EXPECT_TRUE(close(piece.x0, full.x0.middleCols(j0, nb))) << j0;
  }
  // Asking for fewer outputs does not change the ones asked for.
  const MixtureEval only = gm.evaluate(X, a, s, kScore);
  EXPECT_TRUE((only.score.array() == full.score.array()).all());
}

// ---- hard cases ----

TEST(MixtureHard, IllConditionedCovariance) {
  // Condition number 1e8 (eigenvalues 1e-8 .. 1) in d = 4, two components.
  std::vector<Component> c = {{0.4, VectorXd::LinSpaced(4, -1, 1), random_spd(4, 1e-8, 1.0, 77)},
                              {0.6, VectorXd::LinSpaced(4, 1, 0), random_spd(4, 1e-8, 1.0, 78)}};
  const GaussianMixture gm = make_gmm(c);
  for (auto [a, s] : std::vector<std::pair<double, double>>{{1.0, 1e-3}, {1.0, 1e-2}, {0.5, 0.5}}) {
    const MatrixXd X = gm.sample(a, s, 21, 8);
    const std::string what = "cond 1e8, sigma = " + std::to_string(s);
    expect_matches_reference(gm, X, a, s, what);
    expect_fd_consistent(gm, X, a, s, what);
  }
}

TEST(MixtureHard, RankDeficientCovariance) {
  // S = V V^T with V 4 x 2: two zero eigenvalues (computed as ~1e-16, set to exact zeros; test_extremes).
  Eigen::MatrixXd V(4, 2);
  V << 1, 0.2, -0.5, 1, 0.3, 0.3, 0.8, -0.6;
  std::vector<Component> c = {{0.5, VectorXd::Zero(4), V * V.transpose()},
                              {0.5, VectorXd::Constant(4, 1.0), 0.3 * V * V.transpose() + 0.1 * MatrixXd::Identity(4, 4)}};
  const GaussianMixture gm = make_gmm(c);
  EXPECT_LE(gm.eigvals(0).minCoeff(), 1e-14);
  EXPECT_GE(gm.eigvals(0).minCoeff(), 0.0);  // clipped, never negative
  for (auto [a, s] : std::vector<std::pair<double, double>>{{1.0, 0.05}, {0.7, 0.7}}) {
    const MatrixXd X = gm.sample(a, s, 22, 8);
    expect_matches_reference(gm, X, a, s, "rank 2 of 4");
    expect_fd_consistent(gm, X, a, s, "rank 2 of 4");
  }
  // sigma = 0 with an exactly singular covariance is refused, not answered with Inf/NaN.
  const GaussianMixture sing = make_gmm({{1.0, VectorXd::Zero(2), Eigen::Vector2d(2.0, 0.0).asDiagonal()}});
  EXPECT_THROW(sing.evaluate(MatrixXd::Zero(2, 1), 1.0, 0.0, kLogp), std::domain_error);
}

TEST(MixtureHard, TinyWeightComponent) {
  std::vector<Component> c = {{1.0, VectorXd::Zero(2), MatrixXd::Identity(2, 2)},
                              {1e-12, Eigen::Vector2d(3, 0), 0.01 * MatrixXd::Identity(2, 2)}};
  const GaussianMixture gm = make_gmm(c);
  const double a = 1.0, s = 0.05;
  MatrixXd X(2, 4);
  X << 3, 3.05, 0, -40, 0, 0.02, 0, 0;
  expect_matches_reference(gm, X, a, s, "w = 1e-12");
  const Reference ref(gm.components(), a, s);
  const MixtureEval ev = gm.evaluate(X, a, s, kResp);
  // At the tiny mode, r_1 ~ 7e-9: log-sum-exp keeps it to full relative precision (the two
  // log-densities carry ~1e-15 absolute error here).
  const RefPoint r = ref.at(X.col(0));
  EXPECT_GT(r.resp(1), 1e-9);
  EXPECT_NEAR(ev.resp(1, 0), r.resp(1), 1e-13 * r.resp(1));
}

TEST(MixtureHard, ModesFarApart) {
  std::vector<Component> c = {{0.5, Eigen::Vector2d(0, 0), 0.5 * MatrixXd::Identity(2, 2)},
                              {0.5, Eigen::Vector2d(1000, 0), 0.5 * MatrixXd::Identity(2, 2)}};
  const GaussianMixture gm = make_gmm(c);
  const double a = 1.0, s = 0.1, cv = 0.5 + 0.01;
  MatrixXd X(2, 5);
  X << 0.3, 1000.2, 500, -5000, 1e4, -0.1, 0.4, 0, 0, 3;
  expect_matches_reference(gm, X, a, s, "modes 1e3 apart");
  const MixtureEval ev = gm.evaluate(X, a, s, kLogp | kScore | kResp | kTrace);
  EXPECT_TRUE(ev.logp.allFinite() && ev.score.allFinite() && ev.resp.allFinite() && ev.trace.allFinite());
  // Near mode 0, mode 1's responsibility underflows to 0 (exp(-1e6)); score is that of mode 0.
  EXPECT_EQ(ev.resp(0, 0), 1.0);
  EXPECT_EQ(ev.resp(1, 0), 0.0);
  EXPECT_NEAR(ev.score(0, 0), -0.3 / cv, 1e-14);  // two roundings of O(1) values
  // Exactly halfway both modes are equally responsible: |y_k| = 500 in both, computed exactly,
  // and the components share C, so only the log-sum-exp's own rounding remains.
  EXPECT_NEAR(ev.resp(0, 2), 0.5, 1e-15);
  EXPECT_NEAR(ev.score(0, 2), 0.0, 1e-15 * 500 / cv);  // two cancelling terms of size 500 / c
  // Far outside both modes: log p ~ -0.5 |x|^2 / c, finite, about -2.45e7.
  EXPECT_NEAR(ev.logp(3), -0.5 * 5000.0 * 5000.0 / cv - std::log(2 * std::numbers::pi * cv) + std::log(0.5) +
                              std::log1p(std::exp(-0.5 * (6000.0 * 6000 - 5000.0 * 5000) / cv)),
              1e-15 * 2.5e7 * 8);  // ~40 eps of |log p| = 2.45e7 (quadratic form rounding)
}

TEST(MixtureHard, Dimension64WithEightComponents) {
  const GaussianMixture gm = random_gmm(64, 8, 5);
  for (auto [a, s] : std::vector<std::pair<double, double>>{{1.0, 0.1}, {0.5, 0.85}}) {
    const MatrixXd X = gm.sample(a, s, 23, 6);
    expect_matches_reference(gm, X, a, s, "d = 64, K = 8");
    expect_fd_consistent(gm, X.leftCols(2), a, s, "d = 64, K = 8");
  }
}

// ---- evaluation kernels (EvalKernel): each against the reference, block and split invariance ----

// Draws from p_t, plus a point far in the tail and one halfway between the first two modes.
MatrixXd kernel_points(const GaussianMixture& gm, double a, double s, int n, unsigned seed) {
  MatrixXd X(gm.dim(), n + 2);
  X.leftCols(n) = gm.sample(a, s, seed, n);
  X.col(n).setConstant(8.0);  // |x - alpha mu_k| ~ 8 sqrt(d): log p ~ -60 d
  X.col(n + 1) = 0.5 * a * (gm.mean(0) + gm.mean(std::min(1, gm.size() - 1)));
  return X;
}

// K components in dimension d with means as in random_gmm and covariances drawn from a pool of 8
// (the long-double reference factors each distinct covariance once: d = 256, K = 256 stays cheap).
GaussianMixture pooled_gmm(int d, int K, unsigned seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> n;
  std::vector<MatrixXd> pool;
  for (int p = 0; p < 8; ++p) pool.push_back(random_spd(d, 0.05, 0.5, seed * 100 + p));
  std::vector<Component> c;
  for (int k = 0; k < K; ++k) {
    VectorXd m(d);
    for (int i = 0; i < d; ++i) m(i) = 1.5 * n(g);
    c.push_back({1.0 + 0.5 * std::sin(k), m, pool[k % 8]});
  }
  return GaussianMixture(c, "pooled_gmm");
}

TEST(MixtureKernels, EveryKernelMatchesTheReferenceAcrossShapes) {
  // The elementwise kernel (d <= 8) and the GEMM kernel (any d) against the long-double reference,
  // all outputs, d in {1, 2, 3, 8, 64, 256} x K in {1, 8, 256}: far-apart components at large d
  // put responsibilities below the 2^-512 cut of the weighted sums, K = 256 overlapping ones in 1-D.
  long cut = 0, subnormal = 0;  // responsibilities the kernels' special cases act on
  for (int d : {1, 2, 3, 8, 64, 256})
    for (int K : {1, 8, 256}) {
      const GaussianMixture gm = K > 8 ? pooled_gmm(d, K, 1000 + d) : random_gmm(d, K, 1000 + d + K);
      for (auto [a, s] : std::vector<std::pair<double, double>>{{1.0, 0.1}, {0.6, 0.8}}) {
        const MatrixXd X = kernel_points(gm, a, s, 4, 17);
        const Reference ref(gm.components(), a, s);
        std::vector<EvalKernel> kernels = {EvalKernel::kGemm};
        if (d <= GaussianMixture::kElementwiseMaxDim) kernels.push_back(EvalKernel::kElementwise);
        for (EvalKernel kernel : kernels)
          expect_matches_reference(gm, X, a, s,
                                   fmt::format("d = {}, K = {}, alpha = {}, {}", d, K, a,
                                               kernel == EvalKernel::kGemm ? "GEMM" : "elementwise"),
                                   kernel, &ref);
        const MatrixXd R = gm.evaluate(X, a, s, kResp).resp;
        cut += (R.array() > 0 && R.array() <= 0x1p-512).count();
        subnormal += (R.array() > 0 && R.array() < std::numeric_limits<double>::min()).count();
      }
    }
  EXPECT_GT(cut, 0);        // the cut was exercised (and the reference keeps those terms)
  EXPECT_GT(subnormal, 0);  // and so were subnormal responsibilities in the kResp output
}

void expect_bitwise_equal(const MixtureEval& part, const MixtureEval& full, Eigen::Index j0, const std::string& what) {
  const Eigen::Index n = part.logp.size();
  auto same = [](const auto& A, const auto& B) { return A.size() == B.size() && (A.array() == B.array()).all(); };
  EXPECT_TRUE(same(part.logp, full.logp.segment(j0, n))) << what;
  EXPECT_TRUE(same(part.score, full.score.middleCols(j0, n))) << what;
  EXPECT_TRUE(same(part.trace, full.trace.segment(j0, n))) << what;
  EXPECT_TRUE(same(part.resp, full.resp.middleCols(j0, n))) << what;
  EXPECT_TRUE(same(part.x0, full.x0.middleCols(j0, n))) << what;
}

TEST(MixtureKernels, ElementwiseKernelIsBitwiseBlockAndSplitInvariant) {
  // Blocks are padded to whole SIMD packets, so every point goes through the same instructions:
  // neither the block size nor the split of the batch may change a bit of any output.
  const unsigned all = kLogp | kScore | kTrace | kResp | kDenoiser;
  for (const auto& gm : {random_gmm(1, 8, 31), gmm8_2d(), random_gmm(3, 256, 32), random_gmm(8, 8, 33)}) {
    const MatrixXd X = kernel_points(gm, 0.8, 0.6, 999, 9);
    const std::string what = fmt::format("d = {}, K = {}", gm.dim(), gm.size());
    EvalWorkspace ws;
    ws.kernel = EvalKernel::kElementwise;
    MixtureEval full, part;
    gm.evaluate(X, 0.8, 0.6, all, full, ws);
    for (Eigen::Index block : {1, 5, 8, 24, 1001, 5000}) {
      ws.block = block;
      gm.evaluate(X, 0.8, 0.6, all, part, ws);
      expect_bitwise_equal(part, full, 0, what + fmt::format(", block {}", block));
    }
    ws.block = 0;
    for (Eigen::Index len : {1, 13, 333})
      for (Eigen::Index j0 = 0; j0 < X.cols(); j0 += len) {
        const Eigen::Index nb = std::min(len, X.cols() - j0);
        gm.evaluate(X.middleCols(j0, nb), 0.8, 0.6, all, part, ws);
        expect_bitwise_equal(part, full, j0, what + fmt::format(", columns {}+{}", j0, nb));
      }
  }
}

TEST(MixtureKernels, GemmKernelBlockSizesAgreeToRounding) {
  // Block sizes change only the summation order inside the GEMMs (Eigen's kernels treat edge rows
  // differently): w differs by <= (d+1) eps |W_k| |x|, ~1e-13 relative in every output here.
  const unsigned all = kLogp | kScore | kTrace | kResp | kDenoiser;
  for (const auto& gm : {gmm8_2d(), random_gmm(64, 8, 3)}) {
    const MatrixXd X = kernel_points(gm, 0.9, 0.45, 400, 5);
    EvalWorkspace ws;
    ws.kernel = EvalKernel::kGemm;
    MixtureEval full, part;
    gm.evaluate(X, 0.9, 0.45, all, full, ws);
    auto close = [](const auto& A, const auto& B) {
      return (A - B).cwiseAbs().maxCoeff() <= 1e-13 * std::max(1.0, static_cast<double>(B.cwiseAbs().maxCoeff()));
    };
    for (Eigen::Index block : {1, 8, 100, 1000}) {
      ws.block = block;
      gm.evaluate(X, 0.9, 0.45, all, part, ws);
      const std::string what = fmt::format("d = {}, block {}", gm.dim(), block);
      EXPECT_TRUE(close(part.logp, full.logp)) << what;
      EXPECT_TRUE(close(part.score, full.score)) << what;
      EXPECT_TRUE(close(part.trace, full.trace)) << what;
      EXPECT_TRUE(close(part.resp, full.resp)) << what;
      EXPECT_TRUE(close(part.x0, full.x0)) << what;
    }
  }
}

TEST(MixtureKernels, ConcurrentEvaluationsMatchSerialOnes) {
  // evaluate() is const and keeps its scratch in the caller's workspace: two threads evaluating the
  // halves of a batch at once get bitwise what the same calls get one after the other.
  const unsigned all = kLogp | kScore | kTrace | kResp | kDenoiser;
  for (const auto& gm : {gmm8_2d(), random_gmm(64, 8, 5)}) {
    const MatrixXd X = gm.sample(0.7, 0.7, 3, 2000);
    MixtureEval serial[2], threaded[2];
    for (int h = 0; h < 2; ++h) serial[h] = gm.evaluate(X.middleCols(h * 1000, 1000), 0.7, 0.7, all);
    for (int round = 0; round < 3; ++round) {
      std::thread t[2];
      for (int h = 0; h < 2; ++h)
        t[h] = std::thread([&, h] { threaded[h] = gm.evaluate(X.middleCols(h * 1000, 1000), 0.7, 0.7, all); });
      for (auto& th : t) th.join();
      for (int h = 0; h < 2; ++h)
        expect_bitwise_equal(threaded[h], serial[h], 0, fmt::format("d = {}, half {}", gm.dim(), h));
    }
  }
}

// ---- validation ----

void expect_mixture_error(std::vector<Component> c, const std::string& fragment) {
  try {
    GaussianMixture gm(std::move(c), "unit");
    ADD_FAILURE() << "accepted; expected an error naming " << fragment;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("unit: ", 0), 0u) << e.what();
  }
}

TEST(MixtureValidation, BadComponentsNameTheKey) {
  const MatrixXd I = MatrixXd::Identity(3, 3);
  const VectorXd z = VectorXd::Zero(3);
  MatrixXd asym = I;
  asym(0, 2) = 0.1;
  MatrixXd indef = I;
  indef(1, 1) = -0.5;
  expect_mixture_error({{1, z, I}, {1, z, asym}}, "component[1].cov");
  expect_mixture_error({{1, z, indef}}, "component[0].cov");
  expect_mixture_error({{1, z, I}, {1, z, I}, {-0.2, z, I}}, "component[2].weight");
  expect_mixture_error({{std::nan(""), z, I}}, "component[0].weight");
  expect_mixture_error({{1, z, I}, {1, VectorXd::Zero(2), I}}, "component[1].mean");
  expect_mixture_error({{1, z, I}, {1, z, MatrixXd::Identity(2, 2)}}, "component[1].cov");
  EXPECT_THROW(GaussianMixture({}, "unit"), InputError);
  // A custom locator supplies the prefix (file:line:col for TOML input).
  try {
    GaussianMixture({{1, z, indef}}, "unit", {}, [](int k, const std::string& key) {
      return "data.toml:12:3: component[" + std::to_string(k) + "]." + key;
    });
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("data.toml:12:3: component[0].cov", 0), 0u) << e.what();
  }
  // Rounding-level asymmetry (a computed A A^T) and PSD rounding are accepted.
  MatrixXd A = MatrixXd::Random(3, 3);
  MatrixXd S = A * A.transpose();
  S(0, 1) *= 1 + 1e-15;
  EXPECT_NO_THROW(GaussianMixture({{1, z, S}}, "unit"));
}

TEST(MixtureValidation, WeightsAreNormalizedWithAWarning) {
  const MatrixXd I = MatrixXd::Identity(2, 2);
  std::vector<std::string> warnings;
  auto warn = [&](const std::string& m) { warnings.push_back(m); };
  GaussianMixture gm({{2, VectorXd::Zero(2), I}, {6, VectorXd::Ones(2), I}}, "unit", warn);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("unit"), std::string::npos) << warnings[0];
  EXPECT_DOUBLE_EQ(gm.weights()(0), 0.25);
  EXPECT_DOUBLE_EQ(gm.weights()(1), 0.75);
  EXPECT_NEAR(gm.log_weights()(1), std::log(0.75), 1e-16);
  warnings.clear();
  GaussianMixture ok({{0.25, VectorXd::Zero(2), I}, {0.75, VectorXd::Ones(2), I}}, "unit", warn);
  EXPECT_TRUE(warnings.empty());
}

}  // namespace
}  // namespace flowgauge
