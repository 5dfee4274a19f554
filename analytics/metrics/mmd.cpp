#include "analytics/metrics/mmd.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace flowgauge::metrics {

namespace {

void check_bandwidth(double l) {
  if (!(l > 0) || !std::isfinite(l)) throw std::invalid_argument("mmd: kernel bandwidth must be finite and > 0");
}

}  // namespace

double default_mmd_bandwidth(const GaussianMixture& gm, double alpha, double sigma) {
  // tr Cov[p_t] = alpha^2 (sum_k w_k (tr S_k + |mu_k|^2) - |m|^2) + d sigma^2  (closed_forms 7)
  const VectorXd m = gm.marginal_mean(1.0);
  double second = 0;
  for (int k = 0; k < gm.size(); ++k) second += gm.weights()(k) * (gm.eigvals(k).sum() + gm.mean(k).squaredNorm());
  const double tr = alpha * alpha * std::max(0.0, second - m.squaredNorm()) + gm.dim() * sigma * sigma;
  const double l = std::sqrt(tr / gm.dim());
  if (!(l > 0)) throw std::invalid_argument("mmd: default bandwidth is 0 (the target is a point mass); pass one");
  return l;
}

double mmd_population_term(const GaussianMixture& gm, double alpha, double sigma, double l) {
  check_bandwidth(l);
  const int K = gm.size(), d = gm.dim();
  const double l2 = l * l;
  const VectorXd& w = gm.weights();
  // E_{y~N(m1,C1), y'~N(m2,C2)} k(y,y') = l^d det(A)^{-1/2} exp(-0.5 dm^T A^{-1} dm),
  // A = l^2 I + C1 + C2 (closed_forms 7); written as det(A/l^2)^{-1/2} to stay in range for any d.
  double total = 0;
  std::vector<MatrixXd> C(K);
  for (int k = 0; k < K; ++k) {
    const VectorXd c = alpha * alpha * gm.eigvals(k).array() + sigma * sigma;
    // Same component twice: A = U_k diag(l^2 + 2 c_k) U_k^T, dm = 0: no factorization needed.
    total += w(k) * w(k) * std::exp(-0.5 * (1.0 + 2.0 * c.array() / l2).log().sum());
    C[k] = gm.eigvecs(k) * c.asDiagonal() * gm.eigvecs(k).transpose();
  }
  // Distinct components have different eigenbases: one Cholesky of A / l^2 per pair (once per cell).
  MatrixXd A(d, d);
  for (int k = 0; k < K; ++k)
    for (int m = k + 1; m < K; ++m) {
      A = (C[k] + C[m]) / l2;
      A.diagonal().array() += 1.0;
      Eigen::LLT<MatrixXd> llt(A);
      if (llt.info() != Eigen::Success) throw std::runtime_error("mmd: Cholesky of l^2 I + C_k + C_m failed");
      const VectorXd dm = alpha * (gm.mean(k) - gm.mean(m)) / l;
      const double q = llt.matrixL().solve(dm).squaredNorm();  // dm^T A^{-1} dm in units of l
      const double logdet = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
      total += 2.0 * w(k) * w(m) * std::exp(-0.5 * logdet - 0.5 * q);
    }
  return total;
}

void mmd_mean_embedding(const ConstMatRef& X, const GaussianMixture& gm, double alpha, double sigma, double l,
                        Eigen::Ref<VectorXd> g) {
  check_bandwidth(l);
  const Eigen::Index N = X.cols(), d = gm.dim(), K = gm.size();
  if (X.rows() != d) throw std::invalid_argument("mmd: points have the wrong number of rows");
  if (g.size() != N) throw std::invalid_argument("mmd: output has the wrong length");
  const double l2 = l * l;
  // Per component, with a_k = l^2 + alpha^2 s_k + sigma^2 (A = U_k diag(a_k) U_k^T, diagonal in U_k):
  // E_{y~N_k} k(x, y) = prod_i (l^2 / a_ki)^{1/2} exp(-0.5 sum_i y_ki^2 / a_ki),  y_k = U_k^T (x - alpha mu_k).
  MatrixXd Ut(K * d, d), Utm(d, K), inva(d, K);
  VectorXd logpre(K);
  for (Eigen::Index k = 0; k < K; ++k) {
    Ut.middleRows(k * d, d) = gm.eigvecs(k).transpose();
    Utm.col(k) = alpha * (gm.eigvecs(k).transpose() * gm.mean(k));
    const VectorXd a = l2 + alpha * alpha * gm.eigvals(k).array() + sigma * sigma;
    inva.col(k) = a.cwiseInverse();
    logpre(k) = gm.log_weights()(k) + 0.5 * (l2 * inva.col(k).array()).log().sum();
  }
  const Eigen::Index B = std::min<Eigen::Index>(N, std::clamp<Eigen::Index>((Eigen::Index(1) << 19) / (K * d), 64, 2048));
  MatrixXd Y(K * d, B);  // workspace reused for every block
  VectorXd e(B);
  for (Eigen::Index j0 = 0; j0 < N; j0 += B) {
    const Eigen::Index nb = std::min(B, N - j0);
    auto Yb = Y.leftCols(nb);
    Yb.noalias() = Ut * X.middleCols(j0, nb);  // one GEMM for all components
    auto gb = g.segment(j0, nb);
    gb.setZero();
    for (Eigen::Index k = 0; k < K; ++k) {
      auto Yk = Yb.middleRows(k * d, d);
      Yk.colwise() -= Utm.col(k);
      e.head(nb) = (Yk.array().square().colwise() * inva.col(k).array()).colwise().sum().transpose();
      gb.array() += (logpre(k) - 0.5 * e.head(nb).array()).exp();
    }
  }
}

