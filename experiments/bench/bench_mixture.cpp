// Batched mixture evaluation against the machine's DGEMM throughput, measured in the same run.
// Names carry the problem sizes: BM_MixtureScore/d/K/N.
#include <benchmark/benchmark.h>

#include <random>

#include "analytics/mixture.hpp"

namespace {
using namespace flowgauge;

GaussianMixture make_gmm(int d, int K) {
  std::mt19937_64 g(7);
  std::normal_distribution<double> n;
  std::vector<Component> c;
  for (int k = 0; k < K; ++k) {
    Eigen::MatrixXd A(d, d);
    for (int i = 0; i < d * d; ++i) A.data()[i] = n(g);
    Eigen::VectorXd m(d);
    for (int i = 0; i < d; ++i) m(i) = 2 * n(g);
    c.push_back({1.0, m, A * A.transpose() / d + 0.1 * Eigen::MatrixXd::Identity(d, d)});
  }
  return GaussianMixture(c, "bench");
}

// Flops of the two GEMMs per evaluation: 2 * (2 K d^2 N).
double gemm_flops(int d, int K, long N) { return 4.0 * K * double(d) * d * double(N); }

void mixture(benchmark::State& st, unsigned flags) {
  const int d = st.range(0), K = st.range(1);
  const long N = st.range(2);
  const auto gm = make_gmm(d, K);
  const Eigen::MatrixXd X = gm.sample(0.8, 0.6, 1, N);
  MixtureEval out;
  EvalWorkspace ws;
  for (auto _ : st) {
    gm.evaluate(X, 0.8, 0.6, flags, out, ws);
    benchmark::DoNotOptimize(out.score.data());
  }
  st.counters["points/s"] = benchmark::Counter(double(N), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GFLOP/s"] = benchmark::Counter(gemm_flops(d, K, N) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
void BM_MixtureScore(benchmark::State& st) { mixture(st, kLogp | kScore); }
void BM_MixtureScoreTrace(benchmark::State& st) { mixture(st, kLogp | kScore | kTrace); }

// The same two GEMM shapes, block by block as evaluate() does them: the throughput bound.
void BM_GemmShapes(benchmark::State& st) {
  const int d = st.range(0), K = st.range(1);
  const long N = st.range(2);
  const auto gm = make_gmm(d, K);
  const long B = gm.block_size();
  Eigen::MatrixXd A = Eigen::MatrixXd::Random(K * d, d), At = A.transpose(), X = Eigen::MatrixXd::Random(d, N);
  Eigen::MatrixXd Y(K * d, B), S(d, N);
  for (auto _ : st) {
    for (long j = 0; j < N; j += B) {
      const long nb = std::min(B, N - j);
      Y.leftCols(nb).noalias() = A * X.middleCols(j, nb);
      S.middleCols(j, nb).noalias() = At * Y.leftCols(nb);
    }
    benchmark::DoNotOptimize(S.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(gemm_flops(d, K, N) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Square DGEMM: the machine's practical peak on one core (Eigen's kernel, this build's flags).
void BM_DgemmPeak(benchmark::State& st) {
  const long n = st.range(0);
  Eigen::MatrixXd A = Eigen::MatrixXd::Random(n, n), B = Eigen::MatrixXd::Random(n, n), C(n, n);
  for (auto _ : st) {
    C.noalias() = A * B;
    benchmark::DoNotOptimize(C.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The exp kernel alone (the d = 2 bound): N*K exponentials, as in the log-sum-exp.
void BM_ExpKernel(benchmark::State& st) {
  const long n = st.range(0);
  Eigen::ArrayXd a = Eigen::ArrayXd::Random(n), b(n);
  for (auto _ : st) {
    b = a.exp();
    benchmark::DoNotOptimize(b.data());
  }
  st.counters["exp/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int d : {2, 16, 64, 256})
    for (int K : {1, 8, 64})
      for (long N : {1000L, 100000L}) b->Args({d, K, N});
  b->Args({64, 16, 10000});
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_MixtureScore)->Apply(sizes);
BENCHMARK(BM_GemmShapes)->Apply(sizes);
BENCHMARK(BM_MixtureScoreTrace)->Args({2, 8, 100000})->Args({64, 16, 10000})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DgemmPeak)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ExpKernel)->Arg(800000)->Unit(benchmark::kMillisecond);

}  // namespace
