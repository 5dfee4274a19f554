#pragma once
// Noise schedules x_t = alpha_t x0 + sigma_t eps (closed_forms.md sections 1-2).
// Time runs from data (t_lo) to noise (t_hi). lambda = log(alpha^2/sigma^2) is the FULL logSNR.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace flowgauge {

// Everything a solver needs about the schedule at one time.
struct TimePoint {
  double t, alpha, sigma, alpha_dot, sigma_dot;
  double rho() const { return sigma / alpha; }           // VE-equivalent noise level sigma/alpha
};

using ScheduleParams = std::map<std::string, double>;

// Supported noise levels for sampling intervals and grid points (sigma = 0 only as a grid's
// denoising end). Where a covariance is singular, a point's offset from its subspace is at least
// the rounding eps |x| (|x| <= 1e100 with the mixture's input bounds), so the score grows like
// eps |x| / sigma^2 and the trace like its square: sigma >= 1e-30 keeps that square below
// (2e-16 1e100 / 1e-60)^2 ~ 1e289, finite. sigma <= 1e30 keeps x ~ sigma sqrt(d) and C_k(t) ~
// sigma^2 well inside the same range. Beyond these, results would overflow, not merely lose digits.
inline constexpr double kSigmaMin = 1e-30, kSigmaMax = 1e30;
// Largest noise-to-signal ratio rho = sigma/alpha at t_hi, unless alpha(t_hi) = 0 exactly (an exact
// N(0, sigma^2 I) prior, fm-linear's t = 1). Tweedie's x0 = (x + sigma^2 s)/alpha keeps half its
// digits up to rho = 1/sqrt(eps) ~ 6.7e7; further out alpha itself is mostly rounding (cos(pi t/2)
// is 6e-17, not 0, at t = 1), and samplers stepping in rho or logSNR get garbage.
inline constexpr double kRhoMax = 1e8;

// Declared parameter of a schedule: name, default, meaning.
struct ParamSpec {
  std::string name;
  double value;
  std::string help;
};

class Schedule {
 public:
  virtual ~Schedule() = default;
  virtual std::string name() const = 0;
  virtual double alpha(double t) const = 0;
  virtual double sigma(double t) const = 0;
  virtual double alpha_dot(double t) const = 0;
  virtual double sigma_dot(double t) const = 0;
  // Full logSNR; override where 2 log(alpha/sigma) loses digits.
  virtual double lambda(double t) const;
  virtual double lambda_dot(double t) const;
  // Inverse of lambda; default is the safeguarded Newton/bisection below.
  virtual double t_of_lambda(double lam) const { return t_of_lambda_numeric(lam); }
  // Natural time interval on which alpha, sigma are defined and lambda is strictly decreasing.
  virtual std::pair<double, double> natural_domain() const = 0;
  // Time at which sigma = 0 (a grid may end there: "denoise to zero"), if the schedule has one.
  virtual std::optional<double> t_sigma_zero() const { return std::nullopt; }

  // Newton on lambda(t) = lam, safeguarded by bisection; |dt| <= 1e-14 (1 + |t|) at exit.
  double t_of_lambda_numeric(double lam) const;

  // Sampling interval [t_lo, t_hi] (parameters "t_lo", "t_hi").
  double t_lo() const { return t_lo_; }
  double t_hi() const { return t_hi_; }
  TimePoint at(double t) const { return {t, alpha(t), sigma(t), alpha_dot(t), sigma_dot(t)}; }
  // Forward SDE coefficients: f = alpha_dot/alpha, g^2 = -sigma^2 lambda_dot.
  double f(double t) const { return alpha_dot(t) / alpha(t); }
  double g2(double t) const;
  // Parameters with their values as used (defaults filled in), for provenance.
  const std::vector<ParamSpec>& params() const { return params_; }
  std::string describe() const;  // e.g. "vp-linear(beta_min=0.1, beta_max=20, t_lo=0.001, t_hi=1)"

 protected:
  std::vector<ParamSpec> params_;
  double t_lo_ = 0, t_hi_ = 1;
  friend class ParamReader;
};

// Reads a schedule's parameters from the user's map; unknown keys are reported by make_schedule.
class ParamReader {
 public:
  ParamReader(std::string schedule, const ScheduleParams& given) : schedule_(std::move(schedule)), given_(given) {}
  // Value of `name` (or its default); records it in the schedule's provenance.
  double get(Schedule& s, const std::string& name, double def, const std::string& help);
  // Reads t_lo/t_hi and checks t_lo < t_hi inside the natural domain.
  void domain(Schedule& s, double t_lo_default, double t_hi_default);
  void positive(const std::string& name, double v) const;
  // Throws InputError for keys nobody asked for, with a suggestion.
  void finish(const Schedule& s) const;

 private:
  std::string schedule_;
  const ScheduleParams& given_;
  std::vector<std::string> used_;
};

// Registry (schedules/schedules.def). Names use hyphens ("vp-linear"); underscores are accepted.
std::unique_ptr<Schedule> make_schedule(const std::string& name, const ScheduleParams& params = {});
std::vector<std::string> schedule_names();

}  // namespace flowgauge
