#pragma once
// Gaussian-mixture data and its exact noisy marginals (closed_forms.md section 3):
// p_t = sum_k w_k N(alpha mu_k, C_k), C_k = alpha^2 S_k + sigma^2 I = U_k diag(c_k) U_k^T.
// Points are columns of a d x N matrix (an h5py (N, d) array read as-is).
#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace flowgauge {

using Eigen::MatrixXd;
using Eigen::VectorXd;
using ConstMatRef = Eigen::Ref<const MatrixXd>;
using MatRef = Eigen::Ref<MatrixXd>;

// A Ref has a run-time outer stride, so Eigen runs element-wise expressions on it column by column:
// scalar at d = 2, 3x slower than one linear loop. When the columns are adjacent (any whole matrix or
// column block), packed(A) views the same memory as a plain Map, which vectorizes across columns.
inline bool is_packed(const ConstMatRef& A) { return A.outerStride() == A.rows() || A.cols() <= 1; }
inline Eigen::Map<MatrixXd> packed(MatRef& A) { return {A.data(), A.rows(), A.cols()}; }
inline Eigen::Map<const MatrixXd> packed(const ConstMatRef& A) { return {A.data(), A.rows(), A.cols()}; }

struct Component {
  double weight = 1.0;
  VectorXd mean;
  MatrixXd cov;  // symmetric positive semidefinite
};

// What one batched evaluation fills (bit flags).
enum EvalFlag : unsigned {
  kLogp = 1u,      // log p_t(x)
  kScore = 2u,     // grad log p_t(x)
  kTrace = 4u,     // tr grad score (exact, closed_forms section 3)
  kResp = 8u,      // responsibilities r_k(x)
  kDenoiser = 16u, // E[x0 | x] = sum_k r_k (mu_k + U_k (alpha s_k / c_k) y_k): no division by alpha
};

struct MixtureEval {
  VectorXd logp;   // N
  MatrixXd score;  // d x N
  VectorXd trace;  // N
  MatrixXd resp;   // K x N
  MatrixXd x0;     // d x N (kDenoiser)
};

// How evaluate() does its two products (both give the same values to rounding):
//   kGemm:        Eigen's blocked GEMM (d large: 4 K d^2 flops per point dominate);
//   kElementwise: fixed-size code vectorized across points, d <= kElementwiseMaxDim only (small d,
//                 where a GEMM with inner size d + 1 is mostly overhead and the exponentials dominate);
//   kAuto:        kElementwise for d <= GaussianMixture::kElementwiseMaxDim, else kGemm.
enum class EvalKernel { kAuto, kElementwise, kGemm };

// Scratch memory for evaluate(); reuse it across calls so the hot loop never allocates.
// Layout: points are ROWS inside a block (B-major), so every per-point quantity is a contiguous
// column and all elementwise work (log-sum-exp, exp, scalings) is vectorized across points.
struct EvalWorkspace {
  // Choices (for tests and benchmarks): the kernel, and the number of points per block (0: automatic).
  EvalKernel kernel = EvalKernel::kAuto;
  Eigen::Index block = 0;

  // Column i K + k of a block holds coordinate i of component k ("i-major").
  MatrixXd At;            // (d+1) x K d: [W_k^T; -alpha (W_k mu_k)^T], W_k = diag(c_k^{-1/2}) U_k^T
  MatrixXd G;             // (K d + K) x (d or 2d): [-W_k, 0]^T (score), [V_k, mu_k]^T (denoiser)
  MatrixXd Xt;            // kElementwise, Bp x (d+1): the block's points as rows, last column 1
  MatrixXd Wt;            // kGemm, Bp x (K d + K): W_k x (w_k without its offset), then r_k w_k; r_k
  MatrixXd St;            // Bp x (d or 2d): score (and denoiser) rows
  Eigen::ArrayXXd L, R, Z;  // Bp x K: log(w_k N_k(x)); e_k = exp(L_k - max_j L_j), negligible ones 0; |z_k|^2
  Eigen::ArrayXd m, lse, inv, t;  // Bp: max_k L_k, log p, 1 / sum_k exp(L_k - m), trace
  MatrixXd invc;          // d x K: 1 / c_k (probe_quadratic reuses it)
  VectorXd cst, trinv;
  MatrixXd Y, Yd;         // probe_quadratic: (K d) x B projections of the points and of the probes
};

