#include "analytics/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>

#include "analytics/errors.hpp"

namespace flowgauge {

double Schedule::lambda(double t) const { return 2.0 * (std::log(alpha(t)) - std::log(sigma(t))); }

double Schedule::lambda_dot(double t) const {
  return 2.0 * (alpha_dot(t) / alpha(t) - sigma_dot(t) / sigma(t));
}

double Schedule::g2(double t) const {
  const double s = sigma(t);
  return -s * s * lambda_dot(t);
}

double Schedule::t_of_lambda_numeric(double lam) const {
  auto [a, b] = natural_domain();
  // lambda decreases: f(a) >= 0 >= f(b) with f = lambda - lam. Endpoints may be +-inf in lambda.
  double lo = a, hi = b;
  double t = 0.5 * (lo + hi);
  if (!std::isfinite(hi)) {  // unbounded domain: grow a finite bracket
    hi = std::max(1.0, lo);
    while (lambda(hi) > lam) hi *= 2.0;
    t = 0.5 * (lo + hi);
  }
  for (int it = 0; it < 200; ++it) {
    const double fv = lambda(t) - lam;
    if (fv > 0) lo = t; else hi = t;
    const double d = lambda_dot(t);
    double next = t - fv / d;
    if (!(next > lo && next < hi) || !std::isfinite(next)) next = 0.5 * (lo + hi);
    const double step = std::abs(next - t);
    t = next;
    if (step <= 1e-15 * (1.0 + std::abs(t)) || hi - lo <= 1e-15 * (1.0 + std::abs(t))) break;
  }
  return t;
}

std::string Schedule::describe() const {
  std::string s = name() + "(";
  for (std::size_t i = 0; i < params_.size(); ++i)
    s += fmt::format("{}{}={}", i ? ", " : "", params_[i].name, params_[i].value);
  return s + ")";
}

double ParamReader::get(Schedule& s, const std::string& name, double def, const std::string& help) {
  used_.push_back(name);
  auto it = given_.find(name);
  const double v = it == given_.end() ? def : it->second;
  if (!std::isfinite(v))
    throw InputError(fmt::format("schedule {}: parameter {} = {} is not finite", schedule_, name, v));
  s.params_.push_back({name, v, help});
  return v;
}

void ParamReader::positive(const std::string& name, double v) const {
  if (!(v > 0))
    throw InputError(fmt::format("schedule {}: parameter {} = {} must be > 0", schedule_, name, v));
}

void ParamReader::domain(Schedule& s, double t_lo_default, double t_hi_default) {
  s.t_lo_ = get(s, "t_lo", t_lo_default, "data end of the sampling interval");
  s.t_hi_ = get(s, "t_hi", t_hi_default, "noise end of the sampling interval");
  auto [a, b] = s.natural_domain();
  if (!(s.t_lo_ < s.t_hi_))
    throw InputError(fmt::format("schedule {}: t_lo = {} must be < t_hi = {}", schedule_, s.t_lo_, s.t_hi_));
  if (s.t_lo_ < a || s.t_hi_ > b)
    throw InputError(fmt::format("schedule {}: [t_lo, t_hi] = [{}, {}] leaves the domain [{}, {}]", schedule_,
                                 s.t_lo_, s.t_hi_, a, b));
  if (!(s.sigma(s.t_lo_) > 0) || !(s.alpha(s.t_hi_) >= 0))
    throw InputError(fmt::format("schedule {}: sigma(t_lo = {}) must be > 0", schedule_, s.t_lo_));
  if (const double lo = s.sigma(s.t_lo_); lo < kSigmaMin)
    throw InputError(fmt::format("schedule {}: t_lo = {} gives sigma = {:.3g}, below the supported {:.0e}; raise t_lo",
                                 schedule_, s.t_lo_, lo, kSigmaMin));
  if (const double hi = s.sigma(s.t_hi_); !(hi <= kSigmaMax))
    throw InputError(fmt::format("schedule {}: t_hi = {} gives sigma = {:.3g}, above the supported {:.0e}; "
                                 "lower t_hi", schedule_, s.t_hi_, hi, kSigmaMax));
  if (const double a = s.alpha(s.t_hi_); a > 0 && !(s.sigma(s.t_hi_) <= kRhoMax * a))
    throw InputError(fmt::format("schedule {}: t_hi = {} gives sigma/alpha = {:.3g}, above the supported {:.0e} (alpha = "
                                 "{:.3g} is not resolved there); lower t_hi", schedule_, s.t_hi_, s.sigma(s.t_hi_) / a,
                                 kRhoMax, a));
}

void ParamReader::finish(const Schedule& s) const {
  for (const auto& [key, value] : given_) {
    if (std::find(used_.begin(), used_.end(), key) != used_.end()) continue;
    const std::string hint = closest_match(key, used_);
    std::string known;
    for (const auto& u : used_) known += (known.empty() ? "" : ", ") + u;
    throw InputError(fmt::format("schedule {}: unknown parameter '{}'{} (known: {})", schedule_, key,
                                 hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), known));
  }
}

}  // namespace flowgauge
