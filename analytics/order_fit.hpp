#pragma once
// Empirical order of convergence: least-squares line log(err) = c - p log(N)
// (DiffEqDevTools-style), with R^2, over points whose error is above a floor.
#include <cmath>
#include <vector>

namespace flowgauge {

struct OrderFit {
  double order = NAN, intercept = NAN, r2 = NAN;
  int points = 0;  // points used
};

// Fits err ~ C N^-p using only points with err > floor (and finite, positive).
inline OrderFit fit_order(const std::vector<double>& n, const std::vector<double>& err, double floor = 0.0) {
  std::vector<double> x, y;
  for (std::size_t i = 0; i < n.size() && i < err.size(); ++i)
    if (std::isfinite(err[i]) && err[i] > floor && err[i] > 0 && n[i] > 0) {
      x.push_back(std::log(n[i]));
      y.push_back(std::log(err[i]));
    }
  OrderFit f;
  f.points = static_cast<int>(x.size());
  if (f.points < 2) return f;
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) mx += x[i], my += y[i];
  mx /= x.size();
  my /= y.size();
  double sxx = 0, sxy = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    sxy += (x[i] - mx) * (y[i] - my);
    syy += (y[i] - my) * (y[i] - my);
  }
  const double slope = sxy / sxx;
  f.order = -slope;
  f.intercept = my - slope * mx;
  f.r2 = syy > 0 ? sxy * sxy / (sxx * syy) : 1.0;
  return f;
}

}  // namespace flowgauge
