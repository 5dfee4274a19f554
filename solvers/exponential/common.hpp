#pragma once
// Shared pieces of the exponential integrators (samplers.md 4.3): phi functions and the per-point
// schedule cache. Everything here works in the HALF logSNR ell = lambda/2 = log(alpha/sigma)
// (DPM-Solver's "lambda"); a step from s (noisier) to t has h = ell_t - ell_s > 0.
#include <cmath>
#include <fmt/format.h>
#include <vector>

#include "analytics/errors.hpp"
#include "analytics/schedule.hpp"
#include "solvers/grid.hpp"
#include "solvers/model.hpp"

namespace flowgauge::expint {

// phi_1(z) = (e^z - 1)/z, phi_{k+1}(z) = (phi_k(z) - 1/k!)/z (samplers.md 0.1), phi_k(0) = 1/k!.
// Series sum_j z^j/(j+k)! for |z| < 1/2 (no cancellation), the recursion elsewhere.
inline double phi_series(int k, double z) {
  double term = 1.0;
  for (int j = 1; j <= k; ++j) term /= j;  // 1/k!
  double sum = term;
  for (int j = 1; j < 30; ++j) {
    term *= z / (j + k);
    sum += term;
    if (std::abs(term) < 1e-18 * std::abs(sum)) break;
  }
  return sum;
}
inline double phi1(double z) { return z == 0.0 ? 1.0 : std::expm1(z) / z; }
inline double phi2(double z) { return std::abs(z) < 0.5 ? phi_series(2, z) : (phi1(z) - 1.0) / z; }
inline double phi3(double z) { return std::abs(z) < 0.5 ? phi_series(3, z) : (phi2(z) - 0.5) / z; }

// One time of the schedule with everything an exponential step needs.
struct Point {
  TimePoint tp;  // t, alpha, sigma (+ derivatives, unused): what Model::predict takes
  double ell;    // half logSNR log(alpha/sigma); +inf at sigma = 0
  double t() const { return tp.t; }
  double alpha() const { return tp.alpha; }
  double sigma() const { return tp.sigma; }
};

inline Point point_at(const Schedule& s, double t) { return {s.at(t), 0.5 * s.lambda(t)}; }

// Point near a prescribed half logSNR (intermediate stages): t from Schedule::t_of_lambda, then
// ell recomputed from that t, so that alpha, sigma and ell agree to rounding even where
// t_of_lambda is only accurate to ~1e-14 in t (the update weights take r = (ell_s1 - ell_s)/h from
// the points; with an exact inverse this is the reference's r*h).
// A step from or to an infinite logSNR (alpha = 0 at fm-linear's t = 1) has no inner points: named.
inline Point point_at_ell(const Schedule& s, double ell) {
  if (!std::isfinite(ell))
    throw InputError(fmt::format("schedule {}: an inner stage lies at logSNR {} (a step from t = {} or to t = {} where "
                                 "alpha or sigma is 0); singlestep exponential solvers need t_lo, t_hi where both are > 0",
                                 s.name(), 2.0 * ell, s.t_hi(), s.t_lo()));
  return point_at(s, s.t_of_lambda(2.0 * ell));
}

// alpha, sigma, ell at every grid time (built in start(), read in step()).
inline void cache_grid(const Schedule& s, const Grid& g, std::vector<Point>& out) {
  out.clear();
  out.reserve(g.t.size());
  for (double t : g.t) out.push_back(point_at(s, t));
}

// Singlestep noise-prediction DPM-Solver stages (Lu et al. 2022, arXiv 2206.00927, Algorithms
// 4 and 5 with general r; reference functions dpm_solver_first_update,
// singlestep_dpm_solver_second_update, singlestep_dpm_solver_third_update). One step s -> t with
// inner points s1, s2 at ell_s + r1 h, ell_s + r2 h. Stages share the evaluations e0 (at s),
// e1 (at s1), e2 (at s2), so the adaptive solver gets its lower-order result for free.
class NoiseSinglestep {
 public:
  MatrixXd x0, e0, e1, e2, u;  // x0: scratch for the unused data prediction

