#include "analytics/metrics/moments.hpp"

#include <cmath>
#include <stdexcept>

namespace flowgauge::metrics {

double jackknife_se(const VectorXd& leave_out) {
  const double G = static_cast<double>(leave_out.size());
  if (G < 2) return NAN;
  return std::sqrt((G - 1.0) / G * (leave_out.array() - leave_out.mean()).square().sum());
}

MomentErrors moment_errors(const ConstMatRef& X, const GaussianMixture& gm, double alpha, double sigma, int groups) {
  const Eigen::Index d = gm.dim(), N = X.cols(), K = gm.size(), G = groups;
  if (X.rows() != d) throw std::invalid_argument("moments: points have the wrong number of rows");
  if (G < 2 || N < 2 * G) throw std::invalid_argument("moments: need at least 2 jackknife groups and 2 samples per group");
  MomentErrors r;
  const VectorXd m = gm.marginal_mean(alpha);
  const MatrixXd C = gm.marginal_cov(alpha, sigma);

  // Mean: E|m_hat - m|^2 = tr Sigma / N for i.i.d. draws.
  const VectorXd mhat = X.rowwise().mean();
  const MatrixXd Y = X.colwise() - mhat;  // centred copy: sums of Y keep the covariance free of cancellation
  r.mean_err = (mhat - m).norm();

  // Covariance from centred sums; per-group sums give every leave-one-group-out estimate in O(G d^2).
  MatrixXd S2 = MatrixXd::Zero(d, d);
  MatrixXd s1g(d, G);
  std::vector<MatrixXd> S2g(G);
  VectorXd ng(G);
  using Strided = Eigen::Map<const MatrixXd, 0, Eigen::OuterStride<>>;
  for (Eigen::Index g = 0; g < G; ++g) {
    ng(g) = static_cast<double>((N - g + G - 1) / G);
    Strided Yg(Y.data() + g * d, d, static_cast<Eigen::Index>(ng(g)), Eigen::OuterStride<>(G * d));
    s1g.col(g) = Yg.rowwise().sum();
    S2g[g].noalias() = Yg * Yg.transpose();
    S2 += S2g[g];
  }
  const VectorXd s1 = s1g.rowwise().sum();  // ~0 (rounding) by construction
  auto cov_from = [](const MatrixXd& S2s, const VectorXd& s1s, double n) {
    const VectorXd mu = s1s / n;
    return MatrixXd((S2s - n * mu * mu.transpose()) / (n - 1.0));
  };
  const MatrixXd Chat = cov_from(S2, s1, static_cast<double>(N));
  r.mean_se = std::sqrt(Chat.trace() / static_cast<double>(N));
  r.cov_err = (Chat - C).norm();
  VectorXd loo(G);
  for (Eigen::Index g = 0; g < G; ++g)
    loo(g) = (cov_from(S2 - S2g[g], s1 - s1g.col(g), static_cast<double>(N) - ng(g)) - C).norm();
  r.cov_se = jackknife_se(loo);
  // sum_ab Var[(x-m)_a (x-m)_b] = E|x - m|^4 - ||C||_F^2; divided by N it is E||C_hat - C||_F^2 to O(1/N^2).
  const double m4 = Y.colwise().squaredNorm().array().square().mean();
  r.cov_floor = std::sqrt(std::max(0.0, m4 - Chat.squaredNorm()) / static_cast<double>(N));

  // Mode weights: argmax_k r_k(x) at (alpha, sigma); counts per jackknife group.
  const MixtureEval ev = gm.evaluate(X, alpha, sigma, kResp);
  Eigen::MatrixXi cnt = Eigen::MatrixXi::Zero(K, G);
  for (Eigen::Index j = 0; j < N; ++j) {
    Eigen::Index k;
    ev.resp.col(j).maxCoeff(&k);
    ++cnt(k, j % G);
  }
  r.mode_counts = cnt.rowwise().sum();
  r.mode_weights = r.mode_counts.cast<double>() / static_cast<double>(N);
  const VectorXd& w = gm.weights();
  r.mode_tv = 0.5 * (r.mode_weights - w).cwiseAbs().sum();
  for (Eigen::Index g = 0; g < G; ++g) {
    const VectorXd wg = (r.mode_counts - cnt.col(g)).cast<double>() / (static_cast<double>(N) - ng(g));
    loo(g) = 0.5 * (wg - w).cwiseAbs().sum();
  }
  r.mode_tv_se = jackknife_se(loo);
  return r;
}

}  // namespace flowgauge::metrics
