// The flowgauge executable end to end: outputs against closed forms, h5py interoperability,
// and bad input (exit status 2, a message naming file and key, no output file).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
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

class Cli : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');  // parameterized names contain '/'
    dir = fs::temp_directory_path() / ("flowgauge_cli_" + std::to_string(::getpid()) + "_" + name);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(dir / name) << text; }
  void points(const std::string& name, const Eigen::MatrixXd& X) const {
    h5::AtomicOutput o(path(name));
    h5::write_matrix(o.file(), "x", X);
    o.commit();
  }
};

// Single isotropic Gaussian N(mu, s I): p_t = N(alpha mu, (alpha^2 s + sigma^2) I).
const char* kGauss = "dim = 2\n[[component]]\nweight = 1.0\nmean = [1.0, -2.0]\ncov = 0.5\n";

TEST_F(Cli, EvalMatchesClosedFormAndKeepsOrientation) {
  write("g.toml", kGauss);
  Eigen::MatrixXd X(2, 3);
  X << 0.1, 2.0, -1.0, 0.3, -4.0, 5.0;  // three points (columns)
  points("p.h5", X);
  auto r = run("eval --mixture " + path("g.toml") + " --schedule edm --t 0.7 --input " + path("p.h5") + " --output " +
               path("o.h5"));
  ASSERT_EQ(r.status, 0) << r.output;
  auto f = h5::open_file(path("o.h5"));
  const Eigen::MatrixXd score = h5::read_matrix(f.get(), "score", "o.h5");
  const Eigen::VectorXd logp = h5::read_vector(f.get(), "logp", "o.h5");
  const Eigen::MatrixXd x0 = h5::read_matrix(f.get(), "denoiser", "o.h5");
  const Eigen::VectorXd div = h5::read_vector(f.get(), "divergence", "o.h5");
  const double c = 0.5 + 0.7 * 0.7;  // edm: alpha = 1, sigma = t
  Eigen::Vector2d mu(1.0, -2.0);
  for (int j = 0; j < 3; ++j) {
    const Eigen::Vector2d e = X.col(j) - mu;
    // 1e-13: a few roundings of O(1..10) numbers
    EXPECT_NEAR((score.col(j) + e / c).norm(), 0.0, 1e-13);
    EXPECT_NEAR(logp(j), -std::log(2 * M_PI * c) - 0.5 * e.squaredNorm() / c, 1e-13);
    // Tweedie for a Gaussian: x0 = mu + s/c (x - mu)
    EXPECT_NEAR((x0.col(j) - (mu + 0.5 / c * e)).norm(), 0.0, 1e-13);
    // edm: u = -sigma s... div u = 0.5 sigma^2 lambda_dot tr J = 0.5 t^2 (-2/t)(-2/c) = 2t/c
    EXPECT_NEAR(div(j), 2 * 0.7 / c, 1e-13);
  }
}

TEST_F(Cli, ReadsWhatH5pyWritesAndH5pyReadsOurs) {
  if (std::system("/usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null") != 0) GTEST_SKIP() << "python3-h5py missing";
  write("g.toml", kGauss);
  const std::string py = "/usr/bin/python3 -c \"import h5py, numpy as np; h5py.File('" + path("p.h5") +
                         "','w')['pts'] = np.array([[0.1, 0.3], [2.0, -4.0], [-1.0, 5.0], [7.0, 7.0]])\"";
  ASSERT_EQ(std::system(py.c_str()), 0);
  auto r = run("eval --mixture " + path("g.toml") + " --schedule edm --t 0.7 --input " + path("p.h5") +
               " --dataset pts --quantities score --output " + path("o.h5"));
  ASSERT_EQ(r.status, 0) << r.output;
  // h5py sees (N, d) = (4, 2); the score of point (7, 7) is -((7,7) - mu)/c
  const std::string check = "/usr/bin/python3 -c \"import h5py, numpy as np; s = h5py.File('" + path("o.h5") +
                            "','r')['score'][()]; c = 0.5 + 0.49; assert s.shape == (4, 2), s.shape; "
                            "assert np.allclose(s[3], -(np.array([7., 7.]) - np.array([1., -2.]))/c, rtol=1e-13, atol=0)\"";
  EXPECT_EQ(std::system(check.c_str()), 0);
}

TEST_F(Cli, SampleWritesPointsAndCountsEvaluations) {
  write("g.toml", kGauss);
  auto r = run("sample --mixture " + path("g.toml") + " --schedule edm --solver heun --grid edm --steps 18 "
               "--final-step denoise --particles 100 --seed 3 --trajectory --output " + path("s.h5"));
  ASSERT_EQ(r.status, 0) << r.output;
  auto f = h5::open_file(path("s.h5"));
  EXPECT_EQ(h5::read_matrix(f.get(), "x", "s.h5").cols(), 100);
  // EDM Algorithm 2: 18 steps, last one Euler to sigma = 0 -> 2 * 18 - 1 = 35 evaluations
  EXPECT_NE(r.output.find("NFE = 35"), std::string::npos) << r.output;
}

TEST_F(Cli, SampleThreadsGiveTheSamePoints) {
  write("g.toml", kGauss);
  for (const char* threads : {"1", "2"}) {  // 5000 particles = two 4096-column blocks
    auto r = run("sample --mixture " + path("g.toml") + " --schedule vp-linear --solver ddpm --grid logsnr --steps 10 "
                 "--particles 5000 --seed 4 --threads " + threads + " --output " + path(std::string("t") + threads + ".h5"));
    ASSERT_EQ(r.status, 0) << r.output;
  }
  auto f1 = h5::open_file(path("t1.h5")), f2 = h5::open_file(path("t2.h5"));
  const Eigen::MatrixXd x1 = h5::read_matrix(f1.get(), "x", "t1.h5"), x2 = h5::read_matrix(f2.get(), "x", "t2.h5");
  EXPECT_EQ((x1 - x2).cwiseAbs().maxCoeff(), 0.0);  // bitwise: blocks are fixed, not per thread
}

