#include "results/provenance.hpp"

#include <H5public.h>
#include <chrono>
#include <ctime>
#include <fmt/format.h>
#include <unistd.h>

#include "flowgauge/build_info.hpp"

namespace flowgauge {

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::map<std::string, std::string> provenance(const std::string& command_line, int threads) {
  static const std::string start = utc_now();
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  return {
      {"flowgauge_version", build::version},
      {"git_commit", build::git_commit},
      {"compiler", build::compiler},
      {"build_type", build::build_type},
      {"cxx_flags", build::cxx_flags},
      {"eigen_version", build::eigen_version},
      {"boost_version", build::boost_version},
      {"fmt_version", build::fmt_version},
      {"hdf5_version", fmt::format("{}.{}.{}", maj, min, rel)},
      {"host", host},
      {"threads", std::to_string(threads)},
      {"command_line", command_line},
      {"start_time", start},
  };
}

}  // namespace flowgauge
