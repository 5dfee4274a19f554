// Schedule registry generated from schedules.def (X-macro, as SUNDIALS registers Butcher tables).
#include <algorithm>
#include <fmt/format.h>

#include "analytics/errors.hpp"
#include "analytics/schedule.hpp"

namespace flowgauge {

#define FLOWGAUGE_SCHEDULE(id, str) std::unique_ptr<Schedule> make_##id(ParamReader&);
#include "analytics/schedules/schedules.def"
#undef FLOWGAUGE_SCHEDULE

namespace {
struct Entry {
  const char* name;
  std::unique_ptr<Schedule> (*make)(ParamReader&);
};
constexpr Entry kSchedules[] = {
#define FLOWGAUGE_SCHEDULE(id, str) {str, &make_##id},
#include "analytics/schedules/schedules.def"
#undef FLOWGAUGE_SCHEDULE
};
}  // namespace

std::vector<std::string> schedule_names() {
  std::vector<std::string> names;
  for (const auto& e : kSchedules) names.emplace_back(e.name);
  return names;
}

std::unique_ptr<Schedule> make_schedule(const std::string& name, const ScheduleParams& params) {
  std::string key = name;
  std::replace(key.begin(), key.end(), '_', '-');
  for (const auto& e : kSchedules) {
    if (key != e.name) continue;
    ParamReader reader(key, params);
    auto s = e.make(reader);
    reader.finish(*s);
    return s;
  }
  const std::string hint = closest_match(key, schedule_names());
  throw InputError(fmt::format("unknown schedule '{}'{} (known: {})", name,
                               hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint),
                               fmt::format("{}", fmt::join(schedule_names(), ", "))));
}

}  // namespace flowgauge
