// VP-cosine (Nichol & Dhariwal 2021): alpha = cos(theta)/cos(theta0), theta = pi/2 (t+s)/(1+s),
// theta0 = pi/2 s/(1+s); sigma = sqrt(1 - alpha^2). alpha(1) = 0, so t_hi < 1.
#include <cmath>
#include <numbers>

#include "analytics/schedule.hpp"

namespace flowgauge {
namespace {
class VpCosine final : public Schedule {
 public:
  double s = 0.008;
  std::string name() const override { return "vp-cosine"; }
  double rate() const { return 0.5 * std::numbers::pi / (1.0 + s); }  // d theta / dt
  double theta(double t) const { return rate() * (t + s); }
  double theta0() const { return rate() * s; }
  double alpha(double t) const override { return std::cos(theta(t)) / std::cos(theta0()); }
  // 1 - alpha^2 = sin(th - th0) sin(th + th0) / cos^2 th0, free of cancellation near t = 0.
  double sigma2(double t) const {
    const double c0 = std::cos(theta0());
    return std::sin(rate() * t) * std::sin(theta(t) + theta0()) / (c0 * c0);
  }
  double sigma(double t) const override { return std::sqrt(sigma2(t)); }
  double alpha_dot(double t) const override { return -rate() * std::sin(theta(t)) / std::cos(theta0()); }
  double sigma_dot(double t) const override { return -alpha(t) * alpha_dot(t) / sigma(t); }
  double lambda(double t) const override { return std::log(alpha(t) * alpha(t) / sigma2(t)); }
  double t_of_lambda(double lam) const override {
    // sigma^2 = sigmoid(-lam); sin(rate t) = sigma^2 cos^2 th0 / sin(th + th0), th from atan2.
    // alpha^2 = sigmoid(lam) directly: sqrt(1 - s2) loses eps / alpha^2 relative as t -> 1
    // (t(lambda(t)) was off by 9e-12 at t = 1 - 1e-6).
    const double s2 = lam > 0 ? std::exp(-lam) / (1.0 + std::exp(-lam)) : 1.0 / (1.0 + std::exp(lam));
    const double a = std::sqrt(lam > 0 ? 1.0 / (1.0 + std::exp(-lam)) : std::exp(lam) / (1.0 + std::exp(lam)));
    const double c0 = std::cos(theta0()), sn0 = std::sin(theta0());
    const double th = std::atan2(std::sqrt(sn0 * sn0 + s2 * c0 * c0), a * c0);
    const double d = std::asin(std::min(1.0, s2 * c0 * c0 / std::sin(th + theta0())));
    return (th - theta0() > 0.5 ? th - theta0() : d) / rate();
  }
  std::pair<double, double> natural_domain() const override { return {0.0, 1.0}; }
  std::optional<double> t_sigma_zero() const override { return 0.0; }
};
}  // namespace

std::unique_ptr<Schedule> make_vp_cosine(ParamReader& p) {
  auto sc = std::make_unique<VpCosine>();
  sc->s = p.get(*sc, "s", 0.008, "offset of Nichol-Dhariwal cosine");
  p.positive("s", sc->s);
  p.domain(*sc, 1e-3, 0.999);
  return sc;
}

}  // namespace flowgauge
