#include "solvers/model.hpp"

namespace flowgauge {

void Model::predict(const ConstMatRef& X, double t, MatRef x0, MatRef eps) { predict(X, sch_.at(t), x0, eps); }

void Model::predict(const ConstMatRef& X, const TimePoint& p, MatRef x0, MatRef eps) {
  ++nfe_;
  // Tweedie x0 = (x + sigma^2 s)/alpha loses ~ eps_mach * sigma/alpha relative digits; beyond
  // sigma/alpha = 1e4 (and at alpha = 0) use the direct posterior mean instead. Both are exact.
  const bool direct = !(p.sigma < 1e4 * p.alpha);
  gm_.evaluate(X, p.alpha, p.sigma, direct ? (kScore | kDenoiser) : kScore, ev_, ws_);
  eps = (-p.sigma) * ev_.score;
  if (direct)
    x0 = ev_.x0;
  else
    x0 = (X + (p.sigma * p.sigma) * ev_.score) / p.alpha;
}

}  // namespace flowgauge