double mmd_sample_term(const ConstMatRef& X, double l, VectorXd* row_sums) {
  check_bandwidth(l);
  const Eigen::Index N = X.cols();
  if (N < 2) throw std::invalid_argument("mmd: need at least 2 samples");
  const double c = -0.5 / (l * l);
  const VectorXd nrm = X.colwise().squaredNorm().transpose();
  VectorXd rs = VectorXd::Zero(N);
  const Eigen::Index B = std::min<Eigen::Index>(N, 256);  // 256 x 256 doubles = 512 KiB Gram block
  MatrixXd G(B, B);
  for (Eigen::Index i0 = 0; i0 < N; i0 += B) {
    const Eigen::Index ni = std::min(B, N - i0);
    for (Eigen::Index j0 = i0; j0 < N; j0 += B) {  // upper block triangle; symmetry gives the rest
      const Eigen::Index nj = std::min(B, N - j0);
      auto Gb = G.topLeftCorner(ni, nj);
      Gb.noalias() = X.middleCols(i0, ni).transpose() * X.middleCols(j0, nj);  // GEMM: x_i . x_j
      // -|x_i - x_j|^2 / 2 = x_i.x_j - |x_i|^2/2 - |x_j|^2/2, clamped at 0 against cancellation; then
      // k = exp(-|x_i - x_j|^2 / (2 l^2)). Separate in-place passes: a fused broadcast expression
      // kept the exp from vectorizing.
      Gb.array().colwise() -= 0.5 * nrm.segment(i0, ni).array();
      Gb.array().rowwise() -= 0.5 * nrm.segment(j0, nj).transpose().array();
      Gb.array() = (Gb.array().cwiseMin(0.0) * (-2.0 * c)).exp();
      if (i0 == j0) Gb.diagonal().setZero();  // i != j
      rs.segment(i0, ni) += Gb.rowwise().sum();
      if (i0 != j0) rs.segment(j0, nj) += Gb.colwise().sum().transpose();
    }
  }
  const double total = rs.sum();  // sum_{i != j} k(x_i, x_j)
  if (row_sums) *row_sums = std::move(rs);
  return total / (static_cast<double>(N) * static_cast<double>(N - 1));
}

MmdResult mmd2(const ConstMatRef& X, const GaussianMixture& gm, double alpha, double sigma, double bandwidth) {
  MmdResult r;
  r.bandwidth = bandwidth > 0 ? bandwidth : default_mmd_bandwidth(gm, alpha, sigma);
  const Eigen::Index N = X.cols();
  VectorXd rows, g(N);
  r.term_xx = mmd_sample_term(X, r.bandwidth, &rows);
  mmd_mean_embedding(X, gm, alpha, sigma, r.bandwidth, g);
  r.term_xy = g.mean();
  r.term_yy = mmd_population_term(gm, alpha, sigma, r.bandwidth);
  r.mmd2 = r.term_xx - 2.0 * r.term_xy + r.term_yy;
  // Hoeffding projection: a_i = mean_{j != i} k(x_i, x_j) - E_y k(x_i, y); se = 2 sd(a) / sqrt(N).
  const VectorXd a = rows / static_cast<double>(N - 1) - g;
  const double var = (a.array() - a.mean()).square().sum() / static_cast<double>(N - 1);
  r.se = 2.0 * std::sqrt(var / static_cast<double>(N));
  return r;
}

}  // namespace flowgauge::metrics
