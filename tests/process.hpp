#pragma once
// Running the real flowgauge binary from tests: exit status and merged stdout + stderr.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace flowgauge::testing {

inline const std::string kBinary = std::string(FLOWGAUGE_BINARY_DIR) + "/flowgauge";

// The binary under ASan + UBSan (-O1) runs cells many times slower (Eigen's fixed-size kernels are not
// inlined); studies sized only to outlast a kill or a signal divide their particles by this there
// (tests/CMakeLists.txt defines FLOWGAUGE_SANITIZED).
#ifdef FLOWGAUGE_SANITIZED
inline constexpr int kSanitizerSlowdown = 8;
#else
inline constexpr int kSanitizerSlowdown = 1;
#endif

// `toml` with every "particles = N" divided by kSanitizerSlowdown.
inline std::string sanitizer_scaled(const std::string& toml) {
  const std::string key = "particles = ";
  std::string out;
  std::size_t i = 0;
  for (std::size_t k; (k = toml.find(key, i)) != std::string::npos;) {
    std::size_t e = k + key.size();
    while (e < toml.size() && std::isdigit(static_cast<unsigned char>(toml[e]))) ++e;
    out += toml.substr(i, k - i) + key + std::to_string(std::stol(toml.substr(k + key.size(), e - k - key.size())) / kSanitizerSlowdown);
    i = e;
  }
  return out + toml.substr(i);
}

struct Run {
  int status;  // exit status; -1 if the process was killed by a signal
  std::string output;
};

// Runs `cmd` through the shell with stderr merged into stdout.
inline Run sh(const std::string& cmd) {
  std::array<char, 4096> buf{};
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int rc = pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

// `flowgauge ARGS`; `env` (VAR=value ...) is prefixed to the command line.
inline Run run(const std::string& args, const std::string& env = "") { return sh(env + " " + kBinary + " " + args); }

// Starts argv (argv[0] looked up on PATH) in its own process group with stdout + stderr to `log`;
// returns its pid without waiting (for kill -9 tests).
inline pid_t spawn(const std::vector<std::string>& argv_in, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& a : argv_in) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// `flowgauge args...` with its output to `log`; returns its exit status (-1: killed by a signal) and
// its peak resident memory in kB (wait4's ru_maxrss).
inline std::pair<int, long> run_peak_rss(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv{kBinary};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = spawn(argv, log);
  int st = 0;
  rusage u{};
  ::wait4(pid, &st, 0, &u);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, u.ru_maxrss};
}

// Durable cell files a run has finished in `<output>.cells` (temporaries of cells in flight excluded).
inline std::size_t finished_cells(const std::string& cells_dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(cells_dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.rfind("cell_", 0) == 0 && e.path().extension() == ".h5" && name.find(".partial-") == std::string::npos) ++n;
  }
  return n;
}

inline std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) s.replace(pos, from.size(), to);
  return s;
}

}  // namespace flowgauge::testing
