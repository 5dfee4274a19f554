// sub-VP (Song et al. 2021): alpha as vp-linear, sigma = 1 - alpha^2 (the std, not its square root).
#include <cmath>

#include "analytics/schedule.hpp"

namespace flowgauge {
namespace {
class SubVp final : public Schedule {
 public:
  double b0 = 0.1, b1 = 20.0;
  std::string name() const override { return "sub-vp"; }
  double log_alpha(double t) const { return -0.25 * t * t * (b1 - b0) - 0.5 * t * b0; }
  double beta(double t) const { return b0 + t * (b1 - b0); }
  double alpha(double t) const override { return std::exp(log_alpha(t)); }
  double sigma(double t) const override { return -std::expm1(2.0 * log_alpha(t)); }
  double alpha_dot(double t) const override { return -0.5 * beta(t) * alpha(t); }
  double sigma_dot(double t) const override {  // -2 alpha alpha_dot
    const double a = alpha(t);
    return beta(t) * a * a;
  }
  double lambda(double t) const override {
    const double la = log_alpha(t);
    return 2.0 * la - 2.0 * std::log(-std::expm1(2.0 * la));
  }
  // t_of_lambda: generic safeguarded Newton (no closed form kept).
  std::pair<double, double> natural_domain() const override { return {0.0, 1.0}; }
  std::optional<double> t_sigma_zero() const override { return 0.0; }
};
}  // namespace

std::unique_ptr<Schedule> make_sub_vp(ParamReader& p) {
  auto s = std::make_unique<SubVp>();
  s->b0 = p.get(*s, "beta_min", 0.1, "beta(0)");
  s->b1 = p.get(*s, "beta_max", 20.0, "beta(1)");
  p.positive("beta_min", s->b0);
  p.positive("beta_max", s->b1);
  p.domain(*s, 1e-3, 1.0);
  return s;
}

}  // namespace flowgauge
