// Multistep family: lms, ipndm, deis_tab, unipc (solvers/multistep/).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "analytics/gaussian_flow.hpp"
#include "solvers/coordinates.hpp"
#include "solvers/multistep/common.hpp"
#include "solvers/solver.hpp"
#include "tests/fixtures.hpp"

namespace flowgauge {
namespace {

using testing::single_gaussian;

MatrixXd start_points(const Schedule& s, int d, int n, unsigned seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> nd;
  MatrixXd X(d, n);
  for (int i = 0; i < X.size(); ++i) X.data()[i] = nd(g);
  const double t = s.t_hi();
  return std::hypot(s.alpha(t), s.sigma(t)) * X;
}

struct Problem {
  std::unique_ptr<Schedule> sch;
  GaussianMixture gm;
  MatrixXd X0, Xref;
  Problem(const std::string& schedule, int d = 3, int n = 6)
      : sch(make_schedule(schedule)), gm(single_gaussian(d, 7)) {
    X0 = start_points(*sch, d, n, 11);
    Xref = X0;
    GaussianFlow(gm).transport(Xref, *sch, sch->t_hi(), sch->t_lo());
  }
  double error(const std::string& solver, const SolverOptions& opt, const std::string& grid, int N, long* nfe = nullptr) {
    Model m(gm, *sch);
    auto s = make_solver(solver, opt);
    GridSpec gs;
    gs.kind = grid;
    gs.steps = N;
    const Grid g = make_grid(*sch, gs);
    MatrixXd X = X0;
    auto r = sample(*s, m, g, X);
    if (nfe) *nfe = r.nfe;
    return (X - Xref).cwiseAbs().maxCoeff();
  }
};

TEST(Multistep, DISABLED_ExploreLarge) {
  Problem P("vp-linear");
  for (auto [sv, ord] : std::vector<std::pair<std::string, std::string>>{{"lms", "4"}, {"lms", "3"}, {"deis_tab", "3"}}) {
    std::printf("%s %s:", sv.c_str(), ord.c_str());
    double prev = 0;
    for (int N : {256, 512, 1024, 2048, 4096, 8192}) {
      double e = P.error(sv, {{"order", ord}}, "edm", N);
      std::printf(" %8.2e", e);
      if (prev > 0) std::printf("(%5.2f)", std::log2(prev / e));
      prev = e;
    }
    std::printf("\n");
  }
}

TEST(Multistep, DISABLED_Explore) {
  for (std::string schn : {"vp-linear", "edm"}) {
    Problem P(schn);
    struct C { std::string s; SolverOptions o; };
    std::vector<C> cs = {{"lms", {{"order", "1"}}}, {"lms", {{"order", "2"}}}, {"lms", {{"order", "3"}}}, {"lms", {}},
                         {"ipndm", {}}, {"deis_tab", {{"order", "1"}}}, {"deis_tab", {{"order", "2"}}}, {"deis_tab", {}},
                         {"unipc", {{"order", "1"}}}, {"unipc", {}}, {"unipc", {{"order", "3"}}},
                         {"unipc", {{"corrector", "off"}}}, {"unipc", {{"order", "3"}, {"corrector", "off"}}},
                         {"unipc", {{"variant", "bh1"}}}, {"unipc", {{"order", "3"}, {"lower_order_final", "off"}}}};
    for (std::string grid : {"edm", "logsnr"}) {
      for (auto& c : cs) {
        std::string name = c.s;
        for (auto& [k, v] : c.o) name += "," + k + "=" + v;
        std::printf("%-10s %-6s %-40s", schn.c_str(), grid.c_str(), name.c_str());
        double prev = 0;
        for (int N : {8, 16, 32, 64, 128, 256, 512, 1024}) {
          double e = P.error(c.s, c.o, grid, N);
          std::printf(" %8.2e", e);
          if (prev > 0) std::printf("(%5.2f)", std::log2(prev / e));
          prev = e;
        }
        std::printf("\n");
      }
    }
  }
}

}  // namespace
}  // namespace flowgauge
