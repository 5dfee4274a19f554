#include "solvers/stochastic/metrics.hpp"

#include <Eigen/Eigenvalues>
#include <cmath>
#include <fmt/format.h>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>

#include "analytics/errors.hpp"
#include "solvers/brownian/explicit_noise.hpp"

namespace flowgauge::stoch {

GaussianLaw marginal_law(const GaussianMixture& gm, double alpha, double sigma) {
  if (gm.size() != 1) throw InputError("marginal_law: needs single-Gaussian data");
  return {gm.marginal_mean(alpha), gm.marginal_cov(alpha, sigma)};
}

namespace {

// First run (one column): which noise does the solver read? Path queries give their times, auxiliary
// normals their keys; every answer is zero.
class NoiseRecorder final : public NoiseSource {
 public:
  explicit NoiseRecorder(int d) : d_(d) {}
  int dim() const override { return d_; }
  void increment(double ta, double tb, std::int64_t, MatRef out) const override {
    times.insert(ta);
    times.insert(tb);
    out.setZero();
  }
  void normal(double ta, double tb, std::int64_t first, MatRef out) const override { increment(ta, tb, first, out); }
  void auxiliary_normal(double t, int k, std::int64_t, MatRef out) const override {
    aux.insert({t, k});
    out.setZero();
  }
  std::string describe() const override { return "propagate_law noise recorder"; }
  mutable std::set<double, std::greater<>> times;  // decreasing, as grids
  mutable std::set<std::pair<double, int>> aux;

 private:
  int d_;
};

// Probe noise: a Brownian path known at the recorded times (ExplicitNoise: increments between any two
// of them are sums of the per-interval normals) plus the recorded auxiliary normals.
class ProbeNoise final : public NoiseSource {
 public:
  ProbeNoise(int d, std::unique_ptr<ExplicitNoise> path, std::map<std::pair<double, int>, MatrixXd> aux)
      : d_(d), path_(std::move(path)), aux_(std::move(aux)) {}
  int dim() const override { return d_; }
  void increment(double ta, double tb, std::int64_t first, MatRef out) const override {
    path().increment(ta, tb, first, out);
  }
  void normal(double ta, double tb, std::int64_t first, MatRef out) const override { path().normal(ta, tb, first, out); }
  void auxiliary_normal(double t, int k, std::int64_t first, MatRef out) const override {
    const auto it = aux_.find({t, k});
    if (it == aux_.end()) throw std::logic_error("propagate_law: auxiliary normal not seen by the recording run");
    out = it->second.middleCols(first, out.cols());
  }
  std::string describe() const override { return "propagate_law probes"; }

