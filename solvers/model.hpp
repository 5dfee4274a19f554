#pragma once
// The exact model a sampler sees (k-diffusion style: converted once, at the boundary):
// a Gaussian mixture under a schedule, answering x0- and eps-predictions for a batch.
// Every call is one model evaluation; the count is measured here, not derived from formulas.
#include "analytics/mixture.hpp"
#include "analytics/schedule.hpp"

namespace flowgauge {

class Model {
 public:
  Model(const GaussianMixture& mixture, const Schedule& schedule) : gm_(mixture), sch_(schedule) {}

  const GaussianMixture& mixture() const { return gm_; }
  const Schedule& schedule() const { return sch_; }
  int dim() const { return gm_.dim(); }

  // One evaluation at time t: x0 = E[x0 | x_t], eps = E[eps | x_t] (exact).
  void predict(const ConstMatRef& X, double t, MatRef x0, MatRef eps);
  // Same at an explicit point of the schedule (alpha, sigma given).
  void predict(const ConstMatRef& X, const TimePoint& p, MatRef x0, MatRef eps);

  // One evaluation that also answers what a likelihood needs (for a network: d VJPs for the exact
  // trace, one VJP per probe for Hutchinson). Without probes (V == nullptr) div is 1 x N and gets
  // tr J_s(x) exactly; with probes (V: d x (P N), probe-major as in GaussianMixture::probe_quadratic)
  // div is P x N and gets v^T J_s(x) v. J_s = grad score, so tr grad_x eps = -sigma tr J_s.
  void predict_divergence(const ConstMatRef& X, const TimePoint& p, MatRef x0, MatRef eps, MatRef div,
                          const ConstMatRef* V = nullptr);

  long nfe() const { return nfe_; }
  void reset_nfe() { nfe_ = 0; }

 private:
  bool direct(const TimePoint& p) const { return !(p.sigma < 1e4 * p.alpha); }
  void finish(const ConstMatRef& X, const TimePoint& p, MatRef x0, MatRef eps) const;

  const GaussianMixture& gm_;
  const Schedule& sch_;
  EvalWorkspace ws_;
  MixtureEval ev_;
  long nfe_ = 0;
};

}  // namespace flowgauge
