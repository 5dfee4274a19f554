#include "analytics/presets.hpp"

#include <cmath>
#include <fmt/format.h>
#include <numbers>

#include "analytics/errors.hpp"
#include "analytics/random.hpp"

namespace flowgauge {

std::vector<std::string> preset_names() { return {"gmm8-2d", "gaussian", "random", "point"}; }

namespace {
// Orthogonal matrix from counter-based normals (QR of a Gaussian matrix).
MatrixXd random_orthogonal(int d, std::uint64_t seed, std::uint64_t which) {
  CounterRng rng(seed, Stream::kProbe);
  MatrixXd A(d, d);
  for (int j = 0; j < d; ++j) rng.normals(which * 100003 + j, A.col(j).data(), d);
  Eigen::HouseholderQR<MatrixXd> qr(A);
  return qr.householderQ();
}
}  // namespace

GaussianMixture mixture_preset(const std::string& name, int dim, int components, std::uint64_t seed) {
  std::vector<Component> c;
  if (name == "gmm8-2d") {
    const double w[8] = {0.08, 0.09, 0.10, 0.11, 0.12, 0.14, 0.17, 0.19};
    for (int k = 0; k < 8; ++k) {
      const double a = 2 * std::numbers::pi * k / 8;
      Eigen::Matrix2d R;
      R << std::cos(a), -std::sin(a), std::sin(a), std::cos(a);
      c.push_back({w[k], Eigen::Vector2d(2 * std::cos(a), 2 * std::sin(a)),
                   R * Eigen::Vector2d(0.09, 0.02).asDiagonal() * R.transpose()});
    }
  } else if (name == "gaussian" || name == "random") {
    if (dim < 1) throw InputError(fmt::format("preset {}: dim = {} must be >= 1", name, dim));
    const int K = name == "gaussian" ? 1 : components;
    if (K < 1) throw InputError(fmt::format("preset {}: components = {} must be >= 1", name, K));
    CounterRng rng(seed, Stream::kMixtureNoise);
    for (int k = 0; k < K; ++k) {
      VectorXd m(dim), ev(dim);
      rng.normals(1000000 + k, m.data(), dim);
      if (name == "gaussian") m = VectorXd::LinSpaced(dim, -0.5, 0.7);
      else m *= 1.5;
      for (int i = 0; i < dim; ++i) {
        const double f = dim == 1 ? 1.0 : double(i) / (dim - 1);
        ev(i) = name == "gaussian" ? 0.1 * std::pow(20.0, f) : 0.05 * std::pow(10.0, f);
      }
      const MatrixXd Q = random_orthogonal(dim, seed, k);
      MatrixXd S = Q * ev.asDiagonal() * Q.transpose();
      c.push_back({name == "gaussian" ? 1.0 : 0.5 + rng.uniforms(2000000 + k, 0)[0], m, 0.5 * (S + S.transpose())});
    }
  } else if (name == "point") {
    if (dim < 1) throw InputError(fmt::format("preset point: dim = {} must be >= 1", dim));
    c.push_back({1.0, VectorXd::Ones(dim), MatrixXd::Zero(dim, dim)});
  } else {
    const auto hint = closest_match(name, preset_names());
    throw InputError(fmt::format("unknown mixture preset '{}'{} (known: {})", name,
                                 hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), fmt::join(preset_names(), ", ")));
  }
  double total = 0;
  for (auto& x : c) total += x.weight;
  for (auto& x : c) x.weight /= total;
  return GaussianMixture(std::move(c), "preset " + name);
}

}  // namespace flowgauge
