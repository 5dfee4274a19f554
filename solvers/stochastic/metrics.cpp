#include "solvers/stochastic/metrics.hpp"

#include <Eigen/Eigenvalues>
#include <cmath>
#include <fmt/format.h>

#include "analytics/errors.hpp"
#include "solvers/brownian/explicit_noise.hpp"

namespace flowgauge::stoch {

GaussianLaw marginal_law(const GaussianMixture& gm, double alpha, double sigma) {
  if (gm.size() != 1) throw InputError("marginal_law: needs single-Gaussian data");
  return {gm.marginal_mean(alpha), gm.marginal_cov(alpha, sigma)};
}

GaussianLaw propagate_law(const std::string& name, const SolverOptions& options, Model& model, const Grid& grid,
                          const GaussianLaw& start) {
  if (model.mixture().size() != 1)
    throw InputError("propagate_law: the sampler is affine only for single-Gaussian data (one component)");
  const int d = model.dim();
  auto solver = make_solver(name, options);
  const int steps = grid.steps() - (grid.denoise_final ? 1 : 0);  // steps the solver takes
  const int noise_cols = solver->traits().stochastic ? steps * d : 0;
  const Eigen::Index P = 1 + d + noise_cols;
  const Eigen::LLT<MatrixXd> llt(start.cov);
  if (llt.info() != Eigen::Success) throw InputError("propagate_law: start covariance is not positive definite");
  const MatrixXd L = llt.matrixL();
  MatrixXd X = start.mean.replicate(1, P);
  X.middleCols(1, d) += L;
  if (noise_cols > 0) {
    std::vector<MatrixXd> xi(steps, MatrixXd::Zero(d, P));
    for (int i = 0; i < steps; ++i)
      for (int k = 0; k < d; ++k) xi[i](k, 1 + d + i * d + k) = 1.0;
    solver->set_noise(std::make_shared<ExplicitNoise>(std::vector<double>(grid.t.begin(), grid.t.begin() + steps + 1),
                                                      std::move(xi), "propagate_law probes"));
  }
  sample(*solver, model, grid, X);
  GaussianLaw out;
  out.mean = X.col(0);
  const MatrixXd D = X.rightCols(P - 1).colwise() - out.mean;
  out.cov = D * D.transpose();
  out.cov = 0.5 * (out.cov + out.cov.transpose());
  return out;
}

double kl_divergence(const GaussianLaw& p, const GaussianLaw& q) {
  const Eigen::LLT<MatrixXd> lq(q.cov), lp(p.cov);
  if (lq.info() != Eigen::Success || lp.info() != Eigen::Success)
    throw InputError("kl_divergence: covariances must be positive definite");
  const auto d = p.mean.size();
  const MatrixXd QiP = lq.solve(p.cov);
  const VectorXd dm = q.mean - p.mean;
  const double logdet_q = 2 * lq.matrixLLT().diagonal().array().log().sum();
  const double logdet_p = 2 * lp.matrixLLT().diagonal().array().log().sum();
  return 0.5 * (QiP.trace() + dm.dot(lq.solve(dm)) - static_cast<double>(d) + logdet_q - logdet_p);
}

namespace {
MatrixXd psd_sqrt(const MatrixXd& A) {
  Eigen::SelfAdjointEigenSolver<MatrixXd> es(0.5 * (A + A.transpose()));
  const VectorXd ev = es.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  return es.eigenvectors() * ev.asDiagonal() * es.eigenvectors().transpose();
}
}  // namespace

double w2_distance(const GaussianLaw& p, const GaussianLaw& q) {
  const MatrixXd sq = psd_sqrt(q.cov);
  const MatrixXd cross = psd_sqrt(sq * p.cov * sq);
  const double b2 = (p.cov + q.cov - 2.0 * cross).trace();
  return std::sqrt(std::max(0.0, (p.mean - q.mean).squaredNorm() + b2));
}

double rms_distance(const ConstMatRef& x, const ConstMatRef& y) {
  return std::sqrt((x - y).colwise().squaredNorm().mean());
}

double strong_error(const std::string& name, const SolverOptions& options, Model& model, const Grid& grid,
                    const Grid& fine, const MatrixXd& X0, std::shared_ptr<const NoiseSource> noise,
                    const std::string& reference_solver, const SolverOptions& reference_options) {
  auto a = make_solver(name, options);
  auto b = reference_solver.empty() ? make_solver(name, options) : make_solver(reference_solver, reference_options);
  a->set_noise(noise);
  b->set_noise(noise);
  MatrixXd Xa = X0, Xb = X0;
  sample(*a, model, grid, Xa);
  sample(*b, model, fine, Xb);
  return rms_distance(Xa, Xb);
}

}  // namespace flowgauge::stoch
