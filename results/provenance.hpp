#pragma once
// Provenance attributes written into every output file (issue: results with provenance).
#include <map>
#include <string>

namespace flowgauge {

// flowgauge version and git commit, compiler and flags, library versions, host, thread count,
// command line and the UTC start time of this process.
std::map<std::string, std::string> provenance(const std::string& command_line, int threads = 1);
std::string utc_now();  // ISO 8601, seconds

}  // namespace flowgauge
