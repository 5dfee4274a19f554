#include "analytics/mixture.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <numbers>
#include <stdexcept>

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

// ---- evaluate(): the batched kernel (experiments/bench/README.md has its measured rates) ----
//
// Per call, with a_k = c_k^{-1/2} and W_k = diag(a_k) U_k^T (whitening of component k):
//   w_k = W_k (x - alpha mu_k),  log(w_k N_k(x)) = cst_k - |w_k|^2 / 2,
//   score  s  = -sum_k r_k W_k^T w_k                  (= -sum_k r_k C_k^{-1} (x - alpha mu_k)),
//   x0hat     =  sum_k r_k (mu_k + V_k w_k),  V_k = U_k diag(alpha s_k a_k)  (= mu_k + alpha S_k C_k^{-1} (.)),
//   tr J_s    =  sum_k r_k (|z_k|^2 - tr C_k^{-1}) - |s|^2,  |z_k|^2 = sum_i w_ki^2 / c_ki  (closed_forms 3).
// Points are rows inside a block of B (B-major), so every per-point quantity is a contiguous column
// and the elementwise work (log-sum-exp, exp, scalings) is vectorized across points. A block is
//   1. log-densities: [x^T 1] (B x (d+1)) times At ((d+1) x K d) -> every w_k -> L (B x K);
//   2. log-sum-exp over the K columns of L (one vectorized exp) -> log p, responsibilities r;
//   3. weighted sums: [r_k w_k, r_k] (B x (K d + K)) times G -> score (and denoiser) rows.
// Column i K + k of At (row of G) belongs to coordinate i of component k ("i-major"): r then
// scales d contiguous B x K slices. Steps 1 and 3 are GEMMs for d > 8; for d <= 8 they are
// fixed-size code that keeps a packet of points in registers and recomputes w_k in step 3
// instead of storing it (measured 1.4-2x faster than the GEMMs there).
namespace {
// Negligible components. The weighted sums (score, trace, denoiser, and sum_k e_k) use
//   e_k = exp(max(u_k, kCut)) - exp(kCut),  u_k = L_k - max_j L_j,  kCut = -513 ln 2:
// exactly 0 when u_k <= kCut, and otherwise e^u_k up to 2^-513 absolute (exact for e^u_k >= 2^-460).
// The terms so dropped or perturbed are <= 2^-512 |g_k|, below the rounding of the sums (dominated
// by r >= 1/K terms) unless some |g_k| exceeds 2^450 |s|. Without the cut, subnormal products
// r_k w_k reached the second product (r_k < 1e-290 for 86 % of the terms at d = 256, K = 8 in the
// benchmark): every operation on a subnormal costs a microcode assist, which made that case 3.4x
// slower than its GEMMs. (Eigen 3.4's exp itself returns 5.6e-309 below -709.78, computed through
// subnormal products; max(u, kCut) keeps it away from there.) kResp writes the uncut r_k.
constexpr double kCut = -513 * std::numbers::ln2;
constexpr Eigen::Index kLanes = 8;  // see round_up()
using Lanes = Eigen::Array<double, kLanes, 1>;
const double kExpCut = Lanes::Constant(kCut).exp()(0);  // ~2^-513 by the same vectorized exp: e_k = 0 at the cut
// Block rows are padded to a multiple of every SIMD width (2, 4, 8 doubles): with 64-byte aligned
// columns, Eigen then runs every elementwise loop in packets only, so a point's arithmetic never
// depends on its position in the block (no scalar head or tail with different rounding).
Eigen::Index round_up(Eigen::Index n) { return (n + kLanes - 1) / kLanes * kLanes; }

struct Job {
  Eigen::Index d, K, ng, gk;  // ng: columns of G (d or 2d), gk: its rows (K d, or K d + K with the denoiser)
  bool score, denoise, trace;
};

// The GEMM kernel on points j0 .. j0 + nb of X (nb <= Bp). GEMM 1 reads X^T directly (its packing
// does the transposition, 1.5x faster at d = 64, K = 1 than a transposed copy) and leaves the
// offsets b = -alpha W_k mu_k (row d of At) to the passes below.
// Step 1: W = X^T W_stack^T, then L_k = cst_k - |w_k|^2 / 2 with w_k = W_k + b_k (|z_k|^2 for the trace).
void log_densities_gemm(EvalWorkspace& ws, const Job& j, const ConstMatRef& X, Eigen::Index j0, Eigen::Index nb) {
  const Eigen::Index Bp = ws.L.rows(), K = j.K, d = j.d;
  ws.Wt.topLeftCorner(nb, K * d).noalias() = X.middleCols(j0, nb).transpose() * ws.At.topRows(d);  // GEMM 1
  if (nb < Bp) ws.Wt.bottomRows(Bp - nb).setZero();  // padding rows: finite, never written out
  const auto W = ws.Wt.array();
  const auto b = ws.At.row(d);
  auto& q = ws.m;
  for (Eigen::Index k = 0; k < K; ++k) {
    q = (W.col(k) + b(k)).square();
    for (Eigen::Index i = 1; i < d; ++i) q += (W.col(i * K + k) + b(i * K + k)).square();
    ws.L.col(k) = ws.cst(k) - 0.5 * q;
    if (j.trace) {
      auto z = ws.Z.col(k);
      z = (W.col(k) + b(k)).square() * ws.invc(0, k);
      for (Eigen::Index i = 1; i < d; ++i) z += (W.col(i * K + k) + b(i * K + k)).square() * ws.invc(i, k);
    }
  }
}

// Step 3: W <- [r_k w_k, r_k], St = W G (score and denoiser rows), trace into ws.t.
// (Eigen 3.4's colwise()/rowwise() broadcasts are not vectorized: the passes go column by column.)
void weighted_sums_gemm(EvalWorkspace& ws, const Job& j) {
  const Eigen::Index K = j.K, d = j.d;
  auto W = ws.Wt.array();
  const auto b = ws.At.row(d);
  for (Eigen::Index i = 0; i < d; ++i)
    for (Eigen::Index k = 0; k < K; ++k) W.col(i * K + k) = (W.col(i * K + k) + b(i * K + k)) * ws.R.col(k);
  if (j.denoise) ws.Wt.rightCols(K) = ws.R.matrix();
  ws.St.noalias() = ws.Wt.leftCols(j.gk) * ws.G;  // GEMM 2
  if (j.trace && K > 1) {
    auto& t = ws.t;
    t = ws.R.col(0) * (ws.Z.col(0) - ws.trinv(0));
    for (Eigen::Index k = 1; k < K; ++k) t += ws.R.col(k) * (ws.Z.col(k) - ws.trinv(k));
    for (Eigen::Index l = 0; l < d; ++l) t -= ws.St.col(l).array().square();
  }
}

// Fixed d = D: a packet of kLanes points at a time, its coordinates and sums in registers.

template <int D>
struct Fixed {
  // w_k for the packet: row i of W_k and its offset are column i K + k of At.
  static void whiten(const EvalWorkspace& ws, Eigen::Index K, Eigen::Index k, const Lanes (&x)[D], Lanes (&w)[D]) {
    for (int i = 0; i < D; ++i) {
      const double* a = ws.At.data() + (i * K + k) * (D + 1);
      w[i] = x[0] * a[0];
      for (int l = 1; l < D; ++l) w[i] += x[l] * a[l];
      w[i] += a[D];
    }
  }
  static void load(const EvalWorkspace& ws, Eigen::Index p, Lanes (&x)[D]) {
    for (int l = 0; l < D; ++l) x[l] = ws.Xt.col(l).segment<kLanes>(p).array();
  }

