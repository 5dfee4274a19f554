// Trigonometric / GVP interpolant (v-diffusion cosine; Albergo et al.): alpha = cos(pi t/2), sigma = sin(pi t/2).
#include <cmath>
#include <numbers>

#include "analytics/schedule.hpp"

namespace flowgauge {
namespace {
class FmCosine final : public Schedule {
 public:
  static constexpr double w = 0.5 * std::numbers::pi;
  std::string name() const override { return "fm-cosine"; }
  double alpha(double t) const override { return std::cos(w * t); }
  double sigma(double t) const override { return std::sin(w * t); }
  double alpha_dot(double t) const override { return -w * std::sin(w * t); }
  double sigma_dot(double t) const override { return w * std::cos(w * t); }
  double lambda(double t) const override { return -2.0 * std::log(std::tan(w * t)); }
  double lambda_dot(double t) const override { return -2.0 * w / (std::sin(w * t) * std::cos(w * t)); }
  double t_of_lambda(double lam) const override { return std::atan(std::exp(-0.5 * lam)) / w; }
  std::pair<double, double> natural_domain() const override { return {0.0, 1.0}; }
  std::optional<double> t_sigma_zero() const override { return 0.0; }
};
}  // namespace

std::unique_ptr<Schedule> make_fm_cosine(ParamReader& p) {
  auto s = std::make_unique<FmCosine>();
  p.domain(*s, 1e-3, 0.999);
  return s;
}

}  // namespace flowgauge
