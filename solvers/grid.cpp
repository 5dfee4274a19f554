#include "solvers/grid.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "analytics/errors.hpp"

namespace flowgauge {

std::vector<std::string> grid_kinds() {
  return {"uniform", "logsnr", "edm", "exponential", "polyexponential", "quadratic", "explicit"};
}

FinalStep parse_final_step(const std::string& name) {
  if (name == "step") return FinalStep::kStep;
  if (name == "denoise") return FinalStep::kDenoise;
  throw InputError(fmt::format("final_step = '{}': expected 'step' or 'denoise'", name));
}

namespace {
double t_of_rho(const Schedule& s, double rho) { return s.t_of_lambda(-2.0 * std::log(rho)); }
}  // namespace

Grid make_grid(const Schedule& s, const GridSpec& spec) {
  Grid g;
  const double tlo = s.t_lo(), thi = s.t_hi();
  if (spec.kind == "explicit") {
    if (spec.times.size() < 2) throw InputError("explicit grid: needs at least two points");
    for (std::size_t i = 0; i < spec.times.size(); ++i) {
      const double v = spec.times[i];
      if (!std::isfinite(v)) throw InputError(fmt::format("explicit grid: point {} is not finite", i));
      if (spec.in_sigma && v == 0.0) {
        if (i + 1 != spec.times.size()) throw InputError("explicit grid: sigma = 0 is allowed only last");
        if (!s.t_sigma_zero()) throw InputError(fmt::format("explicit grid: schedule {} never reaches sigma = 0", s.name()));
        g.t.push_back(*s.t_sigma_zero());
        g.denoise_final = true;
      } else {
        if (spec.in_sigma && !(v > 0)) throw InputError(fmt::format("explicit grid: sigma[{}] = {} must be > 0", i, v));
        g.t.push_back(spec.in_sigma ? t_of_rho(s, v) : v);
      }
    }
    for (std::size_t i = 0; i + 1 < g.t.size(); ++i)
      if (!(g.t[i + 1] < g.t[i]))
        throw InputError(fmt::format("explicit grid: not strictly decreasing at point {} ({} then {})", i, g.t[i], g.t[i + 1]));
    const auto [a, b] = s.natural_domain();
    for (double t : g.t)
      if (t < a || t > b) throw InputError(fmt::format("explicit grid: time {} is outside {}'s domain [{}, {}]", t, s.name(), a, b));
    if (!g.denoise_final && s.t_sigma_zero() && g.t.back() == *s.t_sigma_zero()) g.denoise_final = true;
    for (std::size_t i = 0; i + (g.denoise_final ? 1 : 0) < g.t.size(); ++i)  // schedule.hpp kSigmaMin/Max
      if (const double sg = s.sigma(g.t[i]); !(sg >= kSigmaMin && sg <= kSigmaMax))
        throw InputError(fmt::format("explicit grid: point {} (t = {}) has sigma = {:.3g}, outside the supported [{:.0e}, {:.0e}]",
                                     i, g.t[i], sg, kSigmaMin, kSigmaMax));
    return g;
  }
  if (spec.steps < 1) throw InputError(fmt::format("grid: steps = {} must be >= 1", spec.steps));
  const bool denoise = spec.final_step == FinalStep::kDenoise;
  if (denoise && !s.t_sigma_zero())
    throw InputError(fmt::format("grid: final_step = denoise needs a schedule that reaches sigma = 0; {} does not", s.name()));
  if (denoise && spec.steps < 2) throw InputError("grid: final_step = denoise needs steps >= 2");
  const int M = denoise ? spec.steps - 1 : spec.steps;  // intervals between t_hi and t_lo
  const double lam_hi = s.lambda(thi), lam_lo = s.lambda(tlo);
  const double rmax = std::exp(-0.5 * lam_hi), rmin = std::exp(-0.5 * lam_lo);
  if ((spec.kind == "logsnr" || spec.kind == "edm" || spec.kind == "exponential" || spec.kind == "polyexponential") &&
      !(std::isfinite(lam_hi) && std::isfinite(lam_lo)))
    throw InputError(fmt::format("grid {}: logSNR is infinite at an end of [{}, {}] for {}; move t_lo/t_hi inside",
                                 spec.kind, tlo, thi, s.name()));
  if ((spec.kind == "edm" || spec.kind == "polyexponential") && !(spec.rho > 0))
    throw InputError(fmt::format("grid {}: rho = {} must be > 0", spec.kind, spec.rho));
  g.t.resize(M + 1);
  for (int i = 0; i <= M; ++i) {
    const double f = static_cast<double>(i) / M;
    double t;
    if (spec.kind == "uniform") {
      t = thi + (tlo - thi) * f;
    } else if (spec.kind == "quadratic") {  // DPM-Solver time_quadratic: uniform in sqrt(t)
      const double a = std::sqrt(thi), b = std::sqrt(tlo);
      t = std::pow(a + (b - a) * f, 2);
    } else if (spec.kind == "logsnr" || spec.kind == "exponential") {
      // uniform in lambda == uniform in log rho (k-diffusion get_sigmas_exponential)
      t = s.t_of_lambda(lam_hi + (lam_lo - lam_hi) * f);
    } else if (spec.kind == "edm") {  // Karras et al. eq. 5
      const double a = std::pow(rmax, 1.0 / spec.rho), b = std::pow(rmin, 1.0 / spec.rho);
      t = t_of_rho(s, std::pow(a + (b - a) * f, spec.rho));
    } else if (spec.kind == "polyexponential") {  // k-diffusion get_sigmas_polyexponential
      t = t_of_rho(s, std::exp(std::log(rmin) + std::pow(1.0 - f, spec.rho) * (std::log(rmax) - std::log(rmin))));
    } else {
      const auto hint = closest_match(spec.kind, grid_kinds());
      throw InputError(fmt::format("unknown grid '{}'{} (known: {})", spec.kind,
                                   hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint),
                                   fmt::join(grid_kinds(), ", ")));
    }
    g.t[i] = t;
  }
  g.t.front() = thi;  // exact endpoints, no round trip through lambda
  g.t[M] = tlo;
  if (denoise) {
    g.t.push_back(*s.t_sigma_zero());
    g.denoise_final = true;
  }
  for (std::size_t i = 0; i + 1 < g.t.size(); ++i)
    if (!(g.t[i + 1] < g.t[i]))
      throw InputError(fmt::format("grid {} with {} steps is not strictly decreasing at point {} (t = {}, {}): too many steps for the precision of t",
                                   spec.kind, spec.steps, i, g.t[i], g.t[i + 1]));
  return g;
}

}  // namespace flowgauge