class GaussianMixture {
 public:
  // Validates and factors once. Weights are normalized; `warn` (if set) is told when they did
  // not sum to 1 within 1e-12. Throws InputError naming `origin` and the component on bad input.
  // `locate(k, key)` may supply the error prefix (e.g. "file:line:col: component[k].cov").
  using Locator = std::function<std::string(int k, const std::string& key)>;
  explicit GaussianMixture(std::vector<Component> components, const std::string& origin = "mixture",
                           const std::function<void(const std::string&)>& warn = {}, const Locator& locate = {});

  int dim() const { return d_; }
  int size() const { return K_; }
  const VectorXd& weights() const { return w_; }
  const VectorXd& log_weights() const { return logw_; }
  const VectorXd& mean(int k) const { return mu_[k]; }
  const MatrixXd& eigvecs(int k) const { return U_[k]; }  // U_k
  const VectorXd& eigvals(int k) const { return s_[k]; }  // s_k >= 0, ascending; rounding-level ones (<= d eps max s) are 0
  MatrixXd covariance(int k) const;
  const std::vector<Component>& components() const { return comps_; }

  // Mean and covariance of p_t (alpha, sigma given): alpha m, alpha^2 C + sigma^2 I.
  VectorXd marginal_mean(double alpha = 1.0) const;
  MatrixXd marginal_cov(double alpha = 1.0, double sigma = 0.0) const;

  // One pass over the batch: fills what `flags` asks for. Needs C_k(t) nonsingular
  // (sigma > 0, or full-rank covariances).
  void evaluate(const ConstMatRef& X, double alpha, double sigma, unsigned flags, MixtureEval& out,
                EvalWorkspace& ws) const;
  MixtureEval evaluate(const ConstMatRef& X, double alpha, double sigma, unsigned flags) const;

  // Probe quadratic forms of the score Jacobian (Hutchinson's estimator, closed_forms 3 and 6):
  // out(p, j) = v^T J_s(x_j) v with v = V.col(p N + j) (probe-major: probe p of every point is the
  // block V.middleCols(p N, N)); out is P x N with P = V.cols() / N. Per point, exactly
  //   v^T J v = -sum_k r_k sum_i (U_k^T v)_i^2 / c_ki + sum_k r_k (z_k . U_k^T v)^2 - (s . v)^2.
  // Also fills `ev` as evaluate(X, alpha, sigma, flags | kScore | kResp) does. Cost: one evaluate()
  // plus one (K d) x d GEMM per probe block.
  void probe_quadratic(const ConstMatRef& X, double alpha, double sigma, const ConstMatRef& V, unsigned flags,
                       MixtureEval& ev, MatRef out, EvalWorkspace& ws) const;
  // The score Jacobian J_s = grad^2 log p_t at one point (symmetric d x d, closed_forms 3):
  // -sum_k r_k C_k^{-1} + sum_k r_k g_k g_k^T - s s^T. O(K d^2); for analysis in small d.
  MatrixXd score_jacobian(const Eigen::Ref<const VectorXd>& x, double alpha, double sigma) const;

  // Exact draws from p_t: particle j gets column j of `out`, its randomness keyed by
  // (seed, first_particle + j) only (Random123 Philox), so any batch split gives the same points.
  void sample(double alpha, double sigma, std::uint64_t seed, std::int64_t first_particle, MatRef out) const;
  MatrixXd sample(double alpha, double sigma, std::uint64_t seed, Eigen::Index n) const;

  // Largest dimension of the elementwise kernel (EvalKernel::kAuto uses it up to there: measured
  // 1.4-2x faster than the GEMMs at d <= 8, slower beyond).
  static constexpr int kElementwiseMaxDim = 8;
  // Points per block that evaluate() uses with `kernel` and EvalWorkspace::block = 0 (a multiple of 8).
  Eigen::Index block_size(EvalKernel kernel = EvalKernel::kAuto) const;

 private:
  int d_ = 0, K_ = 0;
  std::vector<Component> comps_;
  VectorXd w_, logw_;
  std::vector<VectorXd> mu_, s_;
  std::vector<MatrixXd> U_;
  MatrixXd Ut_stack_;  // (K d) x d: [U_1^T; ...; U_K^T]
  MatrixXd U_stack_;   // d x (K d): [U_1, ..., U_K]
  MatrixXd Utmu_;      // d x K: U_k^T mu_k
  MatrixXd Mu_;        // d x K: [mu_1, ..., mu_K]
  MatrixXd S_;         // d x K: eigenvalues s_k
};

}  // namespace flowgauge
