#include "solvers/likelihood/likelihood.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <numbers>

#include "analytics/errors.hpp"
#include "analytics/random.hpp"
#include "solvers/reference/odeint_batch.hpp"

namespace flowgauge {

namespace {
constexpr double kLog2Pi = 1.8378770664093454836;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

[[noreturn]] void unknown(const std::string& what, const std::string& name, const std::vector<std::string>& known) {
  const auto hint = closest_match(name, known);
  throw InputError(fmt::format("unknown {} '{}'{} (known: {})", what, name,
                               hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), fmt::join(known, ", ")));
}
}  // namespace

Direction parse_direction(const std::string& name) {
  if (name == "encode") return Direction::kEncode;
  if (name == "sample") return Direction::kSample;
  unknown("likelihood direction", name, {"encode", "sample"});
}

PriorKind parse_prior(const std::string& name) {
  if (name == "exact") return PriorKind::kExact;
  if (name == "gaussian") return PriorKind::kGaussian;
  unknown("prior", name, {"exact", "gaussian"});
}

DivergenceKind parse_divergence(const std::string& name) {
  if (name == "exact") return DivergenceKind::kExact;
  if (name == "hutchinson-rademacher") return DivergenceKind::kRademacher;
  if (name == "hutchinson-gaussian") return DivergenceKind::kGaussian;
  unknown("divergence", name, {"exact", "hutchinson-rademacher", "hutchinson-gaussian"});
}

std::string divergence_name(DivergenceKind k) {
  switch (k) {
    case DivergenceKind::kExact: return "exact";
    case DivergenceKind::kRademacher: return "hutchinson-rademacher";
    case DivergenceKind::kGaussian: return "hutchinson-gaussian";
  }
  return "exact";
}

MatrixXd make_probes(const DivergenceSpec& spec, int d, Eigen::Index n) {
  if (spec.kind == DivergenceKind::kExact) return MatrixXd();
  if (spec.probes < 1) throw InputError(fmt::format("Hutchinson divergence: probes = {} must be >= 1", spec.probes));
  const Eigen::Index P = spec.probes;
  MatrixXd V(d, P * n);
  const CounterRng rng(spec.seed, Stream::kProbe);
  VectorXd buf(static_cast<Eigen::Index>(d) * P);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto particle = static_cast<std::uint64_t>(spec.first_particle + j);
    if (spec.kind == DivergenceKind::kGaussian) {
      rng.normals(particle, buf.data(), static_cast<long>(buf.size()));
    } else {
      for (Eigen::Index i = 0; i < buf.size(); i += 4) {
        const auto u = rng.uniforms(particle, static_cast<std::uint64_t>(i / 4));
        for (Eigen::Index q = 0; q < 4 && i + q < buf.size(); ++q) buf(i + q) = u[q] < 0.5 ? -1.0 : 1.0;
      }
    }
    for (Eigen::Index p = 0; p < P; ++p) V.col(p * n + j) = buf.segment(p * d, d);
  }
  return V;
}

void divergence_coeffs(const Coordinates& cs, const TimePoint& p, double& a, double& b) {
  switch (cs.kind) {
    case Coord::kT:
      a = p.alpha_dot / p.alpha;
      b = 0.5 * p.sigma * p.sigma * cs.s->lambda_dot(p.t);
      return;
    case Coord::kVe:
      a = 0.0;
      b = -p.alpha * p.sigma;
      return;
    case Coord::kFm: {
      const double m = p.alpha + p.sigma;
      a = -m / p.alpha;
      b = -m * m * p.sigma / p.alpha;
      return;
    }
    case Coord::kLogsnr:
      a = 0.0;
      b = 0.5 * p.sigma * p.sigma;
      return;
  }
}

namespace {

// The augmented right-hand side: (dz/dtau, d ell/dtau) at one time point, one batched model evaluation.
struct AugmentedRhs {
  Model* model;
  Coordinates cs;
  const MatrixXd* V;  // probes or nullptr (exact trace)
  Eigen::Index rows;  // ell rows: P or 1
  MatrixXd x, x0, eps, div;

  AugmentedRhs(Model& m, Coord c, const MatrixXd* probes, Eigen::Index rows_, Eigen::Index n)
      : model(&m), cs{c, &m.schedule()}, V(probes), rows(rows_), x(m.dim(), n), x0(m.dim(), n), eps(m.dim(), n),
        div(rows_, n) {}

