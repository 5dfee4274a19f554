// Flow matching / rectified flow (Lipman et al. 2023; Liu et al. 2022) in OUR time direction:
// alpha = 1 - t, sigma = t. At t = 1 the prior N(0, I) is exact (lambda = -inf there).
#include <cmath>

#include "analytics/schedule.hpp"

namespace flowgauge {
namespace {
class FmLinear final : public Schedule {
 public:
  std::string name() const override { return "fm-linear"; }
  double alpha(double t) const override { return 1.0 - t; }
  double sigma(double t) const override { return t; }
  double alpha_dot(double) const override { return -1.0; }
  double sigma_dot(double) const override { return 1.0; }
  double lambda(double t) const override { return 2.0 * (std::log1p(-t) - std::log(t)); }
  double lambda_dot(double t) const override { return -2.0 / (1.0 - t) - 2.0 / t; }
  double t_of_lambda(double lam) const override {  // t = sigmoid(-lam/2)
    return lam > 0 ? std::exp(-0.5 * lam) / (1.0 + std::exp(-0.5 * lam)) : 1.0 / (1.0 + std::exp(0.5 * lam));
  }
  std::pair<double, double> natural_domain() const override { return {0.0, 1.0}; }
  std::optional<double> t_sigma_zero() const override { return 0.0; }
};
}  // namespace

std::unique_ptr<Schedule> make_fm_linear(ParamReader& p) {
  auto s = std::make_unique<FmLinear>();
  p.domain(*s, 1e-3, 0.999);
  return s;
}

}  // namespace flowgauge
