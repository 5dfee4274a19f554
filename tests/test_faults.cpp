// Faults, tried on purpose against the real binary (README "Interruption, resume and the lock"):
// kill -9 at random moments, 20 times in a row, then a resume identical to an uninterrupted run; a
// full disk (a file-size limit, and a small tmpfs when this machine lets us mount one); SIGINT and
// SIGTERM (finish the cells in flight, exit 130 / 143, print the command that resumes) and a second
// SIGINT (abandon them); a second run on the same output refused while the first holds its lock.
// With -DFLOWGAUGE_MPI=ON, also SIGINT to mpirun.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "experiments/config.hpp"
#include "results/h5.hpp"
#include "results/table.hpp"
#include "tests/process.hpp"
#include "tests/run_contents.hpp"

namespace fs = std::filesystem;
using namespace flowgauge;
using namespace flowgauge::testing;

namespace {

// 60 cheap cells (3-D data: no density lattice, so the main file starts small and grows ~3 kB a
// cell, while a cell file is ~19 kB).
const char* kMany = R"TOML(name = "many"
output = "{DIR}/m.h5"
particles = 300
steps = [4, 6, 8, 12, 16]
seeds = [0, 1, 2]

[data]
g = { preset = "gaussian", dim = 3 }

[schedules]
vp = { name = "vp-linear" }

[[grids]]
kind = "logsnr"

[[solvers]]
name = ["euler", "heun", "dpmpp_2m", "ddim"]
)TOML";

// 12 cells: a signal sent when the first is finished finds others in flight, and cells not started.
const char* kMedium = R"TOML(name = "medium"
output = "{DIR}/s.h5"
particles = 400
steps = [32, 64]
seeds = [0, 1]

[data]
g = { preset = "gmm8-2d" }

[schedules]
vp = { name = "vp-linear" }

[[grids]]
kind = "logsnr"

[[solvers]]
name = ["euler", "heun", "dpmpp_2m"]
)TOML";

// Cells of many seconds each: abandoned long before they could finish.
const char* kLong = R"TOML(name = "long"
output = "{DIR}/l.h5"
particles = 2000
steps = [400]
seeds = [0, 1, 2, 3]

[data]
g = { preset = "gmm8-2d" }

[schedules]
vp = { name = "vp-linear" }

[[grids]]
kind = "logsnr"

[[solvers]]
name = ["heun"]
)TOML";

class Faults : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir = fs::temp_directory_path() / ("flowgauge_faults_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override {
    for (const auto& m : mounts_) ::umount2(m.c_str(), MNT_DETACH);
    fs::remove_all(dir);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name) << replace_all(text, "{DIR}", dir.string());
    return path(name);
  }
  // Temporaries of writes in progress ("<file>.partial-<pid>") anywhere below dir.
  std::vector<std::string> partials() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.path().string().find(".partial-") != std::string::npos) out.push_back(e.path().string());
    return out;
  }
  // `flowgauge run FILE --output OUT ARGS` to the end; the uninterrupted reference of the tests.
  void reference(const std::string& file, const std::string& out, const std::string& args = "--threads 2") {
    const auto r = run("run " + file + " --output " + out + " --quiet " + args);
    ASSERT_EQ(r.status, 0) << r.output;
  }
  std::vector<std::string> mounts_;
};

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t spawn_run(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv{kBinary, "run"};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn(argv, log);
}

