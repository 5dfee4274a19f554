#pragma once
// Shared test problems. Every test states its tolerance with a one-line reason.
#include <cmath>
#include <numbers>
#include <random>

#include "analytics/mixture.hpp"
#include "analytics/schedule.hpp"

namespace flowgauge::testing {

// 8 modes on a circle of radius 2 in 2-D, unequal weights and anisotropic covariances.
inline GaussianMixture gmm8_2d() {
  std::vector<Component> c;
  for (int k = 0; k < 8; ++k) {
    const double a = 2 * std::numbers::pi * k / 8;
    Eigen::Vector2d m(2 * std::cos(a), 2 * std::sin(a));
    Eigen::Matrix2d R;
    R << std::cos(a), -std::sin(a), std::sin(a), std::cos(a);
    Eigen::Matrix2d S = R * Eigen::Vector2d(0.09, 0.02).asDiagonal() * R.transpose();
    c.push_back({0.5 + 0.1 * k, m, S});
  }
  return GaussianMixture(c, "gmm8_2d");
}

// Random SPD matrix with eigenvalues spread between lo and hi (fixed seed).
inline Eigen::MatrixXd random_spd(int d, double lo, double hi, unsigned seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> n;
  Eigen::MatrixXd A(d, d);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) A(i, j) = n(g);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(A);
  Eigen::MatrixXd Q = qr.householderQ();
  Eigen::VectorXd ev(d);
  for (int i = 0; i < d; ++i) ev(i) = d == 1 ? hi : lo * std::pow(hi / lo, double(i) / (d - 1));
  Eigen::MatrixXd S = Q * ev.asDiagonal() * Q.transpose();
  return 0.5 * (S + S.transpose());
}

// K random components in dimension d (means spread ~ 3, covariances with eigenvalues in [0.05, 0.5]).
inline GaussianMixture random_gmm(int d, int K, unsigned seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> n;
  std::uniform_real_distribution<double> u(0.5, 1.5);
  std::vector<Component> c;
  for (int k = 0; k < K; ++k) {
    Eigen::VectorXd m(d);
    for (int i = 0; i < d; ++i) m(i) = 1.5 * n(g);
    c.push_back({u(g), m, random_spd(d, 0.05, 0.5, seed * 100 + k)});
  }
  return GaussianMixture(c, "random_gmm");
}

inline GaussianMixture single_gaussian(int d, unsigned seed) {
  Eigen::VectorXd m = Eigen::VectorXd::LinSpaced(d, -0.5, 0.7);
  return GaussianMixture({Component{1.0, m, random_spd(d, 0.1, 2.0, seed)}}, "single_gaussian");
}

}  // namespace flowgauge::testing
