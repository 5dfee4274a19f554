#include "solvers/reference/reference.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <stdexcept>

#include "analytics/errors.hpp"
#include "solvers/coordinates.hpp"
#include "solvers/reference/odeint_batch.hpp"

namespace flowgauge {
namespace {

namespace odeint = boost::numeric::odeint;
using odeint_batch::Dopri5;
using odeint_batch::Rkf78;
using odeint_batch::State;

// Buffers shared by every copy of the right-hand side (odeint passes systems by value).
struct RhsWork {
  Model* model;
  Coordinates cs;
  MatrixXd x, x0, eps;
};

// dz/dtau = cx x0 + ce eps at t(tau), with x = m(t) z: one batched model evaluation.
struct Rhs {
  RhsWork* w;
  void operator()(const State& z, State& dz, double tau) const {
    const Schedule& s = *w->cs.s;
    const TimePoint p = s.at(w->cs.t_of(tau));
    w->x.noalias() = w->cs.scale(p) * z;
    w->model->predict(w->x, p, w->x0, w->eps);
    double cx, ce;
    w->cs.drift_coeffs(p, cx, ce);
    dz.resize(z.rows(), z.cols());
    if (cx == 0.0)
      dz.noalias() = ce * w->eps;
    else
      dz.noalias() = cx * w->x0 + ce * w->eps;
  }
};

// Coordinates for the grid interval [t_i, t_{i+1}] (see the header).
Coord interval_coord(const Schedule& s, const Grid& g, int i) {
  const double tb = g.t[i + 1];
  const bool to_zero = (g.denoise_final && i + 1 == g.steps()) || s.sigma(tb) == 0.0 ||
                       (s.t_sigma_zero() && tb == *s.t_sigma_zero());
  if (to_zero) return Coord::kVe;
  if (!(s.alpha(g.t[i]) > 0.0) || !std::isfinite(s.lambda(g.t[i]))) return Coord::kFm;
  return Coord::kLogsnr;
}

// Integrates z over grid intervals [i0, i1) in one coordinate system, stepping exactly onto each
// tau_{i+1}; hands x at every grid time reached to `sink` (and leaves the last one in `x`).
template <class Controlled>
void run(Controlled stepper, Model& model, const Grid& g, Coordinates cs, int i0, int i1, MatrixXd& z, MatrixXd& x,
         ReferenceResult& out, const StateSink& sink, long max_steps) {
  const Schedule& s = *cs.s;
  RhsWork work{&model, cs, MatrixXd(z.rows(), z.cols()), MatrixXd(z.rows(), z.cols()),
               MatrixXd(z.rows(), z.cols())};
  Rhs rhs{&work};
  std::vector<double> taus(g.t.size());
  for (int i = i0; i <= i1; ++i) taus[i] = cs.tau(g.t[i]);
  double tau = taus[i0];
  double dt = 1e-3 * (taus[i1] - tau);  // first trial step; the controller adapts it at once
  for (int i = i0; i < i1; ++i) {
    const double target = taus[i + 1];
    if (!(std::abs(target - tau) > 0) || (target - tau) * dt < 0)
      throw std::runtime_error(fmt::format("reference: {} time is not monotone on grid interval {} ({} -> {})",
                                           coord_name(cs.kind), i, tau, target));
    odeint_batch::StepCounts n{out.steps, out.rejected};
    odeint_batch::advance_to(stepper, rhs, z, tau, target, dt, n, max_steps,
                             fmt::format("reference: {} coordinates on interval {}", coord_name(cs.kind), i));
    out.steps = n.steps;
    out.rejected = n.rejected;
    x.noalias() = cs.scale(s.at(g.t[i + 1])) * z;
    sink(i + 1, x);
    out.tau[i + 1] = tau;
  }
}

}  // namespace

std::string reference_partner(const std::string& method) {
  if (method == "dopri5") return "rkf78";
  if (method == "rkf78") return "dopri5";
  throw InputError(fmt::format("reference: method '{}' must be dopri5 or rkf78", method));
}

ReferenceResult reference_solve(Model& model, const Grid& grid, const MatrixXd& x_start, const ReferenceOptions& o) {
  ReferenceResult out;
  out.states.resize(grid.t.size());
  ReferenceResult r = reference_solve(model, grid, x_start, o, [&](int i, const MatrixXd& x) { out.states[i] = x; });
  r.states = std::move(out.states);
  return r;
}

ReferenceResult reference_solve(Model& model, const Grid& grid, const MatrixXd& x_start, const ReferenceOptions& o,
                                const StateSink& sink) {
  reference_partner(o.method);  // validates the name
  if (grid.t.size() < 2) throw InputError("reference: grid needs at least two times");
  if (x_start.rows() != model.dim())
    throw InputError(fmt::format("reference: x_start has {} rows, the model dimension is {}", x_start.rows(), model.dim()));
  if (!(o.rtol > 0) || !(o.atol > 0)) throw InputError("reference: rtol and atol must be > 0");
  const Schedule& s = model.schedule();
  const int N = grid.steps();
  ReferenceResult out;
  out.tau.assign(N + 1, 0.0);
  sink(0, x_start);
  const long nfe0 = model.nfe();

  MatrixXd z, x = x_start;
  for (int i0 = 0; i0 < N;) {
    const Coord c = interval_coord(s, grid, i0);
    int i1 = i0 + 1;
    while (i1 < N && interval_coord(s, grid, i1) == c) ++i1;
    const Coordinates cs{c, &s};
    z = x / cs.scale(s.at(grid.t[i0]));
    out.tau[i0] = cs.tau(grid.t[i0]);
    if (o.method == "dopri5")
      run(odeint::make_controlled(o.atol, o.rtol, Dopri5()), model, grid, cs, i0, i1, z, x, out, sink, o.max_steps);
    else
      run(odeint::make_controlled(o.atol, o.rtol, Rkf78()), model, grid, cs, i0, i1, z, x, out, sink, o.max_steps);
    i0 = i1;
  }
  out.nfe = model.nfe() - nfe0;
  return out;
}

double rms_error(const ConstMatRef& A, const ConstMatRef& B) {
  if (A.cols() == 0) return 0.0;
  return std::sqrt((A - B).colwise().squaredNorm().sum() / static_cast<double>(A.cols()));
}

ReferencePair reference_with_error(Model& model, const Grid& grid, const MatrixXd& x_start, const ReferenceOptions& opts,
                                   PathStore& store) {
  ReferencePair p;
  p.primary = reference_solve(model, grid, x_start, opts, [&](int i, const MatrixXd& x) { store.put(i, x); });
  ReferenceOptions o2 = opts;
  o2.method = reference_partner(opts.method);
  o2.rtol *= opts.check_tol_factor;
  o2.atol *= opts.check_tol_factor;
  p.err_max.assign(grid.t.size(), 0.0);
  p.err_rms.assign(grid.t.size(), 0.0);
  MatrixXd a;
  p.secondary = reference_solve(model, grid, x_start, o2, [&](int i, const MatrixXd& b) {
    const MatrixXd& ai = store.view(i, a);
    p.err_max[i] = ai.size() ? (ai - b).cwiseAbs().maxCoeff() : 0.0;
    p.err_rms[i] = rms_error(ai, b);
  });
  return p;
}

ReferencePair reference_with_error(Model& model, const Grid& grid, const MatrixXd& x_start, const ReferenceOptions& opts) {
  PathStore store(x_start.rows(), x_start.cols(), static_cast<int>(grid.t.size()));
  ReferencePair p = reference_with_error(model, grid, x_start, opts, store);
  p.primary.states = std::move(store).take_states();
  return p;
}

}  // namespace flowgauge
