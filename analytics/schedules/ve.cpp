// VE / SMLD (Song & Ermon; Song et al. 2021): alpha = 1, sigma = smin (smax/smin)^t on [0, 1].
#include <cmath>
#include <fmt/format.h>

#include "analytics/errors.hpp"

#include "analytics/schedule.hpp"

namespace flowgauge {
namespace {
class Ve final : public Schedule {
 public:
  double smin = 0.01, smax = 50.0;
  std::string name() const override { return "ve"; }
  double L() const { return std::log(smax / smin); }
  double alpha(double) const override { return 1.0; }
  double sigma(double t) const override { return smin * std::exp(t * L()); }
  double alpha_dot(double) const override { return 0.0; }
  double sigma_dot(double t) const override { return sigma(t) * L(); }
  double lambda(double t) const override { return -2.0 * (std::log(smin) + t * L()); }
  double lambda_dot(double) const override { return -2.0 * L(); }
  double t_of_lambda(double lam) const override { return (-0.5 * lam - std::log(smin)) / L(); }
  // sigma never vanishes; the natural domain extends below 0 (sigma < smin) for logSNR grids.
  std::pair<double, double> natural_domain() const override { return {-40.0, 40.0}; }
};
}  // namespace

std::unique_ptr<Schedule> make_ve(ParamReader& p) {
  auto s = std::make_unique<Ve>();
  s->smin = p.get(*s, "sigma_min", 0.01, "sigma(0)");
  s->smax = p.get(*s, "sigma_max", 50.0, "sigma(1)");
  p.positive("sigma_min", s->smin);
  if (!(s->smax > s->smin))
    throw InputError(fmt::format("schedule ve: sigma_max = {} must be > sigma_min = {}", s->smax, s->smin));
  p.domain(*s, 0.0, 1.0);
  return s;
}

}  // namespace flowgauge
