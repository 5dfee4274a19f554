#include <cmath>
#include <fmt/format.h>

#include "analytics/errors.hpp"
#include "experiments/cli.hpp"

namespace flowgauge::cli {

std::map<std::string, std::string> parse_pairs(const std::vector<std::string>& items, const std::string& option) {
  std::map<std::string, std::string> out;
  for (const auto& it : items) {
    const auto eq = it.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError(fmt::format("{} '{}': expected key=value", option, it));
    out[it.substr(0, eq)] = it.substr(eq + 1);
  }
  return out;
}

ScheduleParams parse_numbers(const std::vector<std::string>& items, const std::string& option) {
  ScheduleParams out;
  for (const auto& [k, v] : parse_pairs(items, option)) {
    try {
      std::size_t pos = 0;
      const double x = std::stod(v, &pos);
      if (pos == v.size() && std::isfinite(x)) {
        out[k] = x;
        continue;
      }
    } catch (const std::exception&) {
    }
    throw InputError(fmt::format("{} {}={}: '{}' is not a finite number", option, k, v, v));
  }
  return out;
}

void warn(const std::string& message) { fmt::print(stderr, "flowgauge: warning: {}\n", message); }

void ScheduleArgs::add(CLI::App& app) {
  app.add_option("--schedule", name, "Noise schedule (vp-linear, vp-cosine, sub-vp, ve, edm, fm-linear, fm-cosine)")
      ->capture_default_str();
  app.add_option("--schedule-param", params, "Schedule parameter key=value (e.g. beta_max=20, t_lo=1e-3); repeatable");
}

std::unique_ptr<Schedule> ScheduleArgs::make() const { return make_schedule(name, parse_numbers(params, "--schedule-param")); }

}  // namespace flowgauge::cli
