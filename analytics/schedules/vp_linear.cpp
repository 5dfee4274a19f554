// VP-linear (DDPM continuous, Song et al. 2021 VPSDE): beta(t) = b0 + t (b1 - b0),
// log alpha = -t^2 (b1-b0)/4 - t b0/2, sigma = sqrt(1 - alpha^2).
#include <cmath>

#include "analytics/schedule.hpp"

namespace flowgauge {
namespace {
class VpLinear final : public Schedule {
 public:
  double b0 = 0.1, b1 = 20.0;
  std::string name() const override { return "vp-linear"; }
  double log_alpha(double t) const { return -0.25 * t * t * (b1 - b0) - 0.5 * t * b0; }
  double beta(double t) const { return b0 + t * (b1 - b0); }
  double alpha(double t) const override { return std::exp(log_alpha(t)); }
  double sigma(double t) const override { return std::sqrt(-std::expm1(2.0 * log_alpha(t))); }
  double alpha_dot(double t) const override { return -0.5 * beta(t) * alpha(t); }
  double sigma_dot(double t) const override {
    const double a = alpha(t);
    return 0.5 * beta(t) * a * a / sigma(t);
  }
  double lambda(double t) const override {
    const double la = log_alpha(t);
    return 2.0 * la - std::log(-std::expm1(2.0 * la));
  }
  double lambda_dot(double t) const override {  // d/dt [2 la - log(1 - e^{2la})] = -beta / sigma^2
    const double s = sigma(t);
    return -beta(t) / (s * s);
  }
  double t_of_lambda(double lam) const override {
    // -2 log alpha = softplus(-lam)  =>  (b1-b0)/4 t^2 + b0/2 t - softplus(-lam)/2 = 0
    const double sp = lam < -30 ? -lam + std::log1p(std::exp(lam)) : std::log1p(std::exp(-lam));
    const double A = 0.25 * (b1 - b0), B = 0.5 * b0, C = 0.5 * sp;
    return 2.0 * C / (B + std::sqrt(B * B + 4.0 * A * C));
  }
  std::pair<double, double> natural_domain() const override { return {0.0, 1.0}; }
  std::optional<double> t_sigma_zero() const override { return 0.0; }
};
}  // namespace

std::unique_ptr<Schedule> make_vp_linear(ParamReader& p) {
  auto s = std::make_unique<VpLinear>();
  s->b0 = p.get(*s, "beta_min", 0.1, "beta(0)");
  s->b1 = p.get(*s, "beta_max", 20.0, "beta(1)");
  p.positive("beta_min", s->b0);
  p.positive("beta_max", s->b1);
  p.domain(*s, 1e-3, 1.0);
  return s;
}

}  // namespace flowgauge