// Waits for `pid`; its exit status, or 128 + the signal that killed it (as a shell reports it).
int wait_status(pid_t pid) {
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Polls `ready` every 2 ms for at most `limit` (a guard against a hung test, not a timed assertion).
bool wait_until(const std::function<bool()>& ready, std::chrono::seconds limit = std::chrono::seconds(60)) {
  const auto t0 = std::chrono::steady_clock::now();
  while (!ready()) {
    if (std::chrono::steady_clock::now() - t0 > limit) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Ids of the finished cell files in `cells` (cell_<id>.h5, no temporaries), ascending.
std::vector<long long> shard_ids(const std::string& cells) {
  std::vector<long long> ids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(cells, ec)) {
    const auto name = e.path().filename().string();
    if (name.rfind("cell_", 0) == 0 && e.path().extension() == ".h5" && name.find(".partial-") == std::string::npos)
      ids.push_back(std::stoll(name.substr(5, 6)));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Every finished cell file in `cells` opens and holds exactly what the uninterrupted run's file of
// that cell holds (all datasets bitwise but wall_seconds, plan hash, cell key); returns their ids.
std::vector<long long> expect_valid_shards(const std::string& cells, const std::string& reference_cells) {
  const auto ids = shard_ids(cells);
  for (long long id : ids) {
    const auto name = fmt::format("/cell_{:06d}.h5", id);
    try {
      const Contents a = contents(cells + name), b = contents(reference_cells + name);
      EXPECT_EQ(a.attrs, b.attrs) << cells + name;
      EXPECT_EQ(a.data, b.data) << cells + name;
      EXPECT_EQ(a.text, b.text) << cells + name;
      EXPECT_FALSE(a.data.empty()) << cells + name;
    } catch (const std::exception& err) {
      ADD_FAILURE() << cells + name << ": " << err.what();
    }
  }
  return ids;
}

// The main file opens; its cells are finished cell files (a subset of `shards`, in order, once each),
// it says how many, and it is "partial" unless it holds them all.
void expect_valid_main(const std::string& file, const std::vector<long long>& shards, std::size_t n) {
  try {
    auto f = h5::open_file(file);
    const auto ids = cell_ids(file);
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()) && std::adjacent_find(ids.begin(), ids.end()) == ids.end()) << file;
    EXPECT_TRUE(std::includes(shards.begin(), shards.end(), ids.begin(), ids.end())) << file << " holds a cell with no cell file";
    EXPECT_EQ(h5::read_string_attr(f.get(), "status"), ids.size() == n ? "complete" : "partial") << file;
    EXPECT_EQ(attr_text(f.get(), "cells_done"), std::to_string(ids.size())) << file;
  } catch (const std::exception& err) {
    ADD_FAILURE() << file << ": " << err.what();
  }
}

// The whole file equal to the uninterrupted run's (everything but wall_seconds and where/when).
void expect_identical(const std::string& a, const std::string& b) {
  const Contents x = contents(a), y = contents(b);
  EXPECT_EQ(x.attrs, y.attrs);
  EXPECT_EQ(x.text, y.text);
  EXPECT_FALSE(x.data.empty());
  for (const auto& [k, v] : y.data) EXPECT_TRUE(x.data.count(k) && x.data.at(k) == v) << k << " differs";
  for (const auto& [k, v] : x.data) EXPECT_TRUE(y.data.count(k)) << k << " is extra";
}

// ---- 1. kill -9, 20 times in a row ----

TEST_F(Faults, KillNineTwentyTimesThenResumeIsIdenticalToAnUninterruptedRun) {
  const auto file = write("many.toml", sanitizer_scaled(kMany));
  const std::size_t n = load_experiment(file).cells.size();
  ASSERT_EQ(n, 60u);
  // --rebuild-seconds 0: the main file is rebuilt after every cell, so some kills land in a rebuild
  const auto t0 = std::chrono::steady_clock::now();
  reference(file, path("u.h5"), "--threads 2 --rebuild-seconds 0");
  const double whole = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string out = path("k.h5"), cells = out + ".cells";
  // Delays from a fixed seed, as fractions of an uninterrupted run's time on this machine (its
  // startup included): the same 20 moments of the sweep on a fast or a loaded machine. Mean 0.08
  // of a run each, 1.6 runs' worth in all, minus a restart each time: the sweep is still going when
  // they land. The printed tally says where they landed this time.
  std::mt19937_64 rng(20240610);
  std::uniform_real_distribution<double> fraction(0.02, 0.14);
  fmt::print("uninterrupted run: {:.2f} s\n", whole);
  int mid_cell = 0, mid_cell_write = 0, mid_rebuild = 0, after_end = 0;
  for (int k = 0; k < 20; ++k) {
    const int delay = static_cast<int>(std::lround(1000 * whole * fraction(rng)));
    const std::size_t before = shard_ids(cells).size();
    // --rebuild-seconds 0: the main file is rebuilt after every cell, so some kills land in a rebuild
    const pid_t pid = spawn_run({file, "--output", out, "--threads", "2", "--rebuild-seconds", "0", "--quiet"}, path("k.log"));
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    ::kill(pid, SIGKILL);
    const int status = wait_status(pid);
    ASSERT_TRUE(status == 128 + SIGKILL || status == 0) << "kill " << k << ": exit status " << status << "\n" << slurp(path("k.log"));
    // what the kill interrupted: the temporaries the dead process left say it
    const std::string tag = ".partial-" + std::to_string(pid);
    bool rebuild = false, cell_write = false;
    for (const auto& p : partials()) {
      if (p.find(tag) == std::string::npos) continue;
      (p.find(cells) == 0 ? cell_write : rebuild) = true;
    }
    const char* where = status == 0            ? "after the run ended"
                        : rebuild              ? "mid-rebuild of the main file"
                        : cell_write           ? "mid-write of a cell file"
                        : before == n          ? "every cell done (starting, or rewriting the main file)"
                                               : "mid-cell (computing, or starting)";
    (status == 0 || before == n ? after_end : rebuild ? mid_rebuild : cell_write ? mid_cell_write : mid_cell)++;
    const auto shards = expect_valid_shards(cells, path("u.h5.cells"));
    fmt::print("kill {:2d}: after {:4d} ms, {}: {} -> {} of {} cells on disk\n", k + 1, delay, where, before, shards.size(), n);
    if (fs::exists(out)) expect_valid_main(out, shards, n);
    if (::testing::Test::HasFailure()) return;
  }
  fmt::print("20 kills: {} mid-cell, {} mid-write of a cell file, {} mid-rebuild of the main file, {} with every cell done\n", mid_cell,
             mid_cell_write, mid_rebuild, after_end);
  EXPECT_GT(mid_cell + mid_cell_write + mid_rebuild, 0) << "no kill landed in a running sweep: make kMany slower";
  const auto r = run("run " + file + " --output " + out + " --threads 2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(cell_ids(out), iota(n));  // every cell exactly once
  expect_identical(out, path("u.h5"));
  EXPECT_EQ(shard_ids(cells), iota(n));
  EXPECT_TRUE(partials().empty()) << partials().front();
  EXPECT_FALSE(fs::exists(out + ".lock"));
}

// ---- 2. a full disk ----

// `flowgauge run ARGS` with RLIMIT_FSIZE = limit bytes (every file it writes is capped) and SIGXFSZ
// left at its default action, which would kill it: flowgauge ignores it itself during a run, so a
// write past the limit fails with EFBIG ("File too large") instead.
Run run_with_file_size_limit(const std::vector<std::string>& args, rlim_t limit, const std::string& log) {
  std::vector<std::string> argv_s{kBinary, "run"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    const rlimit rl{limit, limit};
    setrlimit(RLIMIT_FSIZE, &rl);
    signal(SIGXFSZ, SIG_DFL);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const int status = wait_status(pid);
  return {status, slurp(log)};
}

// After a write failure: a clear error, the finished cells intact, no half-written file; then, with
// space again, a resume to the uninterrupted result.
void expect_clean_write_failure(const Run& r, const std::string& out, const std::string& reference, const std::string& cause,
                                std::size_t n) {
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("flowgauge: error: " + out), std::string::npos) << "names the file it could not write:\n" << r.output;
  EXPECT_NE(r.output.find(cause), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resume with:"), std::string::npos) << r.output;
  const auto shards = expect_valid_shards(out + ".cells", reference + ".cells");
  EXPECT_GE(shards.size(), 1u) << "no cell finished before the disk was full: raise the limit";
  EXPECT_LT(shards.size(), n) << "every cell finished: lower the limit";
  EXPECT_NE(r.output.find(fmt::format("{} of {} cells are finished and kept", shards.size(), n)), std::string::npos) << r.output;
  if (fs::exists(out)) expect_valid_main(out, shards, n);
}

TEST_F(Faults, FileSizeLimitIsAClearErrorThatKeepsFinishedCellsAndResumes) {
  const auto file = write("many.toml", sanitizer_scaled(kMany));
  const std::size_t n = load_experiment(file).cells.size();
  reference(file, path("u.h5"));
  const std::string out = path("f.h5");
  // 64 kB: a cell file (~19 kB) fits, the main file does not once it holds ~15 cells
  const auto r = run_with_file_size_limit({file, "--output", out, "--threads", "2", "--rebuild-seconds", "0"}, 64 << 10, path("f.log"));
  expect_clean_write_failure(r, out, path("u.h5"), "File too large", n);
  EXPECT_TRUE(partials().empty()) << partials().front();
  EXPECT_FALSE(fs::exists(out + ".lock"));
  const auto again = run("run " + file + " --output " + out + " --threads 2 --quiet");
  ASSERT_EQ(again.status, 0) << again.output;
  expect_identical(out, path("u.h5"));
}

// Reference paths spilled to disk (reference.spill_mb = 0) hit the limit first: the same clear error,
// naming the cells directory, and a resume without the limit gives the uninterrupted result.
TEST_F(Faults, FileSizeLimitOnASpilledReferencePathIsAClearError) {
  const std::string body = replace_all(kMany, "seeds = [0, 1, 2]\n", "seeds = [0, 1, 2]\nreference = { spill_mb = 0 }\n") +
                           "\n[[only]]\nsteps = 16\n";  // not sanitizer-scaled: 300 x 3 x 17 doubles = 122 kB a path
  const auto file = write("spill.toml", body);
  reference(file, path("u.h5"));
  const std::string out = path("f.h5");
  const auto r = run_with_file_size_limit({file, "--output", out, "--threads", "2"}, 64 << 10, path("f.log"));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("flowgauge: error: " + out + ".cells: cannot write a reference-path file: File too large"),
            std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resume with:"), std::string::npos) << r.output;
  EXPECT_TRUE(partials().empty()) << partials().front();
  for (const auto& ent : fs::directory_iterator(out + ".cells"))  // the spill files are unlinked
    EXPECT_EQ(ent.path().filename().string().rfind("cell_", 0), 0u) << ent.path();
  const auto again = run("run " + file + " --output " + out + " --threads 2 --quiet");
  ASSERT_EQ(again.status, 0) << again.output;
  expect_identical(out, path("u.h5"));
}

TEST_F(Faults, FullTmpfsIsAClearErrorThatKeepsFinishedCellsAndResumes) {
  const auto file = write("many.toml", sanitizer_scaled(kMany));
  const std::size_t n = load_experiment(file).cells.size();
  const std::string disk = path("disk");
  fs::create_directories(disk);
  if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=256k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << "; needs root or CAP_SYS_ADMIN): the file-size "
                 << "limit test covers a full disk";
  mounts_.push_back(disk);
  reference(file, path("u.h5"));
  const std::string out = disk + "/t.h5";
  const auto r = run("run " + file + " --output " + out + " --threads 2");
  expect_clean_write_failure(r, out, path("u.h5"), "No space left on device", n);
  EXPECT_TRUE(partials().empty()) << partials().front();
  EXPECT_FALSE(fs::exists(out + ".lock"));
  // free space: a bigger disk under the same files
  ASSERT_EQ(::mount("tmpfs", disk.c_str(), "tmpfs", MS_REMOUNT, "size=16m"), 0) << std::strerror(errno);
  const auto again = run("run " + file + " --output " + out + " --threads 2 --quiet");
  ASSERT_EQ(again.status, 0) << again.output;
  expect_identical(out, path("u.h5"));
}

// ---- 3. SIGINT, SIGTERM ----

// "resume with:\n  <command>" -> <command>
std::string resume_command(const std::string& log) {
  const std::string key = "resume with:\n  ";
  const auto k = log.rfind(key);
  if (k == std::string::npos) return "";
  return log.substr(k + key.size(), log.find('\n', k + key.size()) - k - key.size());
}

class Signals : public Faults, public ::testing::WithParamInterface<int> {};

TEST_P(Signals, FinishCellsInFlightCloseTheFileAndPrintHowToResume) {
  const int sig = GetParam();
  const auto file = write("s.toml", sanitizer_scaled(kMedium));
  const std::size_t n = load_experiment(file).cells.size();
  const std::string out = path("s.h5"), cells = out + ".cells";
  const pid_t pid = spawn_run({file, "--threads", "2"}, path("s.log"));
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(wait_until([&] { return !shard_ids(cells).empty(); })) << slurp(path("s.log"));
  const std::size_t before = shard_ids(cells).size();
  ::kill(pid, sig);
  EXPECT_EQ(wait_status(pid), 128 + sig);  // 130 for SIGINT, 143 for SIGTERM: a shell sees which signal stopped it
  const std::string log = slurp(path("s.log"));
  const std::string name = sig == SIGINT ? "SIGINT" : "SIGTERM";
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      log, m, std::regex(name + ": (\\d+) of \\d+ cells finished; starting no new cell, finishing the (\\d+) in flight")))
      << log;
  // A cell's file appears just before the cell is counted finished, so `before` may include a cell
  // still in flight: compare with the run's own counts at the signal.
  const std::size_t finished = std::stoul(m[1]), in_flight = std::stoul(m[2]);
  EXPECT_GE(finished + in_flight, before) << log;
  EXPECT_GE(in_flight, 1u) << "the signal found no cell in flight:\n" << log;
  ASSERT_TRUE(std::regex_search(log, m, std::regex("stopped: \\d+ cells \\((\\d+) computed"))) << log;
  const auto shards = expect_valid_shards(cells, cells);  // (themselves: they open, hold a row and arrays)
  EXPECT_EQ(shards.size(), std::stoul(m[1])) << "every computed cell has its file:\n" << log;
  // the cells in flight were finished, not dropped, and no cell started after the signal
  EXPECT_EQ(shards.size(), finished + in_flight) << log;
  ASSERT_LT(shards.size(), n) << "every cell finished before the signal: make kMedium slower";
  // the main file holds exactly the finished cells, and says the run is partial
  EXPECT_EQ(cell_ids(out), shards);
  expect_valid_main(out, shards, n);
  EXPECT_NE(log.find(fmt::format("stopped by {}: {} of {} cells are finished and kept in {}/ (and in {})", name, shards.size(),
                                 n, cells, out)),
            std::string::npos)
      << log;
  EXPECT_TRUE(partials().empty()) << partials().front();
  EXPECT_FALSE(fs::exists(out + ".lock"));
  // the printed command resumes, to the uninterrupted result
  const std::string cmd = resume_command(log);
  EXPECT_EQ(cmd, fmt::format("{} run {} --threads 2", kBinary, file));
  const auto r = sh(cmd + " --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(fmt::format("{} resumed", shards.size())), std::string::npos) << r.output;
  reference(file, path("u.h5"));
  expect_identical(out, path("u.h5"));
}

INSTANTIATE_TEST_SUITE_P(Faults, Signals, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& info) { return std::string(info.param == SIGINT ? "SIGINT" : "SIGTERM"); });

TEST_F(Faults, SecondSigintAbandonsCellsInFlightAndLeavesNothingHalfWritten) {
  const auto file = write("l.toml", sanitizer_scaled(kLong));
  const std::size_t n = load_experiment(file).cells.size();
  const std::string out = path("l.h5"), cells = out + ".cells";
  // The main file is written just before the first cells start (the handlers are in place by then).
  // A SIGINT that comes before the workers have taken a cell stops the run at once, with no cell in
  // flight: then start again and wait longer.
  pid_t pid = -1;
  for (int wait_ms = 20;; wait_ms *= 4) {
    ASSERT_LT(wait_ms, 20000) << slurp(path("l.log"));
    pid = spawn_run({file, "--threads", "2"}, path("l.log"));
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(wait_until([&] { return fs::exists(out); })) << slurp(path("l.log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    ::kill(pid, SIGINT);
    ASSERT_TRUE(wait_until([&] {
      const auto log = slurp(path("l.log"));
      return log.find("starting no new cell") != std::string::npos || log.find("stopped by SIGINT") != std::string::npos;
    })) << slurp(path("l.log"));
    if (slurp(path("l.log")).find("starting no new cell") != std::string::npos) break;
    EXPECT_EQ(wait_status(pid), 130);
    fs::remove(out);
  }
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_status(pid), 130);
  const std::string log = slurp(path("l.log"));
  EXPECT_NE(log.find("SIGINT again: abandoned the cells in flight"), std::string::npos) << log;
  const auto shards = shard_ids(cells);
  ASSERT_LT(shards.size(), n) << "every cell finished before the second SIGINT: make kLong slower";
  EXPECT_EQ(cell_ids(out), shards);
  expect_valid_main(out, shards, n);
  EXPECT_NE(resume_command(log), "") << log;
  EXPECT_TRUE(partials().empty()) << partials().front();
  EXPECT_FALSE(fs::exists(out + ".lock"));
}

// ---- 4. one run per output ----

TEST_F(Faults, ASecondRunOnTheSameOutputIsRefusedAndAKilledRunsLockDoesNotBlock) {
  const auto file = write("many.toml", sanitizer_scaled(kMany));  // seconds on one thread: still running when the second starts
  const std::string out = path("m.h5"), lock = out + ".lock";
  const pid_t pid = spawn_run({file, "--threads", "1", "--quiet"}, path("a.log"));
  ASSERT_GT(pid, 0);
  const std::string holder = fmt::format("pid {} ", pid);
  ASSERT_TRUE(wait_until([&] { return slurp(lock).rfind(holder, 0) == 0; })) << slurp(path("a.log"));
  auto r = run("run " + file + " --quiet");
  EXPECT_EQ(r.status, 2) << r.output;
  ASSERT_EQ(::waitpid(pid, nullptr, WNOHANG), 0) << "the first run ended before the second started: make kMany slower";
  EXPECT_NE(r.output.find(out + ": another flowgauge run (" + holder), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--output"), std::string::npos) << "how to proceed:\n" << r.output;
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_status(pid), 128 + SIGKILL);
  // the dead run's lock file is still there, but the kernel released its lock
  EXPECT_EQ(slurp(lock).rfind(holder, 0), 0u);
  r = run("run " + file + " --threads 2 --quiet");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(fs::exists(lock));
  EXPECT_EQ(cell_ids(out), iota(load_experiment(file).cells.size()));
}

#ifdef FLOWGAUGE_TEST_MPI
// ---- 5. MPI ----

// Open MPI 4's mpirun answers SIGINT by sending every rank SIGTERM odls_base_sigkill_timeout
// seconds later (1 by default) and SIGKILL as long again after that: cells in flight may or may not
// finish in that second. Sent to rank 0 alone, SIGTERM stops the run gently whatever the cells'
// length: rank 0 hands out no more cells, every rank finishes its cells in flight, rank 0 rewrites
// the main file, every rank ends normally. Its pid is in <output>.lock (rank 0 holds the lock).
TEST_F(Faults, MpiSigintToMpirunAndSigtermToRankZeroStopCleanlyAndTheRerunCompletes) {
  // kMedium with 4 seeds and 4x the particles: 24 cells, many seconds on two ranks, so still running
  // two seconds after the first cell (400 particles finished every cell first once the kernels got faster)
  const auto file = write("s.toml", sanitizer_scaled(replace_all(
                                        replace_all(kMedium, "seeds = [0, 1]", "seeds = [0, 1, 2, 3]"), "particles = 400", "particles = 1600")));
  const std::size_t n = load_experiment(file).cells.size();
  const std::string out = path("s.h5"), cells = out + ".cells";
  std::vector<std::string> argv{FLOWGAUGE_MPIEXEC, "--oversubscribe", "-np", "2"};
  if (::getuid() == 0) argv.insert(argv.begin() + 1, "--allow-run-as-root");
  std::string mpirun;
  for (const auto& a : argv) mpirun += a + " ";
  for (const auto& a : {kBinary, std::string("run"), file, std::string("--threads"), std::string("1")}) argv.push_back(a);

  // 1. SIGINT to mpirun: the job ends, nothing finished is lost, the files open
  pid_t launcher = spawn(argv, path("mpi1.log"));
  ASSERT_GT(launcher, 0);
  ASSERT_TRUE(wait_until([&] { return !shard_ids(cells).empty(); })) << slurp(path("mpi1.log"));
  ::kill(launcher, SIGINT);
  EXPECT_NE(wait_status(launcher), 0) << slurp(path("mpi1.log"));
  reference(file, path("u.h5"));
  auto shards = expect_valid_shards(cells, path("u.h5.cells"));
  ASSERT_LT(shards.size(), n) << "every cell finished before the signal: make the study slower\n" << slurp(path("mpi1.log"));
  expect_valid_main(out, shards, n);
  const std::size_t after_sigint = shards.size();
  fmt::print("SIGINT to mpirun: {} of {} cells kept; the ranks {}\n", after_sigint, n,
             slurp(path("mpi1.log")).find("stopped by SIGTERM") != std::string::npos ? "stopped gently (SIGTERM)"
                                                                                     : "were killed (SIGKILL)");

  // 2. SIGTERM to rank 0: every rank finishes its cells in flight; the main file holds every finished cell
  launcher = spawn(argv, path("mpi2.log"));
  ASSERT_GT(launcher, 0);
  ASSERT_TRUE(wait_until([&] { return shard_ids(cells).size() > after_sigint; })) << slurp(path("mpi2.log"));
  const std::string holder = slurp(out + ".lock");  // "pid <rank 0> on <host> since <time>"
  ASSERT_EQ(holder.rfind("pid ", 0), 0u) << holder;
  const pid_t rank0 = static_cast<pid_t>(std::stol(holder.substr(4)));
  ::kill(rank0, SIGTERM);
  EXPECT_NE(wait_status(launcher), 0);
  const std::string log = slurp(path("mpi2.log"));
  EXPECT_NE(log.find("SIGTERM: handing out no new cell"), std::string::npos) << log;
  shards = expect_valid_shards(cells, path("u.h5.cells"));
  ASSERT_LT(shards.size(), n) << "every cell finished before the signal: make the study slower\n" << log;
  EXPECT_EQ(cell_ids(out), shards) << log;
  expect_valid_main(out, shards, n);
  EXPECT_NE(log.find(fmt::format("stopped by SIGTERM: {} of {} cells are finished", shards.size(), n)), std::string::npos) << log;
  const std::string cmd = resume_command(log);
  EXPECT_EQ(cmd, fmt::format("mpirun -np 2 {} run {} --threads 1", kBinary, file)) << log;
  EXPECT_TRUE(partials().empty()) << partials().front();
  EXPECT_FALSE(fs::exists(out + ".lock"));

  // 3. the rerun (the printed command, with this machine's mpirun options) completes, identical
  const auto r = sh(mpirun + kBinary + " run " + file + " --threads 1 --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(fmt::format("{} resumed", shards.size())), std::string::npos) << r.output;
  expect_identical(out, path("u.h5"));
  EXPECT_EQ(shard_ids(cells), iota(n));
}
#endif

}  // namespace
