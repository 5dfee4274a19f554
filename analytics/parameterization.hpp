#pragma once
// Exact linear maps between score, eps-, x0-, v- and velocity-predictions at one time
// (closed_forms.md section 3; samplers.md section 1.2). x is the noisy state x_t = alpha x0 + sigma eps.
// Every function returns an Eigen expression: assign it to a preallocated matrix.
#include "analytics/schedule.hpp"

namespace flowgauge::param {

template <class S> auto eps_from_score(const TimePoint& p, const S& s) { return (-p.sigma) * s; }
template <class E> auto score_from_eps(const TimePoint& p, const E& e) { return (-1.0 / p.sigma) * e; }
// Tweedie: x0 = (x + sigma^2 s) / alpha
template <class X, class S> auto x0_from_score(const TimePoint& p, const X& x, const S& s) {
  return (x + (p.sigma * p.sigma) * s) / p.alpha;
}
template <class X, class D> auto score_from_x0(const TimePoint& p, const X& x, const D& x0) {
  return (p.alpha * x0 - x) / (p.sigma * p.sigma);
}
template <class X, class E> auto x0_from_eps(const TimePoint& p, const X& x, const E& e) {
  return (x - p.sigma * e) / p.alpha;
}
template <class X, class D> auto eps_from_x0(const TimePoint& p, const X& x, const D& x0) {
  return (x - p.alpha * x0) / p.sigma;
}
// v-prediction (Salimans & Ho 2022): v = alpha eps - sigma x0
template <class D, class E> auto v_from(const TimePoint& p, const D& x0, const E& e) {
  return p.alpha * e - p.sigma * x0;
}
template <class X, class V> auto x0_from_v(const TimePoint& p, const X& x, const V& v) {
  return (p.alpha * x - p.sigma * v) / (p.alpha * p.alpha + p.sigma * p.sigma);
}
template <class X, class V> auto eps_from_v(const TimePoint& p, const X& x, const V& v) {
  return (p.sigma * x + p.alpha * v) / (p.alpha * p.alpha + p.sigma * p.sigma);
}
// Probability-flow velocity u = alpha_dot x0 + sigma_dot eps = dx/dt (closed_forms section 3).
template <class D, class E> auto u_from(const TimePoint& p, const D& x0, const E& e) {
  return p.alpha_dot * x0 + p.sigma_dot * e;
}
// Delta = alpha sigma_dot - sigma alpha_dot > 0 (samplers.md 0.1)
inline double delta(const TimePoint& p) { return p.alpha * p.sigma_dot - p.sigma * p.alpha_dot; }
template <class X, class U> auto x0_from_u(const TimePoint& p, const X& x, const U& u) {
  return (p.sigma_dot * x - p.sigma * u) / delta(p);
}
template <class X, class U> auto eps_from_u(const TimePoint& p, const X& x, const U& u) {
  return (p.alpha * u - p.alpha_dot * x) / delta(p);
}

}  // namespace flowgauge::param