  // Returns b(p) (div_z F = a d + b tr J).
  double operator()(const TimePoint& p, const ConstMatRef& z, MatRef dz, MatRef dell) {
    x.noalias() = cs.scale(p) * z;
    if (V) {
      const ConstMatRef probes(*V);
      model->predict_divergence(x, p, x0, eps, div, &probes);
    } else {
      model->predict_divergence(x, p, x0, eps, div);
    }
    double cx, ce, a, b;
    cs.drift_coeffs(p, cx, ce);
    divergence_coeffs(cs, p, a, b);
    if (cx == 0.0)
      dz.noalias() = ce * eps;
    else
      dz.noalias() = cx * x0 + ce * eps;
    dell.array() = a * static_cast<double>(model->dim()) + b * div.array();
    return b;
  }
};

void check_interval(const Schedule& s, double t_lo, double t_hi, Coord c) {
  if (!(t_lo < t_hi)) throw InputError(fmt::format("likelihood: need t_lo < t_hi, got [{}, {}]", t_lo, t_hi));
  if (!(s.sigma(t_lo) > 0))
    throw InputError(fmt::format("likelihood: sigma(t_lo = {}) = {} must be > 0 (the likelihood is of the noised data "
                                 "p_t_lo; a denoise-to-zero end is not supported)",
                                 t_lo, s.sigma(t_lo)));
  if (!(s.alpha(t_hi) > 0) || !std::isfinite(s.lambda(t_hi)))
    throw InputError(fmt::format("likelihood: alpha(t_hi = {}) = {} must be > 0 ({} coordinates and the divergence "
                                 "x0-Jacobian divide by alpha); use a t_hi below the schedule's alpha = 0 end",
                                 t_hi, s.alpha(t_hi), coord_name(c)));
}

// Everything after the integration: end points, priors, closed forms, probe statistics.
LikelihoodResult finalize(Model& model, const LikelihoodOptions& o, Coord coord, double t_lo, double t_hi,
                          const MatrixXd& x_start, const MatrixXd& x_end, const MatrixXd& ell) {
  const GaussianMixture& gm = model.mixture();
  const Schedule& s = model.schedule();
  const Coordinates cs{coord, &s};
  const TimePoint plo = s.at(t_lo), phi = s.at(t_hi);
  const int d = gm.dim();
  const Eigen::Index N = x_start.cols();
  LikelihoodResult r;
  r.t_lo = t_lo;
  r.t_hi = t_hi;
  const bool enc = o.direction == Direction::kEncode;
  r.x_lo = enc ? x_start : x_end;
  r.x_hi = enc ? x_end : x_start;
  // Delta per ell row: sgn ell + d log(m_hi / m_lo)
  const double dlogm = d * (std::log(cs.scale(phi)) - std::log(cs.scale(plo)));
  const MatrixXd delta = ((enc ? 1.0 : -1.0) * ell).array() + dlogm;
  const VectorXd exact_hi = gm.evaluate(r.x_hi, phi.alpha, phi.sigma, kLogp).logp;
  const VectorXd gauss_hi = (-0.5 * (d * (kLog2Pi + 2.0 * std::log(phi.sigma)) +
                                     r.x_hi.colwise().squaredNorm().array() / (phi.sigma * phi.sigma)))
                                .matrix()
                                .transpose();
  r.prior_mismatch = gauss_hi - exact_hi;
  r.log_prior = o.prior == PriorKind::kExact ? exact_hi : gauss_hi;
  const MatrixXd per_row = delta.rowwise() + r.log_prior.transpose();
  r.delta = delta.colwise().mean().transpose();
  r.logp = per_row.colwise().mean().transpose();
  r.logp_exact = gm.evaluate(r.x_lo, plo.alpha, plo.sigma, kLogp).logp;
  r.error = r.logp - r.logp_exact;
  r.var_empirical = VectorXd::Constant(N, kNaN);
  r.var_closed = VectorXd::Constant(N, kNaN);
  if (o.divergence.kind != DivergenceKind::kExact) {
    r.probe_logp = per_row;
    const Eigen::Index P = per_row.rows();
    if (P >= 2)
      r.var_empirical = ((per_row.rowwise() - r.logp.transpose()).colwise().squaredNorm() / double(P - 1)).transpose();
  }
  return r;
}

// Closed-form variance of one probe's estimate from the integrated Jacobians A (d x (d N)).
VectorXd closed_variance(const MatrixXd& A, DivergenceKind k, int d, Eigen::Index N) {
  VectorXd v(N);
  for (Eigen::Index j = 0; j < N; ++j) {
    const auto Aj = A.middleCols(j * d, d);
    const MatrixXd S = 0.5 * (Aj + Aj.transpose());
    const double f2 = S.squaredNorm();
    v(j) = k == DivergenceKind::kGaussian ? 2.0 * f2 : 2.0 * (f2 - S.diagonal().squaredNorm());
  }
  return v;
}

}  // namespace

