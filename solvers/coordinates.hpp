#pragma once
// Coordinate systems for integrating the PF-ODE (architecture.md property 2; samplers.md 1.4).
// State z = x / m(t), time tau(t); the drift dz/dtau is written directly in predictions:
//   t      : z = x,                tau = t,                  dz/dtau = alpha_dot x0 + sigma_dot eps
//   ve     : z = x/alpha,          tau = rho = sigma/alpha,  dz/dtau = eps            (EDM form)
//   fm     : z = x/(alpha+sigma),  tau = sigma/(alpha+sigma), dz/dtau = eps - x0      (rectified-flow form)
//   logsnr : z = x/alpha,          tau = lambda,             dz/dtau = -(rho/2) eps
#include <string>
#include <vector>

#include "analytics/schedule.hpp"

namespace flowgauge {

enum class Coord { kT, kVe, kFm, kLogsnr };

Coord parse_coord(const std::string& name);
std::string coord_name(Coord c);
std::vector<std::string> coord_names();

struct Coordinates {
  Coord kind;
  const Schedule* s;

  double tau(double t) const;
  double t_of(double tau) const;                // inverse of tau(t)
  double scale(const TimePoint& p) const;       // m(t): x = m z
  // Drift coefficients: dz/dtau = cx * x0 + ce * eps at the time point p.
  void drift_coeffs(const TimePoint& p, double& cx, double& ce) const;
};

}  // namespace flowgauge