  void resize(Eigen::Index d, Eigen::Index n) {
    x0.resize(d, n);
    e0.resize(d, n);
    e1.resize(d, n);
    e2.resize(d, n);
    u.resize(d, n);
  }
  // e0 = eps(X, s): 1 NFE.
  void eval0(Model& m, const ConstMatRef& X, const Point& s) { m.predict(X, s.tp, x0, e0); }
  // DPM-Solver-1 / DDIM: out = (alpha_t/alpha_s) X - sigma_t (e^h - 1) e0.
  void first(MatRef out, const ConstMatRef& X, const Point& s, const Point& t) const {
    out = (t.alpha() / s.alpha()) * X - (t.sigma() * std::expm1(t.ell - s.ell)) * e0;
  }
  // u1 = first-order update to s1, e1 = eps(u1, s1): 1 NFE.
  void eval1(Model& m, const ConstMatRef& X, const Point& s, const Point& s1) {
    first(u, X, s, s1);
    m.predict(u, s1.tp, x0, e1);
  }
  // Second order (needs e0, e1). dpmsolver: - sigma_t/(2 r1) (e^h - 1)(e1 - e0);
  // taylor: - sigma_t/r1 ((e^h - 1)/h - 1)(e1 - e0) = - sigma_t/r1 h phi_2(h) (e1 - e0).
  void second(MatRef out, const ConstMatRef& X, const Point& s, const Point& s1, const Point& t, bool taylor) const {
    const double h = t.ell - s.ell, r1 = (s1.ell - s.ell) / h;
    const double c = taylor ? t.sigma() / r1 * h * phi2(h) : 0.5 / r1 * t.sigma() * std::expm1(h);
    first(out, X, s, t);
    out -= c * (e1 - e0);
  }
  // u2 = (alpha_s2/alpha_s) X - sigma_s2 (e^{r2 h} - 1) e0 - sigma_s2 (r2/r1) ((e^{r2 h}-1)/(r2 h) - 1)(e1 - e0),
  // e2 = eps(u2, s2): 1 NFE.
  void eval2(Model& m, const ConstMatRef& X, const Point& s, const Point& s1, const Point& s2, const Point& t) {
    const double h = t.ell - s.ell, r1 = (s1.ell - s.ell) / h, h2 = s2.ell - s.ell, r2 = h2 / h;
    first(u, X, s, s2);
    u -= (s2.sigma() * (r2 / r1) * h2 * phi2(h2)) * (e1 - e0);
    m.predict(u, s2.tp, x0, e2);
  }
  // Third order (needs e0, e1, e2). dpmsolver: - sigma_t/r2 ((e^h-1)/h - 1)(e2 - e0);
  // taylor: D1, D2 from the two divided differences, - sigma_t (h phi_2(h) D1 + h phi_3(h) D2).
  void third(MatRef out, const ConstMatRef& X, const Point& s, const Point& s1, const Point& s2, const Point& t,
             bool taylor) const {
    const double h = t.ell - s.ell, r1 = (s1.ell - s.ell) / h, r2 = (s2.ell - s.ell) / h;
    first(out, X, s, t);
    if (!taylor) {
      out -= (t.sigma() / r2 * h * phi2(h)) * (e2 - e0);
      return;
    }
    // D1 = (r2 D1_0 - r1 D1_1)/(r2 - r1), D2 = 2 (D1_1 - D1_0)/(r2 - r1), D1_0 = (e1-e0)/r1, D1_1 = (e2-e0)/r2
    const double a = t.sigma() * h * phi2(h), b = t.sigma() * h * phi3(h), dr = r2 - r1;
    // coefficient of (e1 - e0) and (e2 - e0) in a D1 + b D2
    const double c1 = a * (r2 / r1) / dr - b * 2.0 / (r1 * dr);
    const double c2 = -a * (r1 / r2) / dr + b * 2.0 / (r2 * dr);
    out -= c1 * (e1 - e0) + c2 * (e2 - e0);
  }
};

}  // namespace flowgauge::expint
