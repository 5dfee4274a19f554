// EDM (Karras et al. 2022): alpha = 1, sigma = t, t in [0.002, 80]; sigma = 0 at t = 0.
#include <cmath>
#include <limits>

#include "analytics/schedule.hpp"

namespace flowgauge {
namespace {
class Edm final : public Schedule {
 public:
  std::string name() const override { return "edm"; }
  double alpha(double) const override { return 1.0; }
  double sigma(double t) const override { return t; }
  double alpha_dot(double) const override { return 0.0; }
  double sigma_dot(double) const override { return 1.0; }
  double lambda(double t) const override { return -2.0 * std::log(t); }
  double lambda_dot(double t) const override { return -2.0 / t; }
  double t_of_lambda(double lam) const override { return std::exp(-0.5 * lam); }
  std::pair<double, double> natural_domain() const override {
    return {0.0, std::numeric_limits<double>::infinity()};
  }
  std::optional<double> t_sigma_zero() const override { return 0.0; }
};
}  // namespace

std::unique_ptr<Schedule> make_edm(ParamReader& p) {
  auto s = std::make_unique<Edm>();
  p.domain(*s, 0.002, 80.0);
  return s;
}

}  // namespace flowgauge
