#include "analytics/mixture.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <numbers>

#include "analytics/errors.hpp"
#include "analytics/random.hpp"

namespace flowgauge {

namespace {
constexpr double kLog2Pi = 1.8378770664093454836;  // log(2 pi)
constexpr double kMaxMean = 1e100, kMaxCov = 1e200;  // input magnitudes (see the constructor)

bool is_diagonal(const MatrixXd& S) {
  for (Eigen::Index j = 0; j < S.cols(); ++j)
    for (Eigen::Index i = 0; i < S.rows(); ++i)
      if (i != j && S(i, j) != 0.0) return false;
  return true;
}

// S = U diag(s) U^T, s ascending (as Eigen's SelfAdjointEigenSolver orders them). A diagonal S is
// read off exactly (U a permutation, `exact` set): no rounding, so eigenvalues of any spread (1e-12
// next to 1e6) and exact zeros survive, and d = 1e3 isotropic data costs O(d^2), not O(d^3).
bool decompose(const MatrixXd& S, VectorXd& s, MatrixXd& U, bool& exact) {
  const Eigen::Index d = S.rows();
  exact = is_diagonal(S);
  if (exact) {
    std::vector<Eigen::Index> order(static_cast<std::size_t>(d));
    for (Eigen::Index i = 0; i < d; ++i) order[static_cast<std::size_t>(i)] = i;
    std::stable_sort(order.begin(), order.end(), [&](Eigen::Index a, Eigen::Index b) { return S(a, a) < S(b, b); });
    s.resize(d);
    U = MatrixXd::Zero(d, d);
    for (Eigen::Index i = 0; i < d; ++i) {
      const Eigen::Index src = order[static_cast<std::size_t>(i)];
      s(i) = S(src, src);
      U(src, i) = 1.0;
    }
    return true;
  }
  Eigen::SelfAdjointEigenSolver<MatrixXd> es(S);
  if (es.info() != Eigen::Success) return false;
  s = es.eigenvalues();
  U = es.eigenvectors();
  return true;
}

// Computed eigenvalues at or below this are exact zeros (the covariance is singular there).
// Householder tridiagonalization + implicit QR is backward stable: the computed pairs are exact for
// S + E with ||E||_2 <= p(d) eps ||S||_2, p a modest polynomial (Golub & Van Loan, 4th ed., 8.4), and
// by Weyl's inequality each computed eigenvalue is within ||E||_2 of a true one. An eigenvalue below
// d eps lambda_max therefore cannot be told apart from 0: S = A A^T with A d x r (r < d) comes out
// with d - r eigenvalues of ~1e-17 |S|, and keeping them made C_k(t) = alpha^2 S_k look invertible
// at sigma = 0 (log p ~ 1e17 instead of the singular-covariance error). p(d) = d is the leading
// term of the standard error analyses. A diagonal S is decomposed exactly (above): nothing is
// rounded there, so only true zeros are zero.
double zero_threshold(Eigen::Index d, double lambda_max, bool exact) {
  return exact ? 0.0 : static_cast<double>(d) * std::numeric_limits<double>::epsilon() * lambda_max;
}
}  // namespace

GaussianMixture::GaussianMixture(std::vector<Component> components, const std::string& origin,
                                 const std::function<void(const std::string&)>& warn, const Locator& locate)
    : comps_(std::move(components)) {
  auto fail = [&](int k, const char* key, const std::string& msg) {
    const std::string where = locate ? locate(k, key) : fmt::format("{}: component[{}].{}", origin, k, key);
    throw InputError(fmt::format("{}: {}", where, msg));
  };
  if (comps_.empty()) throw InputError(fmt::format("{}: the mixture has no components", origin));
  K_ = static_cast<int>(comps_.size());
  d_ = static_cast<int>(comps_[0].mean.size());
  if (d_ < 1) fail(0, "mean", "empty mean vector");
  w_.resize(K_);
  double total = 0;
  for (int k = 0; k < K_; ++k) {
    auto& c = comps_[k];
    if (!std::isfinite(c.weight) || !(c.weight > 0))
      fail(k, "weight", fmt::format("must be finite and > 0, got {}", c.weight));
    if (c.mean.size() != d_)
      fail(k, "mean", fmt::format("has length {}, expected dimension {}", c.mean.size(), d_));
    if (!c.mean.allFinite()) fail(k, "mean", "contains NaN or Inf");
    if (c.cov.rows() != d_ || c.cov.cols() != d_)
      fail(k, "cov", fmt::format("is {}x{}, expected {}x{}", c.cov.rows(), c.cov.cols(), d_, d_));
    if (!c.cov.allFinite()) fail(k, "cov", "contains NaN or Inf");
    // Everything downstream squares distances and sums d of them (|x - alpha mu|^2, y^T C^-1 y,
    // alpha^2 S + sigma^2): |mu_i| <= 1e100 and |S_ij| <= 1e200 keep those sums far from overflow
    // (1.8e308) for any d, instead of a log p of -inf or a NaN responsibility later.
    if (const double m = c.mean.cwiseAbs().maxCoeff(); m > kMaxMean)
      fail(k, "mean", fmt::format("has an entry of magnitude {:.3g}, beyond the supported {:.0e}", m, kMaxMean));
    const double scale = std::max(1e-300, c.cov.cwiseAbs().maxCoeff());
    if (scale > kMaxCov)
      fail(k, "cov", fmt::format("has an entry of magnitude {:.3g}, beyond the supported {:.0e}", scale, kMaxCov));
    const double asym = (c.cov - c.cov.transpose()).cwiseAbs().maxCoeff();
    if (asym > 1e-12 * scale)  // rounding in a computed A A^T stays far below 1e-12 relative
      fail(k, "cov", fmt::format("is not symmetric (max |S - S^T| = {:.3g}, max |S| = {:.3g})", asym, scale));
    c.cov = 0.5 * (c.cov + c.cov.transpose());
    w_(k) = c.weight;
    total += c.weight;
  }
  if (std::abs(total - 1.0) > 1e-12 && warn)
    warn(fmt::format("{}: weights sum to {:.17g}; normalized to 1", origin, total));
  if (std::isfinite(total)) {
    w_ /= total;
  } else {  // the sum overflowed (weights near 1e308): divide by the largest first
    w_ /= w_.maxCoeff();
    w_ /= w_.sum();
  }
  // A normalized weight below the smallest normal double is subnormal (1e-320 keeps ~3 digits) or 0:
  // log w_k would be wrong or -inf. Refused by name rather than silently distorted.
  for (int k = 0; k < K_; ++k)
    if (!(w_(k) >= std::numeric_limits<double>::min()))
      fail(k, "weight",
           fmt::format("{:.6g} normalizes to {:.3g}, below the smallest normal double {:.3g} (subnormal weights lose "
                       "precision and log w underflows); drop the component or raise its weight",
                       comps_[k].weight, w_(k), std::numeric_limits<double>::min()));
  logw_ = w_.array().log();

  mu_.resize(K_);
  s_.resize(K_);
  U_.resize(K_);
  Ut_stack_.resize(static_cast<Eigen::Index>(K_) * d_, d_);
  U_stack_.resize(d_, static_cast<Eigen::Index>(K_) * d_);
  Utmu_.resize(d_, K_);
  Mu_.resize(d_, K_);
  S_.resize(d_, K_);
  for (int k = 0; k < K_; ++k) {
    bool exact = false;
    if (!decompose(comps_[k].cov, s_[k], U_[k], exact)) fail(k, "cov", "eigen-decomposition failed");
    const VectorXd& s = s_[k];
    const double smax = s.cwiseAbs().maxCoeff();
    // Symmetric eigensolvers are backward stable: rounding leaves |negative| <= ~d eps |S|; the
    // 1e-12 d |S| allowance also accepts covariances written out with ~12 significant digits.
    if (s.minCoeff() < -1e-12 * std::max(1.0, static_cast<double>(d_)) * smax)
      fail(k, "cov", fmt::format("is not positive semidefinite (smallest eigenvalue {:.6g})", s.minCoeff()));
    const double zero = zero_threshold(d_, smax, exact);
    s_[k] = s.unaryExpr([zero](double v) { return v <= zero ? 0.0 : v; });
    mu_[k] = comps_[k].mean;
    Ut_stack_.middleRows(static_cast<Eigen::Index>(k) * d_, d_) = U_[k].transpose();
    U_stack_.middleCols(static_cast<Eigen::Index>(k) * d_, d_) = U_[k];
    Utmu_.col(k) = U_[k].transpose() * mu_[k];
    Mu_.col(k) = mu_[k];
    S_.col(k) = s_[k];
  }
  // Keep a (K d) x B projection block near 4 MiB so the GEMMs stay cache friendly.
  block_ = std::clamp<Eigen::Index>((Eigen::Index(1) << 19) / (static_cast<Eigen::Index>(K_) * d_), 64, 2048);
}

MatrixXd GaussianMixture::covariance(int k) const { return U_[k] * s_[k].asDiagonal() * U_[k].transpose(); }

VectorXd GaussianMixture::marginal_mean(double alpha) const {
  VectorXd m = VectorXd::Zero(d_);
  for (int k = 0; k < K_; ++k) m += w_(k) * mu_[k];
  return alpha * m;
}

MatrixXd GaussianMixture::marginal_cov(double alpha, double sigma) const {
  const VectorXd m = marginal_mean(1.0);
  MatrixXd C = MatrixXd::Zero(d_, d_);
  for (int k = 0; k < K_; ++k) C += w_(k) * (covariance(k) + mu_[k] * mu_[k].transpose());
  C -= m * m.transpose();
  return alpha * alpha * C + sigma * sigma * MatrixXd::Identity(d_, d_);
}

void GaussianMixture::evaluate(const ConstMatRef& X, double alpha, double sigma, unsigned flags, MixtureEval& out,
                               EvalWorkspace& ws) const {
  if (X.rows() != d_)
    throw std::invalid_argument(fmt::format("mixture evaluate: points have {} rows, mixture dimension is {}",
                                            X.rows(), d_));
  const Eigen::Index N = X.cols(), d = d_, K = K_, B = block_;
  // Per-component constants: c_k = alpha^2 s_k + sigma^2, 1/c_k, log w_k - (d log 2pi + sum log c_k)/2.
  auto& invc = ws.invc;
  auto& cst = ws.cst;
  auto& trinv = ws.trinv;
  invc.resize(d, K);
  cst.resize(K);
  trinv.resize(K);
  for (int k = 0; k < K_; ++k) {
    auto c = alpha * alpha * s_[k].array() + sigma * sigma;
    if (!(c.minCoeff() > 0))
      throw std::domain_error("mixture evaluate: C_k(t) is singular (sigma = 0 with a rank-deficient covariance)");
    invc.col(k) = c.inverse().matrix();
    cst(k) = logw_(k) - 0.5 * (static_cast<double>(d) * kLog2Pi - invc.col(k).array().log().sum());
    trinv(k) = invc.col(k).sum();
  }
  if (flags & kLogp) out.logp.resize(N);
  if (flags & (kScore | kTrace)) out.score.resize(d, N);
  if (flags & kTrace) out.trace.resize(N);
  if (flags & kResp) out.resp.resize(K, N);
  if (flags & kDenoiser) {
    out.x0.resize(d, N);
    ws.Yd.resize(K * d, std::min(B, N));
  }
  ws.Y.resize(K * d, std::min(B, N));
  ws.logn.resize(K, std::min(B, N));
  ws.W.resize(K, std::min(B, N));  // |z_k|^2 per column
  ws.lse.resize(std::min(B, N));
  ws.m.resize(std::min(B, N));
  ws.acc.resize(std::min(B, N));

  for (Eigen::Index j0 = 0; j0 < N; j0 += B) {
    const Eigen::Index nb = std::min(B, N - j0);
    auto Y = ws.Y.leftCols(nb);
    auto logn = ws.logn.leftCols(nb);
    auto zz = ws.W.leftCols(nb);
    Y.noalias() = Ut_stack_ * X.middleCols(j0, nb);  // GEMM 1: all projections U_k^T x
    for (Eigen::Index k = 0; k < K; ++k) {
      auto Yk = Y.middleRows(k * d, d);
      Yk.colwise() -= alpha * Utmu_.col(k);  // y_k = U_k^T (x - alpha mu_k)
      logn.row(k) = cst(k) - 0.5 * (Yk.array().square().colwise() * invc.col(k).array()).colwise().sum();
      Yk.array().colwise() *= invc.col(k).array();  // z_k = y_k / c_k (in place)
      if (flags & kTrace) zz.row(k) = Yk.colwise().squaredNorm();
    }
    // log-sum-exp over components; logn becomes the responsibilities. r_k = exp(logn_k - m) / acc,
    // not exp(logn_k - lse): lse = m + log(acc) is rounded to eps |lse|, which would put an error of
    // that size (1e-11 at log p ~ -1e5) on every r_k and on sum_k r_k = 1.
    if (K == 1) {
      ws.lse.head(nb) = logn.row(0).transpose();
      logn.setOnes();
    } else {
      // Vectorized over the block (Eigen's SIMD exp/log); same arithmetic as a per-column loop.
      auto m = ws.m.head(nb);
      auto acc = ws.acc.head(nb);
      m = logn.colwise().maxCoeff().transpose();
      logn.array() = (logn.array().rowwise() - m.transpose().array()).exp();
      acc = logn.colwise().sum().transpose();
      ws.lse.head(nb) = m.array() + acc.array().log();
      logn.array().rowwise() *= acc.transpose().array().inverse();
    }
    if (flags & kLogp) out.logp.segment(j0, nb) = ws.lse.head(nb);
    if (flags & kResp) out.resp.middleCols(j0, nb) = logn;
    if (flags & kDenoiser) {
      auto Yd = ws.Yd.leftCols(nb);
      for (Eigen::Index k = 0; k < K; ++k)
        Yd.middleRows(k * d, d) = ((Y.middleRows(k * d, d).array().colwise() * (alpha * S_.col(k).array())).rowwise() *
                                   logn.row(k).array());
      out.x0.middleCols(j0, nb).noalias() = Mu_ * logn;
      out.x0.middleCols(j0, nb).noalias() += U_stack_ * Yd;
    }
    if (flags & (kScore | kTrace)) {
      if (K > 1)
        for (Eigen::Index k = 0; k < K; ++k) Y.middleRows(k * d, d).array().rowwise() *= logn.row(k).array();
      out.score.middleCols(j0, nb).noalias() = -U_stack_ * Y;  // GEMM 2: s = -sum_k r_k U_k z_k
      if (flags & kTrace) {
        // tr J_s = -sum_k r_k sum_i 1/c_ki + sum_k r_k |z_k|^2 - |s|^2  (|g_k| = |z_k|, U_k orthogonal)
        if (K == 1)
          out.trace.segment(j0, nb).setConstant(-trinv(0));
        else
          out.trace.segment(j0, nb) = ((logn.array() * (zz.array().colwise() - trinv.array())).colwise().sum() -
                                       out.score.middleCols(j0, nb).colwise().squaredNorm().array())
                                          .transpose();
      }
    }
  }
}

MixtureEval GaussianMixture::evaluate(const ConstMatRef& X, double alpha, double sigma, unsigned flags) const {
  MixtureEval out;
  EvalWorkspace ws;
  evaluate(X, alpha, sigma, flags, out, ws);
  return out;
}

void GaussianMixture::probe_quadratic(const ConstMatRef& X, double alpha, double sigma, const ConstMatRef& V,
                                      unsigned flags, MixtureEval& ev, MatRef out, EvalWorkspace& ws) const {
  const Eigen::Index N = X.cols(), d = d_, K = K_, B = block_;
  if (V.rows() != d_ || (N > 0 && V.cols() % N != 0) || (N == 0 && V.cols() != 0))
    throw std::invalid_argument(fmt::format("mixture probe_quadratic: probes are {} x {}, expected {} x (P * {})",
                                            V.rows(), V.cols(), d_, N));
  const Eigen::Index P = N > 0 ? V.cols() / N : 0;
  if (out.rows() != P || out.cols() != N)
    throw std::invalid_argument(fmt::format("mixture probe_quadratic: output is {} x {}, expected {} x {}", out.rows(),
                                            out.cols(), P, N));
  evaluate(X, alpha, sigma, flags | kScore | kResp, ev, ws);  // also leaves ws.invc = 1 / c_k
  // ws.Y / ws.Yd are free again: z_k of a block in Y, the probes' projections U_k^T v in Yd.
  ws.Y.resize(K * d, std::min(B, N));
  ws.Yd.resize(K * d, std::min(B, N));
  for (Eigen::Index j0 = 0; j0 < N; j0 += B) {
    const Eigen::Index nb = std::min(B, N - j0);
    auto Z = ws.Y.leftCols(nb);
    auto W = ws.Yd.leftCols(nb);
    Z.noalias() = Ut_stack_ * X.middleCols(j0, nb);
    for (Eigen::Index k = 0; k < K; ++k) {
      auto Zk = Z.middleRows(k * d, d);
      Zk.colwise() -= alpha * Utmu_.col(k);
      Zk.array().colwise() *= ws.invc.col(k).array();  // z_k = U_k^T (x - alpha mu_k) / c_k
    }
    const auto R = ev.resp.middleCols(j0, nb);
    const auto S = ev.score.middleCols(j0, nb);
    for (Eigen::Index p = 0; p < P; ++p) {
      const auto Vp = V.middleCols(p * N + j0, nb);
      W.noalias() = Ut_stack_ * Vp;  // U_k^T v for every k
      auto o = out.row(p).segment(j0, nb);
      o = -(S.cwiseProduct(Vp)).colwise().sum().array().square().matrix();  // -(s . v)^2
      for (Eigen::Index k = 0; k < K; ++k) {
        const auto Wk = W.middleRows(k * d, d);
        const auto Zk = Z.middleRows(k * d, d);
        const auto a = (Wk.array().square().colwise() * ws.invc.col(k).array()).colwise().sum();  // v^T C_k^-1 v
        const auto b = Zk.cwiseProduct(Wk).colwise().sum().array();                               // -(g_k . v)
        o.array() += R.row(k).array() * (b.square() - a);
      }
    }
  }
}

MatrixXd GaussianMixture::score_jacobian(const Eigen::Ref<const VectorXd>& x, double alpha, double sigma) const {
  const MixtureEval ev = evaluate(x, alpha, sigma, kScore | kResp);
  const VectorXd s = ev.score.col(0);
  MatrixXd J = -s * s.transpose();
  for (int k = 0; k < K_; ++k) {
    const double r = ev.resp(k, 0);
    const VectorXd invc = (alpha * alpha * s_[k].array() + sigma * sigma).inverse().matrix();
    const VectorXd g = -U_[k] * ((U_[k].transpose() * (x - alpha * mu_[k])).cwiseProduct(invc));
    J += r * (g * g.transpose() - U_[k] * invc.asDiagonal() * U_[k].transpose());
  }
  return 0.5 * (J + J.transpose());
}

void GaussianMixture::sample(double alpha, double sigma, std::uint64_t seed, std::int64_t first_particle,
                             MatRef out) const {
  if (out.rows() != d_) throw std::invalid_argument("mixture sample: output has the wrong number of rows");
  CounterRng pick(seed, Stream::kMixtureComponent), noise(seed, Stream::kMixtureNoise);
  VectorXd cdf(K_);
  double acc = 0;
  for (int k = 0; k < K_; ++k) cdf(k) = (acc += w_(k));
  MatrixXd sd(d_, K_);  // sqrt of c_k = alpha^2 s_k + sigma^2
  for (int k = 0; k < K_; ++k) sd.col(k) = (alpha * alpha * s_[k].array() + sigma * sigma).sqrt().matrix();
  VectorXd xi(d_);
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    const auto p = static_cast<std::uint64_t>(first_particle + j);
    const double u = pick.uniforms(p, 0)[0] * acc;
    const int k = std::min<int>(K_ - 1, static_cast<int>(std::upper_bound(cdf.data(), cdf.data() + K_, u) - cdf.data()));
    noise.normals(p, xi.data(), d_);
    xi.array() *= sd.col(k).array();
    out.col(j).noalias() = U_[k] * xi;  // x = alpha mu_k + U_k diag(sqrt c_k) xi
    out.col(j) += alpha * mu_[k];
  }
}

MatrixXd GaussianMixture::sample(double alpha, double sigma, std::uint64_t seed, Eigen::Index n) const {
  MatrixXd out(d_, n);
  sample(alpha, sigma, seed, 0, out);
  return out;
}

}  // namespace flowgauge