LikelihoodResult likelihood_rk(Model& model, const Grid& grid, const ButcherTableau& tab, Coord coord,
                               const MatrixXd& x, const LikelihoodOptions& o) {
  const Schedule& s = model.schedule();
  if (grid.t.size() < 2) throw InputError("likelihood: the grid needs at least two times");
  if (grid.denoise_final) throw InputError("likelihood: a grid ending at sigma = 0 (final step 'denoise') is not supported");
  if (x.rows() != model.dim())
    throw InputError(fmt::format("likelihood: points have {} rows, the mixture dimension is {}", x.rows(), model.dim()));
  const double t_hi = grid.t.front(), t_lo = grid.t.back();
  check_interval(s, t_lo, t_hi, coord);
  const int d = model.dim();
  const Eigen::Index N = x.cols();
  const bool enc = o.direction == Direction::kEncode;
  std::vector<double> ts = grid.t;  // integration order
  if (enc) std::reverse(ts.begin(), ts.end());

  const MatrixXd V = make_probes(o.divergence, d, N);
  const bool hutch = o.divergence.kind != DivergenceKind::kExact;
  const Eigen::Index R = hutch ? o.divergence.probes : 1;
  const bool moments = hutch && o.closed_form_variance;
  AugmentedRhs rhs(model, coord, hutch ? &V : nullptr, R, N);
  const Coordinates& cs = rhs.cs;
  const std::size_t S = tab.b.size();
  std::vector<MatrixXd> kz(S, MatrixXd(d, N)), kl(S, MatrixXd(R, N));
  std::vector<double> bs(S);
  std::vector<TimePoint> ps(S);
  std::vector<MatrixXd> xs(moments ? S : 0);
  MatrixXd z = x / cs.scale(s.at(ts.front())), zs(d, N), ell = MatrixXd::Zero(R, N), A;
  if (moments) A = MatrixXd::Zero(d, d * N);
  const long nfe0 = model.nfe();
  for (std::size_t i = 0; i + 1 < ts.size(); ++i) {
    const double t0 = ts[i], t1 = ts[i + 1];
    const double tau0 = cs.tau(t0), h = cs.tau(t1) - tau0;
    for (std::size_t st = 0; st < S; ++st) {
      const double c = tab.c[st];
      const double tst = c == 0.0 ? t0 : c == 1.0 ? t1 : cs.t_of(tau0 + c * h);
      zs = z;
      for (std::size_t j = 0; j < st; ++j)
        if (tab.a[st][j] != 0.0) zs += (h * tab.a[st][j]) * kz[j];
      ps[st] = s.at(tst);
      bs[st] = rhs(ps[st], zs, kz[st], kl[st]);
      if (moments) xs[st] = rhs.x;
    }
    for (std::size_t st = 0; st < S; ++st) {
      if (tab.b[st] == 0.0) continue;
      z += (h * tab.b[st]) * kz[st];
      ell += (h * tab.b[st]) * kl[st];
      if (moments)
        for (Eigen::Index j = 0; j < N; ++j)
          A.middleCols(j * d, d) +=
              (h * tab.b[st] * bs[st]) * model.mixture().score_jacobian(xs[st].col(j), ps[st].alpha, ps[st].sigma);
    }
  }
  const MatrixXd x_end = cs.scale(s.at(ts.back())) * z;
  LikelihoodResult r = finalize(model, o, coord, t_lo, t_hi, x, x_end, ell);
  r.nfe = model.nfe() - nfe0;
  r.steps = grid.steps();
  if (moments) r.var_closed = closed_variance(A, o.divergence.kind, d, N);
  return r;
}

