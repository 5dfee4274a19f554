// flowgauge report FILE.h5: plots and a markdown summary of one `flowgauge run` file, by
// experiments/report.py under Debian's /usr/bin/python3 (python3-h5py, -numpy, -matplotlib).
// Writes <FILE without .h5>/*.png and <FILE without .h5>.md; report.py prints a summary table.
// Exit status: 2 if FILE is missing or not a run file (no plan_hash attribute), 1 if report.py fails
// (its own status is in the message).
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "analytics/errors.hpp"
#include "experiments/cli.hpp"
#include "results/h5.hpp"

namespace flowgauge::cli {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

void check_run_file(const std::string& file) {
  auto f = h5::open_file(file);  // InputError: no such file / not HDF5
  if (h5::read_string_attr(f.get(), "plan_hash").empty())
    throw InputError(fmt::format("{}: not a flowgauge run file (no plan_hash attribute; write one with "
                                 "`flowgauge run EXPERIMENT.toml`)",
                                 file));
}

// Runs argv[0] with argv and returns its exit status (127 if it could not be started).
int spawn(const std::vector<std::string>& args) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "flowgauge: error: cannot run %s\n", argv[0]);
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error("waitpid failed");
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace

void add_report(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  auto* c = app.add_subcommand("report", "Plots (FILE/*.png) and a markdown summary (FILE.md) of a `flowgauge run` file");
  c->add_option("file", *file, "HDF5 file written by flowgauge run")->required();
  c->callback([file] {
    check_run_file(*file);
    const std::string script = std::string(FLOWGAUGE_SOURCE_DIR) + "/experiments/report.py";
    if (!std::filesystem::exists(script)) throw std::runtime_error(fmt::format("{}: missing (source tree moved?)", script));
    if (::access(kPython, X_OK) != 0)
      throw InputError(fmt::format("{} not found: install python3 python3-h5py python3-numpy python3-matplotlib "
                                   "(bash experiments/setup.sh does)",
                                   kPython));
    const int rc = spawn({kPython, script, *file});
    if (rc != 0) {
      fmt::print(stderr, "flowgauge: error: {} {} failed (exit status {}); it needs python3-h5py, python3-numpy and "
                         "python3-matplotlib\n", script, *file, rc);
      throw ExitStatus{1};
    }
  });
}

}  // namespace flowgauge::cli