 private:
  const ExplicitNoise& path() const {
    if (!path_) throw std::logic_error("propagate_law: path query not seen by the recording run");
    return *path_;
  }
  int d_;
  std::unique_ptr<ExplicitNoise> path_;
  std::map<std::pair<double, int>, MatrixXd> aux_;
};

}  // namespace

LawPath propagate_law_path(const std::string& name, const SolverOptions& options, Model& model, const Grid& grid,
                           const GaussianLaw& start) {
  if (model.mixture().size() != 1)
    throw InputError("propagate_law: the sampler is affine only for single-Gaussian data (one component)");
  const int d = model.dim();
  auto solver = make_solver(name, options);
  const Eigen::LLT<MatrixXd> llt(start.cov);
  if (llt.info() != Eigen::Success) throw InputError("propagate_law: start covariance is not positive definite");
  const MatrixXd L = llt.matrixL();
  // Recording run: the path times and auxiliary keys the solver reads.
  std::vector<double> times;
  std::vector<std::pair<double, int>> aux_keys;
  if (solver->traits().stochastic) {
    auto rec = std::make_shared<NoiseRecorder>(d);
    auto probe = make_solver(name, options);
    probe->set_noise(rec);
    MatrixXd x = start.mean;
    sample(*probe, model, grid, x);
    times.assign(rec->times.begin(), rec->times.end());
    aux_keys.assign(rec->aux.begin(), rec->aux.end());
  }
  const int intervals = times.size() > 1 ? static_cast<int>(times.size()) - 1 : 0;
  const int blocks = intervals + static_cast<int>(aux_keys.size());
  // Columns: mean | mean + L e_k (d) | one unit normal per dimension of each noise block | check.
  const Eigen::Index P = 1 + d + static_cast<Eigen::Index>(blocks) * d + 1, check = P - 1;
  MatrixXd X = start.mean.replicate(1, P);
  X.middleCols(1, d) += L;
  X.col(check) += 0.5 * L.rowwise().sum();
  auto unit_block = [&](int b) {
    MatrixXd xi = MatrixXd::Zero(d, P);
    for (int k = 0; k < d; ++k) xi(k, 1 + d + static_cast<Eigen::Index>(b) * d + k) = 1.0;
    xi.col(check).setConstant(0.5);
    return xi;
  };
  if (solver->traits().stochastic) {
    std::unique_ptr<ExplicitNoise> path;
    if (intervals > 0) {
      std::vector<MatrixXd> xi;
      for (int i = 0; i < intervals; ++i) xi.push_back(unit_block(i));
      path = std::make_unique<ExplicitNoise>(times, std::move(xi), "propagate_law probes");
    }
    std::map<std::pair<double, int>, MatrixXd> aux;
    for (std::size_t j = 0; j < aux_keys.size(); ++j) aux.emplace(aux_keys[j], unit_block(intervals + static_cast<int>(j)));
    solver->set_noise(std::make_shared<ProbeNoise>(d, std::move(path), std::move(aux)));
  }
  LawPath out;
  auto law_of = [&](const ConstMatRef& Xi) {
    GaussianLaw g;
    g.mean = Xi.col(0);
    const MatrixXd D = Xi.middleCols(1, P - 2).colwise() - g.mean;
    g.cov = D * D.transpose();
    g.cov = 0.5 * (g.cov + g.cov.transpose());
    return g;
  };
  sample(*solver, model, grid, X, false, [&](int i, const ConstMatRef& Xi) {
    out.index.push_back(i);
    out.laws.push_back(law_of(Xi));
  });
  // Affinity: F(check) - F(mean) = (sum of the probe responses)/2 for an affine F.
  const VectorXd lhs = X.col(check) - X.col(0);
  const VectorXd rhs = 0.5 * (X.middleCols(1, P - 2).colwise() - X.col(0)).rowwise().sum();
  const double spread = std::sqrt(out.laws.back().cov.trace()) + lhs.norm() + rhs.norm();
  out.defect = spread > 0 ? (lhs - rhs).norm() / spread : 0.0;
  // 1e-9: rounding of the probe sums is ~1e-15 P relative; a state-dependent step size is O(1) off.
  out.affine = std::isfinite(out.defect) && out.defect < 1e-9;
  return out;
}

GaussianLaw propagate_law(const std::string& name, const SolverOptions& options, Model& model, const Grid& grid,
                          const GaussianLaw& start) {
  LawPath p = propagate_law_path(name, options, model, grid, start);
  if (!p.affine)
    throw InputError(fmt::format("propagate_law: {} is not affine in its start point and noise (defect {:.1e}): "
                                 "no exact output law",
                                 make_solver(name, options)->describe(), p.defect));
  return std::move(p.laws.back());
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

MatrixXd linear_sde_solution(const GaussianMixture& gm, const Schedule& sch, double c, double eta,
                             const std::vector<double>& times, const MatrixXd& X0, const NoiseSource& noise) {
  if (gm.size() != 1) throw InputError("linear_sde_solution: needs single-Gaussian data");
  if (times.size() < 2) throw InputError("linear_sde_solution: needs at least two times");
  const int d = gm.dim();
  const Eigen::Index n = X0.cols();
  const MatrixXd& V = gm.eigvecs(0);
  const VectorXd& lam = gm.eigvals(0);
  const VectorXd& mu = gm.mean(0);
  // log Phi_k(t, u) = (1 - 2c) log(alpha_t/alpha_u) + c log(C_k(t)/C_k(u)); C_k = alpha^2 lambda_k + sigma^2.
  auto logC = [&](double a, double s) { return ((a * a) * lam.array() + s * s).log().matrix().eval(); };
  MatrixXd Y = V.transpose() * (X0.colwise() - sch.alpha(times.front()) * mu);
  MatrixXd w0(d, n), w1(d, n), dW(d, n), Pw(d, n);
  const bool path = noise.path_values(times.front(), 0, w0);
  VectorXd phi(d), hbar(d);
  for (std::size_t j = 0; j + 1 < times.size(); ++j) {
    const double u0 = times[j], u1 = times[j + 1], um = 0.5 * (u0 + u1);
    const double a1 = sch.alpha(u1);
    const VectorXd lc1 = logC(a1, sch.sigma(u1));
    auto phi_at = [&](double u) {  // Phi_k(u1, u)
      const double au = sch.alpha(u);
      return ((1.0 - 2.0 * c) * std::log(a1 / au) + c * (lc1 - logC(au, sch.sigma(u))).array()).exp().matrix().eval();
    };
    auto h = [&](double u) { return (eta * std::sqrt(sch.g2(u)) * phi_at(u)).eval(); };
    phi = phi_at(u0);
    const VectorXd h0 = eta * std::sqrt(sch.g2(u0)) * phi;
    hbar = (h0 + 4.0 * h(um) + h(u1)) / 6.0;  // Simpson mean over the step (h(u1) = eta g(u1))
    if (path) {
      noise.path_values(u1, 0, w1);
      dW = w1 - w0;
      std::swap(w0, w1);
    } else {
      noise.increment(u0, u1, 0, dW);
    }
    Y.array().colwise() *= phi.array();
    if (eta != 0.0) {
      Pw.noalias() = V.transpose() * dW;
      Y.array() += Pw.array().colwise() * hbar.array();
    }
  }
  return (V * Y).colwise() + sch.alpha(times.back()) * mu;
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
