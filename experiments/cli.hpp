#pragma once
// Shared pieces of the flowgauge command line (one file per subcommand: cmd_<name>.cpp).
#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "analytics/mixture.hpp"
#include "analytics/schedule.hpp"

namespace flowgauge::cli {

// "key=value" strings -> map; errors name the option.
std::map<std::string, std::string> parse_pairs(const std::vector<std::string>& items, const std::string& option);
ScheduleParams parse_numbers(const std::vector<std::string>& items, const std::string& option);
void warn(const std::string& message);  // "flowgauge: warning: ..." on stderr
std::string command_line();             // as recorded in provenance

// Schedule options shared by every subcommand: --schedule NAME --schedule-param k=v ...
struct ScheduleArgs {
  std::string name = "vp-linear";
  std::vector<std::string> params;
  void add(CLI::App& app);
  std::unique_ptr<Schedule> make() const;
};

void add_eval(CLI::App& app);
void add_sample(CLI::App& app);
void add_run(CLI::App& app);
void add_merge(CLI::App& app);
void add_likelihood(CLI::App& app);
void add_report(CLI::App& app);
void add_claims(CLI::App& app);

// Thrown to end the program with a given status after the message has been printed.
struct ExitStatus {
  int status;
};

}  // namespace flowgauge::cli
