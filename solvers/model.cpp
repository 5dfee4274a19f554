#include "solvers/model.hpp"

namespace flowgauge {

void Model::predict(const ConstMatRef& X, double t, MatRef x0, MatRef eps) { predict(X, sch_.at(t), x0, eps); }

void Model::predict(const ConstMatRef& X, const TimePoint& p, MatRef x0, MatRef eps) {
  ++nfe_;
  // Tweedie x0 = (x + sigma^2 s)/alpha loses ~ eps_mach * sigma/alpha relative digits; beyond
  // sigma/alpha = 1e4 (and at alpha = 0) use the direct posterior mean instead. Both are exact.
  gm_.evaluate(X, p.alpha, p.sigma, direct(p) ? (kScore | kDenoiser) : kScore, ev_, ws_);
  finish(X, p, x0, eps);
}

void Model::predict_divergence(const ConstMatRef& X, const TimePoint& p, MatRef x0, MatRef eps, MatRef div,
                               const ConstMatRef* V) {
  ++nfe_;
  const unsigned flags = direct(p) ? (kScore | kDenoiser) : kScore;
  if (V) {
    gm_.probe_quadratic(X, p.alpha, p.sigma, *V, flags, ev_, div, ws_);
  } else {
    gm_.evaluate(X, p.alpha, p.sigma, flags | kTrace, ev_, ws_);
    div.row(0) = ev_.trace.transpose();
  }
  finish(X, p, x0, eps);
}

namespace {
// eps = -sigma s; x0 = E[x0 | x] (direct) or Tweedie (x + sigma^2 s) / alpha. Ref or packed Map views.
template <class In, class Out>
void finish_into(const In& X, const TimePoint& p, bool direct, const MixtureEval& ev, Out x0, Out eps) {
  eps = (-p.sigma) * ev.score;
  if (direct)
    x0 = ev.x0;
  else
    x0 = (X + (p.sigma * p.sigma) * ev.score) / p.alpha;
}
}  // namespace

void Model::finish(const ConstMatRef& X, const TimePoint& p, MatRef x0, MatRef eps) const {
  if (is_packed(X) && is_packed(x0) && is_packed(eps))
    finish_into(packed(X), p, direct(p), ev_, packed(x0), packed(eps));
  else
    finish_into(X, p, direct(p), ev_, x0, eps);
}

}  // namespace flowgauge
