#pragma once
// Squared MMD between a sample set X (d x N, particles as columns) and the exact mixture marginal
// p_t = sum_k w_k N(alpha mu_k, C_k), C_k = alpha^2 S_k + sigma^2 I (closed_forms.md sections 3, 7).
// Kernel k(x, y) = exp(-|x - y|^2 / (2 l^2)).
//   MMD^2 = E_{x,x'~q} k - 2 E_{x~q, y~p} k + E_{y,y'~p} k  =  term_xx - 2 term_xy + term_yy
// term_yy and the inner expectation of term_xy are exact (Gaussian integrals); only the outer
// average over the samples and term_xx (unbiased U-statistic over i != j) are estimated.
//
// Default bandwidth (used when l <= 0): l = sqrt(tr Cov[p_t] / d), the root mean per-coordinate
// variance of the TRUE marginal at (alpha, sigma). It depends on the target only, never on the
// samples, so every solver in a cell is measured with the same kernel; it follows the scale of
// the coordinates (e.g. grows with sigma under VE/EDM). Callers may pass any l > 0.
#include "analytics/mixture.hpp"

namespace flowgauge::metrics {

struct MmdResult {
  double mmd2 = 0;      // term_xx - 2 term_xy + term_yy (unbiased; may be slightly negative)
  double se = 0;        // first-order (Hoeffding) standard error, see mmd2()
  double term_xx = 0;   // 1/(N(N-1)) sum_{i != j} k(x_i, x_j)
  double term_xy = 0;   // 1/N sum_i E_{y~p} k(x_i, y)   (inner expectation exact)
  double term_yy = 0;   // E_{y,y'~p} k(y, y')             (exact)
  double bandwidth = 0; // l actually used
};

// sqrt(tr Cov[p_t] / d) with Cov[p_t] = alpha^2 Cov[p_0] + sigma^2 I (exact).
double default_mmd_bandwidth(const GaussianMixture& gm, double alpha, double sigma);

// Squared MMD and its standard error. N >= 2. bandwidth <= 0 selects default_mmd_bandwidth().
// se = 2 sd_i(a_i) / sqrt(N), a_i = mean_{j != i} k(x_i, x_j) - E_y k(x_i, y): the Hoeffding
// projection of the order-2 U-statistic with kernel h(x,x') = k(x,x') - g(x) - g(x') + term_yy,
// g(x) = E_y k(x, y), whose variance is 4 Var[h_1(x)] / N + O(1/N^2). When q != p this is the
// leading term. When q = p, h is degenerate (h_1 = 0) and the true sd is O(1/N); a_i then
// carries only its own sampling noise and this se overestimates the sd by about sqrt(2)
// (E a_i^2 ~ E h^2/(N-1) versus Var U ~ 2 E h^2/(N(N-1))): conservative under the null. There
// mmd2/se is not Gaussian either (degenerate U-statistic, and se fluctuates with the sample):
// measured on gmm8_2d, N = 1000, 1000 seeds: rms(se)/sd(mmd2) = 1.40, |mmd2|/se > 4 in 0.2 % (all
// in the negative tail).
MmdResult mmd2(const ConstMatRef& X, const GaussianMixture& gm, double alpha, double sigma, double bandwidth = 0);

// The pieces, exposed for tests and for callers that reuse them.
// Exact E_{y, y' ~ p_t} k(y, y').
double mmd_population_term(const GaussianMixture& gm, double alpha, double sigma, double l);
// Exact g(x_i) = E_{y ~ p_t} k(x_i, y) for every column, into g (length N).
void mmd_mean_embedding(const ConstMatRef& X, const GaussianMixture& gm, double alpha, double sigma, double l,
                        Eigen::Ref<VectorXd> g);
// U-statistic 1/(N(N-1)) sum_{i != j} k(x_i, x_j); if row_sums is non-null it receives
// sum_{j != i} k(x_i, x_j) for every i (length N).
double mmd_sample_term(const ConstMatRef& X, double l, VectorXd* row_sums = nullptr);

}  // namespace flowgauge::metrics
