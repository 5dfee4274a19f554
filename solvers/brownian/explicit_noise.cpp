#include "solvers/brownian/explicit_noise.hpp"

#include <cmath>
#include <fmt/format.h>

#include "analytics/errors.hpp"

namespace flowgauge {

ExplicitNoise::ExplicitNoise(std::vector<double> times, std::vector<MatrixXd> normals, std::string origin)
    : t_(std::move(times)), xi_(std::move(normals)), origin_(std::move(origin)) {
  if (xi_.empty()) throw InputError(fmt::format("{}: no noise steps", origin_));
  if (t_.size() != xi_.size() + 1)
    throw InputError(fmt::format("{}: {} noise steps need {} grid times, got {}", origin_, xi_.size(),
                                 xi_.size() + 1, t_.size()));
  for (std::size_t i = 0; i + 1 < t_.size(); ++i)
    if (!(t_[i] > t_[i + 1])) throw InputError(fmt::format("{}: grid times must decrease", origin_));
  for (std::size_t i = 0; i < xi_.size(); ++i) {
    if (xi_[i].rows() != xi_[0].rows() || xi_[i].cols() != xi_[0].cols())
      throw InputError(fmt::format("{}: step {} has shape ({}, {}), step 0 ({}, {})", origin_, i, xi_[i].cols(),
                                   xi_[i].rows(), xi_[0].cols(), xi_[0].rows()));
    if (!xi_[i].allFinite()) throw InputError(fmt::format("{}: step {} contains NaN or Inf", origin_, i));
  }
}

int ExplicitNoise::node(double t) const {
  // t_ decreasing: exact match required (samplers query grid times as given).
  std::size_t lo = 0, hi = t_.size();
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    if (t_[mid] > t) lo = mid + 1;
    else hi = mid;
  }
  if (lo < t_.size() && t_[lo] == t) return static_cast<int>(lo);
  throw InputError(fmt::format("{}: recorded noise has one normal per grid step; time {} is not a grid time "
                               "(the solver needs sub-step noise, which a recorded array cannot give)",
                               origin_, t));
}

void ExplicitNoise::check_range(std::int64_t first, Eigen::Index n, Eigen::Index d) const {
  if (d != xi_[0].rows())
    throw InputError(fmt::format("{}: noise has dimension {}, the sampler's state {}", origin_, xi_[0].rows(), d));
  if (first < 0 || first + n > xi_[0].cols())
    throw InputError(fmt::format("{}: noise holds {} particles, the batch needs particles [{}, {})", origin_,
                                 xi_[0].cols(), first, first + n));
}

void ExplicitNoise::increment(double ta, double tb, std::int64_t first, MatRef out) const {
  check_range(first, out.cols(), out.rows());
  int a = node(ta), b = node(tb);
  const double sign = b >= a ? 1.0 : -1.0;  // node index grows as t decreases: W(t_b) - W(t_a)
  if (a > b) std::swap(a, b);
  out.setZero();
  for (int i = a; i < b; ++i) out += std::sqrt(t_[i] - t_[i + 1]) * xi_[i].middleCols(first, out.cols());
  if (sign < 0) out = -out;
}

void ExplicitNoise::normal(double ta, double tb, std::int64_t first, MatRef out) const {
  check_range(first, out.cols(), out.rows());
  const int a = node(ta), b = node(tb);
  if (b == a + 1)
    out = xi_[a].middleCols(first, out.cols());
  else if (a == b + 1)
    out = -xi_[b].middleCols(first, out.cols());
  else
    NoiseSource::normal(ta, tb, first, out);
}

}  // namespace flowgauge
