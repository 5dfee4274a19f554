#include "solvers/coordinates.hpp"

#include <cmath>
#include <fmt/format.h>

#include "analytics/errors.hpp"

namespace flowgauge {

std::vector<std::string> coord_names() { return {"t", "ve", "fm", "logsnr"}; }

Coord parse_coord(const std::string& name) {
  if (name == "t") return Coord::kT;
  if (name == "ve") return Coord::kVe;
  if (name == "fm") return Coord::kFm;
  if (name == "logsnr") return Coord::kLogsnr;
  const auto hint = closest_match(name, coord_names());
  throw InputError(fmt::format("unknown coordinates '{}'{} (known: t, ve, fm, logsnr)", name,
                               hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
}

std::string coord_name(Coord c) { return coord_names()[static_cast<int>(c)]; }

double Coordinates::tau(double t) const {
  if ((kind == Coord::kVe || kind == Coord::kLogsnr) && !(s->alpha(t) > 0))  // fm-linear's t = 1 (exact prior)
    throw InputError(fmt::format("coordinates {}: undefined at t = {} where alpha = 0 (rho = sigma/alpha is infinite); "
                                 "use coordinates = t or fm, or t_hi < {}", coord_name(kind), t, t));
  switch (kind) {
    case Coord::kT: return t;
    case Coord::kVe: return s->sigma(t) / s->alpha(t);
    case Coord::kFm: return s->sigma(t) / (s->alpha(t) + s->sigma(t));
    case Coord::kLogsnr: return s->lambda(t);
  }
  return t;
}

double Coordinates::t_of(double tau) const {
  auto from_rho = [&](double rho) {
    if (rho == 0.0 && s->t_sigma_zero()) return *s->t_sigma_zero();
    return s->t_of_lambda(-2.0 * std::log(rho));
  };
  switch (kind) {
    case Coord::kT: return tau;
    case Coord::kVe: return from_rho(tau);
    case Coord::kFm: return from_rho(tau / (1.0 - tau));
    case Coord::kLogsnr: return s->t_of_lambda(tau);
  }
  return tau;
}

double Coordinates::scale(const TimePoint& p) const {
  switch (kind) {
    case Coord::kT: return 1.0;
    case Coord::kVe:
    case Coord::kLogsnr: return p.alpha;
    case Coord::kFm: return p.alpha + p.sigma;
  }
  return 1.0;
}

void Coordinates::drift_coeffs(const TimePoint& p, double& cx, double& ce) const {
  switch (kind) {
    case Coord::kT: cx = p.alpha_dot; ce = p.sigma_dot; return;
    case Coord::kVe: cx = 0.0; ce = 1.0; return;
    case Coord::kFm: cx = -1.0; ce = 1.0; return;
    case Coord::kLogsnr: cx = 0.0; ce = -0.5 * p.sigma / p.alpha; return;
  }
}

}  // namespace flowgauge
