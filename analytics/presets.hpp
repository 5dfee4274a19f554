#pragma once
// Named mixtures for experiment files (`preset = "..."`).
#include <cstdint>
#include <string>
#include <vector>

#include "analytics/mixture.hpp"

namespace flowgauge {

// gmm8-2d: 8 anisotropic modes on a circle of radius 2 (weights 0.08..0.19).
// gaussian: one anisotropic Gaussian in `dim` dimensions (eigenvalues 0.1..2).
// random: `components` Gaussians in `dim` dimensions, means ~ N(0, 1.5^2 I), random covariances
//         with eigenvalues in [0.05, 0.5]; fully determined by `seed`.
// point: a point mass at (1, ..., 1) (covariance 0): straight flows in fm coordinates.
GaussianMixture mixture_preset(const std::string& name, int dim = 2, int components = 8, std::uint64_t seed = 0);
std::vector<std::string> preset_names();

}  // namespace flowgauge
