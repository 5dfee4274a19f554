#pragma once
// Exact PF-ODE flow map for single-Gaussian data N(mu, S) (closed_forms.md section 5):
// in y = U^T (x - alpha_t mu), y_i(b) = y_i(a) sqrt(c_i(b) / c_i(a)), c_i = alpha^2 s_i + sigma^2.
#include "analytics/mixture.hpp"
#include "analytics/schedule.hpp"

namespace flowgauge {

class GaussianFlow {
 public:
  GaussianFlow(const VectorXd& mean, const MatrixXd& cov);
  explicit GaussianFlow(const GaussianMixture& single);  // requires size() == 1

  int dim() const { return static_cast<int>(mu_.size()); }
  // Transport the columns of X (in place) from (alpha_a, sigma_a) to (alpha_b, sigma_b).
  void transport(MatRef X, double alpha_a, double sigma_a, double alpha_b, double sigma_b) const;
  void transport(MatRef X, const Schedule& s, double ta, double tb) const {
    transport(X, s.alpha(ta), s.sigma(ta), s.alpha(tb), s.sigma(tb));
  }
  // log det of the map's Jacobian: 0.5 sum_i log(c_i(b) / c_i(a)) (same for every point).
  double logdet(double alpha_a, double sigma_a, double alpha_b, double sigma_b) const;

 private:
  VectorXd mu_, s_;
  MatrixXd U_;
};

}  // namespace flowgauge