LikelihoodResult likelihood_adaptive(Model& model, double t_lo, double t_hi, const MatrixXd& x,
                                     const AdaptiveLikelihoodOptions& ao, const LikelihoodOptions& o) {
  namespace ob = odeint_batch;
  const Schedule& s = model.schedule();
  if (ao.method != "dopri5" && ao.method != "rkf78")
    throw InputError(fmt::format("likelihood: adaptive method '{}' must be dopri5 or rkf78", ao.method));
  if (!(ao.rtol > 0) || !(ao.atol > 0)) throw InputError("likelihood: rtol and atol must be > 0");
  if (x.rows() != model.dim())
    throw InputError(fmt::format("likelihood: points have {} rows, the mixture dimension is {}", x.rows(), model.dim()));
  check_interval(s, t_lo, t_hi, ao.coord);
  const int d = model.dim();
  const Eigen::Index N = x.cols();
  const bool enc = o.direction == Direction::kEncode;
  const double t_start = enc ? t_lo : t_hi, t_end = enc ? t_hi : t_lo;

  const MatrixXd V = make_probes(o.divergence, d, N);
  const bool hutch = o.divergence.kind != DivergenceKind::kExact;
  const Eigen::Index R = hutch ? o.divergence.probes : 1;
  AugmentedRhs aug(model, ao.coord, hutch ? &V : nullptr, R, N);
  const Coordinates cs = aug.cs;
  // odeint copies the system: it holds a pointer to the one AugmentedRhs.
  struct System {
    AugmentedRhs* f;
    int d;
    void operator()(const ob::State& y, ob::State& dy, double tau) const {
      dy.resize(y.rows(), y.cols());
      const TimePoint p = f->cs.s->at(f->cs.t_of(tau));
      (*f)(p, y.topRows(d), dy.topRows(d), dy.bottomRows(f->rows));
    }
  } sys{&aug, d};

  ob::State y(d + R, N);
  y.topRows(d) = x / cs.scale(s.at(t_start));
  y.bottomRows(R).setZero();
  double tau = cs.tau(t_start);
  const double target = cs.tau(t_end);
  double dt = 1e-3 * (target - tau);
  ob::StepCounts n;
  const long nfe0 = model.nfe();
  const std::string where = fmt::format("likelihood ({} in {} coordinates)", ao.method, coord_name(ao.coord));
  if (ao.method == "dopri5") {
    auto st = ob::odeint::make_controlled(ao.atol, ao.rtol, ob::Dopri5());
    ob::advance_to(st, sys, y, tau, target, dt, n, ao.max_steps, where);
  } else {
    auto st = ob::odeint::make_controlled(ao.atol, ao.rtol, ob::Rkf78());
    ob::advance_to(st, sys, y, tau, target, dt, n, ao.max_steps, where);
  }
  const MatrixXd x_end = cs.scale(s.at(t_end)) * y.topRows(d);
  LikelihoodResult r = finalize(model, o, ao.coord, t_lo, t_hi, x, x_end, y.bottomRows(R));
  r.nfe = model.nfe() - nfe0;
  r.steps = n.steps;
  r.rejected = n.rejected;
  return r;
}

LikelihoodErrorSummary likelihood_error(Model& model, const Grid& grid, const MatrixXd& x_data, const std::string& solver,
                                        Coord coord, double tol, const LikelihoodOptions& opts) {
  LikelihoodOptions o = opts;
  o.direction = Direction::kEncode;
  LikelihoodResult r;
  if (solver == "dopri5" || solver == "rkf78") {
    AdaptiveLikelihoodOptions ao;
    ao.method = solver;
    ao.rtol = ao.atol = tol;
    ao.coord = coord;
    if (grid.t.size() < 2) throw InputError("likelihood: the grid needs at least two times");
    r = likelihood_adaptive(model, grid.t.back(), grid.t.front(), x_data, ao, o);
  } else {
    const RkMethod* m = find_rk_method(solver);
    if (!m) {
      auto n = rk_method_names();
      n.push_back("dopri5");
      n.push_back("rkf78");
      unknown("likelihood solver", solver, n);
    }
    r = likelihood_rk(model, grid, m->tableau, coord, x_data, o);
  }
  LikelihoodErrorSummary out;
  if (r.error.size() > 0) {
    out.mean_abs = r.error.cwiseAbs().mean();
    out.max_abs = r.error.cwiseAbs().maxCoeff();
    out.mean = r.error.mean();
    out.mean_prior_mismatch = r.prior_mismatch.mean();
  }
  out.mean_abs_bpd = out.mean_abs / (model.dim() * std::numbers::ln2);
  out.nfe = r.nfe;
  return out;
}

LikelihoodErrorSummary likelihood_error(const GaussianMixture& gm, const Schedule& s, const MatrixXd& x_data,
                                        const std::string& solver, const GridSpec& grid, Coord coord, double tol,
                                        const LikelihoodOptions& opts) {
  Model model(gm, s);
  return likelihood_error(model, make_grid(s, grid), x_data, solver, coord, tol, opts);
}

}  // namespace flowgauge