TEST_F(Cli, SampleReferenceMatchesTheExactFlowMap) {
  // N(mu, s I) under edm (alpha = 1): x(sigma) = mu + sqrt((s + sigma^2) / (s + sigma0^2)) (x(sigma0) - mu).
  write("g.toml", kGauss);
  auto r = run("sample --mixture " + path("g.toml") + " --schedule edm --solver reference --option method=rkf78 "
               "--option rtol=1e-11 --option atol=1e-11 --grid edm --steps 4 --particles 50 --seed 1 --output " +
               path("r.h5"));
  ASSERT_EQ(r.status, 0) << r.output;
  auto f = h5::open_file(path("r.h5"));
  const Eigen::MatrixXd x = h5::read_matrix(f.get(), "x", "r.h5"), x0 = h5::read_matrix(f.get(), "x_start", "r.h5");
  const Eigen::Vector2d mu(1.0, -2.0);
  const double s = 0.5, c = std::sqrt((s + 0.002 * 0.002) / (s + 80.0 * 80.0));
  const Eigen::MatrixXd exact = (c * (x0.colwise() - mu)).colwise() + mu;
  EXPECT_LE((x - exact).cwiseAbs().maxCoeff(), 1e-9);  // global error ~1-10x tol (reference.hpp) on |x| <~ 3
  EXPECT_EQ(run("sample --mixture " + path("g.toml") + " --solver reference --option rtol=-1 --output " + path("b.h5")).status, 2);
}

struct BadCase {
  const char* name;
  const char* toml;
  const char* args;  // extra args; {IN} is replaced by a valid points file
  const char* expect;  // substring of the message
};

class CliBadInput : public Cli, public ::testing::WithParamInterface<BadCase> {};

TEST_P(CliBadInput, ExitTwoNamesTheProblemAndWritesNothing) {
  const auto& c = GetParam();
  write("m.toml", c.toml);
  points("p.h5", Eigen::MatrixXd::Ones(2, 4));
  std::string args = c.args;
  for (auto pos = args.find("{DIR}"); pos != std::string::npos; pos = args.find("{DIR}")) args.replace(pos, 5, dir.string());
  if (args.find("--output") == std::string::npos) args += " --output " + path("o.h5");
  auto r = run("eval --mixture " + path("m.toml") + " --input " + path("p.h5") + " " + args);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(c.expect), std::string::npos) << "message was: " << r.output;
  EXPECT_FALSE(fs::exists(path("o.h5")));
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().string().find("partial"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Classes, CliBadInput,
    ::testing::Values(
        BadCase{"syntax", "dim = 2\n[[component]\n", "", "m.toml:2:"},
        BadCase{"missing_mean", "[[component]]\nweight = 1.0\ncov = 1.0\n", "", "component[0].mean: missing"},
        BadCase{"unknown_key", "[[component]]\nmean = [0.0, 0.0]\ncovv = 1.0\n", "", "did you mean 'cov'"},
        BadCase{"wrong_type", "[[component]]\nmean = [0.0, \"a\"]\ncov = 1.0\n", "", "component[0].mean[1]"},
        BadCase{"indefinite", "[[component]]\nmean = [0.0, 0.0]\ncov = [[1.0, 2.0], [2.0, 1.0]]\n", "",
                "m.toml:3:7: component[0].cov: is not positive semidefinite"},
        BadCase{"asymmetric", "[[component]]\nmean = [0.0, 0.0]\ncov = [[1.0, 0.5], [0.0, 1.0]]\n", "", "not symmetric"},
        BadCase{"negative_weight", "[[component]]\nweight = -1.0\nmean = [0.0, 0.0]\ncov = 1.0\n", "", "component[0].weight"},
        BadCase{"dimension", "[[component]]\nmean = [0.0, 0.0, 0.0]\ncov = 1.0\n", "", "has dimension 3"},
        BadCase{"missing_dataset", "[[component]]\nmean = [0.0, 0.0]\ncov = 1.0\n", "--dataset nope", "no dataset 'nope'"},
        BadCase{"unknown_schedule", "[[component]]\nmean = [0.0, 0.0]\ncov = 1.0\n", "--schedule vp-linaer",
                "did you mean 'vp-linear'"},
        BadCase{"bad_schedule_param", "[[component]]\nmean = [0.0, 0.0]\ncov = 1.0\n", "--schedule-param betamax=3",
                "unknown parameter 'betamax'"},
        BadCase{"time_outside", "[[component]]\nmean = [0.0, 0.0]\ncov = 1.0\n", "--t 2", "outside the domain"},
        BadCase{"unwritable_output", "[[component]]\nmean = [0.0, 0.0]\ncov = 1.0\n", "--output {DIR}/no/such/dir/o.h5",
                "cannot create output file"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(Cli, MissingInputFileIsNamed) {
  write("g.toml", kGauss);
  auto r = run("eval --mixture " + path("g.toml") + " --input " + path("nope.h5") + " --output " + path("o.h5"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("nope.h5: no such file"), std::string::npos) << r.output;
}

TEST_F(Cli, TruncatedInputIsRefused) {
  write("g.toml", kGauss);
  points("p.h5", Eigen::MatrixXd::Ones(2, 5000));
  fs::resize_file(path("p.h5"), fs::file_size(path("p.h5")) / 2);
  auto r = run("eval --mixture " + path("g.toml") + " --input " + path("p.h5") + " --output " + path("o.h5"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_FALSE(fs::exists(path("o.h5")));
}

}  // namespace
