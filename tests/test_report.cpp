// `flowgauge report` end to end: a tiny experiment, then its plots and markdown; a missing file and
// an HDF5 file that is not a run file give exit status 2. Skipped without Debian's python3-h5py /
// python3-matplotlib (report.py runs under /usr/bin/python3).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "results/h5.hpp"
#include "tests/process.hpp"

namespace fs = std::filesystem;
using namespace flowgauge;

namespace {

using flowgauge::testing::Run;
using flowgauge::testing::run;

bool python_ready() {
  return std::system("/usr/bin/python3 -c 'import h5py, matplotlib, numpy' >/dev/null 2>&1") == 0;
}

// 2-D data (density + trajectory plots), two schedules, a first- and a second-order solver, every metric
// the report draws; small enough for a few seconds.
const char* kTiny = R"(name = "tiny"
particles = 64
steps = [4, 8, 16]
metrics = ["error", "distribution", "curvature"]
curvature_steps = 40

[data]
g = { preset = "gmm8-2d" }

[schedules]
vp = { name = "vp-linear" }
fm = { name = "fm-linear" }

[[grids]]
kind = "logsnr"

[[solvers]]
name = ["euler", "heun"]
)";

class Report : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    if (!python_ready()) GTEST_SKIP() << "/usr/bin/python3 cannot import h5py, matplotlib and numpy";
    dir = fs::temp_directory_path() / ("flowgauge_report_" + std::to_string(::getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
  }
  void TearDown() override {
    if (!dir.empty()) fs::remove_all(dir);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

TEST_F(Report, WritesPlotsAndMarkdownOfARun) {
  std::ofstream(dir / "tiny.toml") << kTiny;
  auto r = run("run --quiet --threads 1 " + path("tiny.toml") + " --output " + path("tiny.h5"));
  ASSERT_EQ(r.status, 0) << r.output;
  r = run("report " + path("tiny.h5"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("heun"), std::string::npos) << "summary table on stdout:\n" << r.output;

  ASSERT_TRUE(fs::exists(path("tiny.md")));
  EXPECT_GT(fs::file_size(path("tiny.md")), 0u);
  std::ifstream md(path("tiny.md"));
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("Fitted against declared order"), std::string::npos);
  for (const char* png : {"error_vs_nfe.png", "work_precision.png", "distribution.png", "curvature_g.png", "kappa_g.png",
                          "trajectories_g.png"}) {
    const fs::path p = dir / "tiny" / png;
    ASSERT_TRUE(fs::exists(p)) << p;
    EXPECT_GT(fs::file_size(p), 1000u) << p;
    EXPECT_NE(text.find(std::string("tiny/") + png), std::string::npos) << "markdown links " << png;
  }
}

TEST_F(Report, MissingFileIsBadInput) {
  const auto r = run("report " + path("nothing.h5"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("nothing.h5"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("nothing.md")));
}

TEST_F(Report, NonRunHdf5IsBadInput) {
  {
    h5::AtomicOutput o(path("points.h5"));
    h5::write_matrix(o.file(), "x", Eigen::MatrixXd::Zero(2, 3));
    o.commit();
  }
  const auto r = run("report " + path("points.h5"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("not a flowgauge run file"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("points.md")));
  EXPECT_FALSE(fs::exists(path("points")));
}

TEST_F(Report, TextFileIsBadInput) {
  std::ofstream(dir / "notes.h5") << "not hdf5\n";
  const auto r = run("report " + path("notes.h5"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("notes.h5"), std::string::npos) << r.output;
}

}  // namespace