  // L, and its maximum over k in ws.m.
  static void log_densities(EvalWorkspace& ws, const Job& j) {
    const Eigen::Index K = j.K;
    for (Eigen::Index p = 0; p < ws.Xt.rows(); p += kLanes) {
      Lanes x[D], w[D], m;
      load(ws, p, x);
      for (Eigen::Index k = 0; k < K; ++k) {
        whiten(ws, K, k, x, w);
        Lanes q = w[0].square();
        for (int i = 1; i < D; ++i) q += w[i].square();
        const Lanes Lk = ws.cst(k) - 0.5 * q;
        ws.L.col(k).segment<kLanes>(p) = Lk;
        m = k == 0 ? Lk : m.max(Lk);
      }
      ws.m.segment<kLanes>(p) = m;
    }
  }

  // Steps 2 and 3 fused: e_k in registers, log p in ws.lse, 1 / sum_k e_k in ws.inv, sums in St and ws.t.
  static void weighted_sums(EvalWorkspace& ws, const Job& j) {
    const Eigen::Index K = j.K, gk = j.gk;
    const double* G = ws.G.data();  // column l: score coordinate l (if j.score), then denoiser coordinates
    const Eigen::Index off = j.score ? D : 0;
    for (Eigen::Index p = 0; p < ws.Xt.rows(); p += kLanes) {
      Lanes x[D], w[D], s[D], x0[D], t = Lanes::Zero(), acc = Lanes::Zero();
      const Lanes m = ws.m.segment<kLanes>(p);
      load(ws, p, x);
      for (int l = 0; l < D; ++l) s[l] = x0[l] = Lanes::Zero();
      for (Eigen::Index k = 0; k < K; ++k) {
        const Lanes e = (ws.L.col(k).segment<kLanes>(p) - m).max(kCut).exp() - kExpCut;
        acc += e;
        if (j.ng == 0) continue;
        whiten(ws, K, k, x, w);
        if (j.score)
          for (int l = 0; l < D; ++l) {
            Lanes g = w[0] * G[l * gk + k];
            for (int i = 1; i < D; ++i) g += w[i] * G[l * gk + i * K + k];
            s[l] += e * g;
          }
        if (j.denoise)
          for (int l = 0; l < D; ++l) {
            const double* V = G + (off + l) * gk;
            Lanes g = w[0] * V[k];
            for (int i = 1; i < D; ++i) g += w[i] * V[i * K + k];
            x0[l] += e * (g + V[D * K + k]);  // + mu_k
          }
        if (j.trace) {
          Lanes z = w[0].square() * ws.invc(0, k);
          for (int i = 1; i < D; ++i) z += w[i].square() * ws.invc(i, k);
          t += e * (z - ws.trinv(k));
        }
      }
      ws.lse.segment<kLanes>(p) = m + acc.log();
      const Lanes inv = acc.inverse();
      ws.inv.segment<kLanes>(p) = inv;
      if (j.score)
        for (int l = 0; l < D; ++l) ws.St.col(l).segment<kLanes>(p) = (s[l] *= inv).matrix();
      if (j.denoise)
        for (int l = 0; l < D; ++l) ws.St.col(off + l).segment<kLanes>(p) = (x0[l] * inv).matrix();
      if (j.trace) {
        t *= inv;
        for (int l = 0; l < D; ++l) t -= s[l].square();
        ws.t.segment<kLanes>(p) = t;
      }
    }
  }
};

void fixed_step(Eigen::Index d, bool step1, EvalWorkspace& ws, const Job& j) {
  switch (d) {
    case 1: return step1 ? Fixed<1>::log_densities(ws, j) : Fixed<1>::weighted_sums(ws, j);
    case 2: return step1 ? Fixed<2>::log_densities(ws, j) : Fixed<2>::weighted_sums(ws, j);
    case 3: return step1 ? Fixed<3>::log_densities(ws, j) : Fixed<3>::weighted_sums(ws, j);
    case 4: return step1 ? Fixed<4>::log_densities(ws, j) : Fixed<4>::weighted_sums(ws, j);
    case 5: return step1 ? Fixed<5>::log_densities(ws, j) : Fixed<5>::weighted_sums(ws, j);
    case 6: return step1 ? Fixed<6>::log_densities(ws, j) : Fixed<6>::weighted_sums(ws, j);
    case 7: return step1 ? Fixed<7>::log_densities(ws, j) : Fixed<7>::weighted_sums(ws, j);
    case 8: return step1 ? Fixed<8>::log_densities(ws, j) : Fixed<8>::weighted_sums(ws, j);
    default: throw std::logic_error("mixture evaluate: no elementwise kernel for this dimension");
  }
}

// Step 2 for the GEMM kernel: log-sum-exp over the K columns of L, m = max_k L_k. Leaves
// r_k = e_k inv in R (e_k cut as above), inv = 1 / sum_k e_k, log p = m + log sum_k e_k in ws.lse.
// Responsibilities are e_k inv, not exp(L_k - lse): lse is rounded to eps |lse|, which would put an
// error of that size (1e-11 at log p ~ -1e5) on every r_k.
void log_sum_exp(EvalWorkspace& ws, Eigen::Index K) {
  const auto& L = ws.L;
  auto& m = ws.m;
  if (K == 1) {
    ws.lse = L.col(0);
    ws.R.setOnes();
    ws.inv.setOnes();
    return;
  }
  m = L.rowwise().maxCoeff();
  for (Eigen::Index k = 0; k < K; ++k) ws.R.col(k) = (L.col(k) - m).max(kCut).exp() - kExpCut;  // vectorized exp
  auto& acc = ws.inv;
  acc = ws.R.rowwise().sum();
  ws.lse = m + acc.log();
  acc = acc.inverse();
  for (Eigen::Index k = 0; k < K; ++k) ws.R.col(k) *= acc;
}
}  // namespace

