// Blocked, threaded sampling (solvers/parallel.hpp): bitwise the same for every thread count, and
// the same as one plain sample() call per block; every registered solver clones to itself.
#include <gtest/gtest.h>

#include <iostream>

#include "analytics/errors.hpp"
#include "fixtures.hpp"
#include "solvers/brownian/brownian_tree.hpp"
#include "solvers/parallel.hpp"

namespace flowgauge {
namespace {

struct Case {
  std::string solver;
  SolverOptions options;
};

class Blocked : public ::testing::TestWithParam<Case> {};

TEST_P(Blocked, SameForEveryThreadCountAndEqualToPlainSamplePerBlock) {
  const auto gm = testing::random_gmm(3, 4, 7);
  const auto sch = make_schedule("vp-linear");
  const Grid grid = make_grid(*sch, {.kind = "logsnr", .steps = 12, .final_step = FinalStep::kDenoise});
  auto proto = make_solver(GetParam().solver, GetParam().options);
  if (proto->traits().stochastic) proto->set_noise(std::make_shared<BrownianTree>(3, 5, sch->t_lo(), sch->t_hi()));
  const Model model(gm, *sch);
  const TimePoint p0 = sch->at(grid.t.front());
  const MatrixXd X0 = gm.sample(p0.alpha, p0.sigma, 3, 1001);

  MatrixXd ref = X0;  // plain driver, one call per 128-column block (the last one short)
  long ref_nfe = 0;
  for (Eigen::Index j = 0; j < ref.cols(); j += 128) {
    auto s = proto->clone(j);
    Model m(gm, *sch);
    ref_nfe = sample(*s, m, grid, ref.middleCols(j, std::min<Eigen::Index>(128, ref.cols() - j))).nfe;
  }
  {  // one plain call on the whole batch: the same points up to GEMM blocking (rounding)
    MatrixXd whole = X0;
    auto s = proto->clone();
    Model m(gm, *sch);
    sample(*s, m, grid, whole);
    const double scale = whole.cwiseAbs().maxCoeff();
    EXPECT_LE((whole - ref).cwiseAbs().maxCoeff(), 1e-13 * scale);  // a few ulps per step over 12 steps
    std::cout << GetParam().solver << ": blocked vs whole batch max diff / max |x| = "
              << (whole - ref).cwiseAbs().maxCoeff() / scale << "\n";
  }
  for (int threads : {1, 2, 3}) {
    MatrixXd X = X0;
    const long nfe = sample_blocked(*proto, model, grid, X, {.threads = threads, .block = 128});
    EXPECT_EQ(nfe, ref_nfe) << "threads " << threads;
    // Bitwise: a block's arithmetic does not depend on which thread runs it.
    EXPECT_EQ((X - ref).cwiseAbs().maxCoeff(), 0.0) << GetParam().solver << ", threads " << threads;
  }
}

INSTANTIATE_TEST_SUITE_P(Solvers, Blocked,
                         ::testing::Values(Case{"heun", {}}, Case{"dpmpp_2m", {}}, Case{"lms", {}},
                                           Case{"ddpm", {}}, Case{"euler_maruyama", {{"eta", "0.5"}}},
                                           Case{"sde_dpmpp_2m", {}}),
                         [](const auto& info) { return info.param.solver; });

TEST(Blocked, EveryRegisteredSolverClonesToItself) {
  for (const auto& name : solver_names()) {
    auto s = make_solver(name);
    auto c = s->clone(5);
    EXPECT_EQ(c->traits().name, s->traits().name);
    EXPECT_EQ(c->describe(), s->describe());
  }
}

TEST(Blocked, ErrorsInABlockReachTheCaller) {
  const auto gm = testing::random_gmm(2, 2, 1);
  const auto sch = make_schedule("vp-linear");
  const Grid grid = make_grid(*sch, {.kind = "uniform", .steps = 4});
  auto proto = make_solver("ddpm");  // stochastic without a noise source: InputError from sample()
  MatrixXd X = MatrixXd::Zero(2, 300);
  EXPECT_THROW(sample_blocked(*proto, Model(gm, *sch), grid, X, {.threads = 2, .block = 64}), InputError);
}

// Model::finish and the RK driver take a packed (Map) fast path when the columns are adjacent
// (analytics/mixture.hpp is_packed); a strided view of the same numbers takes the plain Ref path.
// The two are the same arithmetic; only FMA contraction (-march=native) may differ, by rounding.
TEST(PackedViews, StridedAndPackedBatchesAgreeToRounding) {
  const auto gm = testing::random_gmm(2, 8, 3);
  const auto sch = make_schedule("edm");
  const Grid grid = make_grid(*sch, {.kind = "edm", .steps = 18, .final_step = FinalStep::kDenoise});
  const TimePoint p0 = sch->at(grid.t.front());
  const MatrixXd X0 = gm.sample(p0.alpha, p0.sigma, 3, 500);
  MatrixXd wide = MatrixXd::Zero(3, X0.cols());  // X0 in rows 0..1: outer stride 3, not packed
  wide.topRows(2) = X0;
  MatRef strided = wide.topRows(2);
  ASSERT_FALSE(is_packed(strided));
  ASSERT_TRUE(is_packed(MatrixXd(X0)));

  // sigma/alpha above 1e4 (direct posterior mean) and below (Tweedie): both x0 routes
  for (const TimePoint& t : {TimePoint{0, 1e-5, 1, 0, 0}, TimePoint{0, 1, 80, 0, 0}, TimePoint{0, 1, 0.3, 0, 0}}) {
    Model mp(gm, *sch), ms(gm, *sch);
    MatrixXd x0p(2, X0.cols()), epsp(2, X0.cols()), x0s = MatrixXd::Zero(3, X0.cols()), epss = x0s;
    mp.predict(X0, t, x0p, epsp);
    MatRef x0v = x0s.topRows(2), epsv = epss.topRows(2);
    ms.predict(strided, t, x0v, epsv);
    // a contracted multiply-add differs from mul + add by <= 1 ulp of the result
    EXPECT_LE((x0p - x0s.topRows(2)).cwiseAbs().maxCoeff(), 4e-16 * x0p.cwiseAbs().maxCoeff()) << "sigma " << t.sigma;
    EXPECT_LE((epsp - epss.topRows(2)).cwiseAbs().maxCoeff(), 4e-16 * epsp.cwiseAbs().maxCoeff()) << "sigma " << t.sigma;
  }
  for (const char* name : {"heun", "euler"}) {
    auto a = make_solver(name), b = make_solver(name);
    Model ma(gm, *sch), mb(gm, *sch);
    MatrixXd X = X0;
    sample(*a, ma, grid, X);
    wide.topRows(2) = X0;
    sample(*b, mb, grid, strided);
    const double scale = X.cwiseAbs().maxCoeff();
    EXPECT_LE((X - wide.topRows(2)).cwiseAbs().maxCoeff(), 1e-13 * scale) << name;  // a few ulps per step, 18 steps
    EXPECT_EQ(wide.row(2).cwiseAbs().maxCoeff(), 0.0) << name;  // the row outside the view is untouched
  }
}

}  // namespace
}  // namespace flowgauge
