#include "analytics/gaussian_flow.hpp"

#include <stdexcept>

namespace flowgauge {

GaussianFlow::GaussianFlow(const VectorXd& mean, const MatrixXd& cov)
    : GaussianFlow(GaussianMixture({Component{1.0, mean, cov}}, "gaussian flow")) {}

GaussianFlow::GaussianFlow(const GaussianMixture& g) {
  if (g.size() != 1) throw std::invalid_argument("GaussianFlow needs a single-component mixture");
  mu_ = g.mean(0);
  s_ = g.eigvals(0);
  U_ = g.eigvecs(0);
}

void GaussianFlow::transport(MatRef X, double aa, double sa, double ab, double sb) const {
  const VectorXd ratio = ((ab * ab * s_.array() + sb * sb) / (aa * aa * s_.array() + sa * sa)).sqrt().matrix();
  MatrixXd Y = U_.transpose() * (X.colwise() - aa * mu_);
  Y.array().colwise() *= ratio.array();
  X.noalias() = U_ * Y;
  X.colwise() += ab * mu_;
}

double GaussianFlow::logdet(double aa, double sa, double ab, double sb) const {
  return 0.5 * ((ab * ab * s_.array() + sb * sb) / (aa * aa * s_.array() + sa * sa)).log().sum();
}

}  // namespace flowgauge
