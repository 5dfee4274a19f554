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

void Model::finish(const ConstMatRef& X, const TimePoint& p, MatRef x0, MatRef eps) const {
  eps = (-p.sigma) * ev_.score;
  if (direct(p))
    x0 = ev_.x0;
  else
    x0 = (X + (p.sigma * p.sigma) * ev_.score) / p.alpha;
}

}  // namespace flowgauge
