#pragma once
// Recorded noise (replaying another implementation): one d x N matrix of standard normals per
// grid step, xi_i for the step t_i -> t_{i+1} (HDF5 (steps, N, d), read by `flowgauge sample
// --noise FILE --noise-dataset D`). It defines a Brownian path known at the grid nodes only:
// W(t_0) = 0, W(t_{i+1}) - W(t_i) = sqrt(t_i - t_{i+1}) xi_i. So increments between any two grid
// nodes are available, normal(t_i, t_{i+1}) returns xi_i exactly (bitwise), and a query at a time
// that is not a grid node (a sampler needing sub-step noise) throws InputError.
#include <vector>

#include "solvers/brownian/noise.hpp"

namespace flowgauge {

class ExplicitNoise final : public NoiseSource {
 public:
  // times: t_0 > t_1 > ... > t_S (the first S + 1 grid times), normals: S matrices d x N.
  ExplicitNoise(std::vector<double> times, std::vector<MatrixXd> normals, std::string origin = "explicit noise");

  int dim() const override { return static_cast<int>(xi_.front().rows()); }
  long particles() const { return static_cast<long>(xi_.front().cols()); }
  int steps() const { return static_cast<int>(xi_.size()); }
  void increment(double ta, double tb, std::int64_t first, MatRef out) const override;
  void normal(double ta, double tb, std::int64_t first, MatRef out) const override;
  std::string describe() const override { return origin_; }

 private:
  int node(double t) const;  // index i with t_i == t (exact), else throws
  void check_range(std::int64_t first, Eigen::Index n, Eigen::Index d) const;
  std::vector<double> t_;
  std::vector<MatrixXd> xi_;
  std::string origin_;
};

}  // namespace flowgauge