Eigen::Index GaussianMixture::block_size(EvalKernel kernel) const {
  const bool elementwise =
      kernel == EvalKernel::kElementwise || (kernel == EvalKernel::kAuto && d_ <= kElementwiseMaxDim);
  const Eigen::Index Kd = static_cast<Eigen::Index>(K_) * d_;
  // GEMM: keep the B x K d block of w near 1 MiB, inside the 2 MiB L2 with the GEMM's packed
  // panels (measured: 4 MiB blocks made the GEMMs alone 5-30 % slower at d = 16..64). Elementwise: L and R
  // (B x K each) near 16 KiB, in L1 (measured flat within noise from 32 to 128 points).
  if (elementwise) return std::clamp<Eigen::Index>(1024 / K_, 32, 256) / kLanes * kLanes;
  return std::clamp<Eigen::Index>((Eigen::Index(1) << 17) / Kd, 128, 1024) / kLanes * kLanes;
}

void GaussianMixture::evaluate(const ConstMatRef& X, double alpha, double sigma, unsigned flags, MixtureEval& out,
                               EvalWorkspace& ws) const {
  if (X.rows() != d_)
    throw std::invalid_argument(fmt::format("mixture evaluate: points have {} rows, mixture dimension is {}",
                                            X.rows(), d_));
  const bool gemm = ws.kernel == EvalKernel::kGemm || (ws.kernel == EvalKernel::kAuto && d_ > kElementwiseMaxDim);
  if (!gemm && d_ > kElementwiseMaxDim)
    throw std::invalid_argument(fmt::format("mixture evaluate: EvalKernel::kElementwise needs d <= {}, got {}",
                                            kElementwiseMaxDim, d_));
  const Eigen::Index N = X.cols(), d = d_, K = K_, Kd = K * d;
  const Eigen::Index B = ws.block > 0 ? ws.block : block_size(gemm ? EvalKernel::kGemm : EvalKernel::kElementwise);
  const Eigen::Index Bp = round_up(std::min(B, N));
  Job job{.d = d, .K = K, .ng = 0, .gk = 0, .score = (flags & (kScore | kTrace)) != 0,
          .denoise = (flags & kDenoiser) != 0, .trace = (flags & kTrace) != 0};
  job.ng = (job.score ? d : 0) + (job.denoise ? d : 0);
  job.gk = job.denoise ? Kd + K : Kd;

  // Per-call constants: c_k = alpha^2 s_k + sigma^2, 1/c_k, log w_k - (d log 2pi + sum log c_k)/2.
  auto& invc = ws.invc;
  invc.resize(d, K);
  ws.cst.resize(K);
  ws.trinv.resize(K);
  for (int k = 0; k < K_; ++k) {
    auto c = alpha * alpha * s_[k].array() + sigma * sigma;
    if (!(c.minCoeff() > 0))
      throw std::domain_error("mixture evaluate: C_k(t) is singular (sigma = 0 with a rank-deficient covariance)");
    invc.col(k) = c.inverse().matrix();
    ws.cst(k) = logw_(k) - 0.5 * (static_cast<double>(d) * kLog2Pi - invc.col(k).array().log().sum());
    ws.trinv(k) = invc.col(k).sum();
  }
  // The products' right-hand sides, O(K d^2) per call, in i-major order (column / row i K + k).
  ws.At.resize(d + 1, Kd);
  for (Eigen::Index k = 0; k < K; ++k)
    for (Eigen::Index i = 0; i < d; ++i) {
      const double a = std::sqrt(invc(i, k));
      ws.At.col(i * K + k).head(d) = a * U_[k].col(i);  // row i of W_k
      ws.At(d, i * K + k) = -alpha * a * Utmu_(i, k);   // row i of -alpha W_k mu_k
    }
  ws.G.resize(job.gk, job.ng);
  if (job.score) {
    ws.G.topLeftCorner(Kd, d) = -ws.At.topRows(d).transpose();
    if (job.denoise) ws.G.bottomLeftCorner(K, d).setZero();
  }
  if (job.denoise) {
    ws.G.topRightCorner(Kd, d) = (ws.At.topRows(d) * (alpha * S_.transpose().reshaped()).asDiagonal()).transpose();
    ws.G.bottomRightCorner(K, d) = Mu_.transpose();
  }

  if (flags & kLogp) out.logp.resize(N);
  if (job.score) out.score.resize(d, N);
  if (job.trace) out.trace.resize(N);
  if (flags & kResp) out.resp.resize(K, N);
  if (job.denoise) out.x0.resize(d, N);
  ws.St.resize(Bp, job.ng);
  if (gemm) {
    ws.Wt.resize(Bp, job.gk);
    ws.R.resize(Bp, K);
    if (job.trace) ws.Z.resize(Bp, K);
  } else {
    ws.Xt.resize(Bp, d + 1);
    ws.Xt.col(d).setOnes();
  }
  ws.L.resize(Bp, K);
  ws.m.resize(Bp);
  ws.lse.resize(Bp);
  ws.inv.resize(Bp);
  if (job.trace) ws.t.resize(Bp);

  for (Eigen::Index j0 = 0; j0 < N; j0 += B) {
    const Eigen::Index nb = std::min(B, N - j0);
    if (gemm) {
      log_densities_gemm(ws, job, X, j0, nb);
      log_sum_exp(ws, K);
      if (job.ng > 0) weighted_sums_gemm(ws, job);
    } else {
      ws.Xt.topLeftCorner(nb, d) = X.middleCols(j0, nb).transpose();
      ws.Xt.bottomLeftCorner(Bp - nb, d).setZero();  // padding rows: finite values, never written out
      fixed_step(d, true, ws, job);
      fixed_step(d, false, ws, job);
    }
    if (flags & kLogp) out.logp.segment(j0, nb) = ws.lse.head(nb);
    if (flags & kResp) {
      if (K == 1)
        out.resp.middleCols(j0, nb).setOnes();
      else {
        // r_k without the cut, down to the smallest subnormals: exp(u) as exp(u/2)^2 (Eigen's exp
        // returns 5.6e-309 for every u < -709.78). L is free again.
        for (Eigen::Index k = 0; k < K; ++k)
          ws.L.col(k) = (0.5 * (ws.L.col(k) - ws.m)).max(-700.0).exp().square() * ws.inv;
        out.resp.middleCols(j0, nb) = ws.L.topRows(nb).transpose().matrix();
      }
    }
    if (job.score) out.score.middleCols(j0, nb) = ws.St.topLeftCorner(nb, d).transpose();
    if (job.denoise) out.x0.middleCols(j0, nb) = ws.St.topRightCorner(nb, d).transpose();
    if (job.trace) {
      // tr J_s = sum_k r_k (|z_k|^2 - tr C_k^-1) - |s|^2 (|g_k| = |z_k|: U_k orthogonal); K = 1: exactly -tr C^-1
      if (K == 1)
        out.trace.segment(j0, nb).setConstant(-ws.trinv(0));
      else
        out.trace.segment(j0, nb) = ws.t.head(nb);
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
  const Eigen::Index N = X.cols(), d = d_, K = K_, B = block_size(EvalKernel::kGemm);
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
