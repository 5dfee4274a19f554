// Batched mixture evaluation against the machine's DGEMM throughput and its exp throughput,
// measured in the same run. Names carry the problem sizes: BM_MixtureScore/d/K/N.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <string>

#include "analytics/mixture.hpp"

#ifdef FLOWGAUGE_BENCH_BLAS
// The system BLAS (Fortran interface; Debian: OpenBLAS through libblas.so.3), for its DGEMM peak.
extern "C" void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
                       const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
                       const int* ldc);
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" char* openblas_get_corename() __attribute__((weak));
#endif

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

// Nominal flops of the two products per evaluation: 2 * (2 K d^2 N).
double gemm_flops(int d, int K, long N) { return 4.0 * K * double(d) * d * double(N); }

void mixture(benchmark::State& st, unsigned flags, EvalKernel kernel) {
  const int d = st.range(0), K = st.range(1);
  const long N = st.range(2);
  const auto gm = make_gmm(d, K);
  const Eigen::MatrixXd X = gm.sample(0.8, 0.6, 1, N);
  MixtureEval out;
  EvalWorkspace ws;
  ws.kernel = kernel;
  for (auto _ : st) {
    gm.evaluate(X, 0.8, 0.6, flags, out, ws);
    benchmark::DoNotOptimize(out.score.data());
  }
  st.counters["points/s"] = benchmark::Counter(double(N), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["exp/s"] = benchmark::Counter(double(N) * K, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GFLOP/s"] = benchmark::Counter(gemm_flops(d, K, N) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
// What a sampler step asks for (kScore; Model adds kDenoiser only at sigma / alpha > 1e4), plus log p.
void BM_MixtureScore(benchmark::State& st) { mixture(st, kLogp | kScore, EvalKernel::kAuto); }
void BM_MixtureScoreTrace(benchmark::State& st) { mixture(st, kLogp | kScore | kTrace, EvalKernel::kAuto); }
// The GEMM kernel where kAuto picks the elementwise one (d <= 8): why it does.
void BM_MixtureScoreGemmKernel(benchmark::State& st) { mixture(st, kLogp | kScore, EvalKernel::kGemm); }

// The same two GEMM shapes, block by block as evaluate() does them with the GEMM kernel:
// (B x (d+1)) (((d+1) x K d) and (B x K d) (K d x d). The throughput bound of the heavy part.
void BM_GemmShapes(benchmark::State& st) {
  const int d = st.range(0), K = st.range(1);
  const long N = st.range(2);
  const long B = make_gmm(d, K).block_size(EvalKernel::kGemm);
  Eigen::MatrixXd Xt = Eigen::MatrixXd::Random(B, d + 1), A = Eigen::MatrixXd::Random(d + 1, K * d);
  Eigen::MatrixXd G = Eigen::MatrixXd::Random(K * d, d), W(B, K * d), S(B, d);
  for (auto _ : st) {
    for (long j = 0; j < N; j += B) {
      const long nb = std::min(B, N - j);
      W.topRows(nb).noalias() = Xt.topRows(nb) * A;
      S.topRows(nb).noalias() = W.topRows(nb) * G;
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

#ifdef FLOWGAUGE_BENCH_BLAS
// The same through the system BLAS on one thread. OpenBLAS picks its kernel from CPUID and may
// not recognize the CPU (this machine: "Prescott", SSE3); OPENBLAS_CORETYPE=SkylakeX overrides.
void BM_DgemmPeakBlas(benchmark::State& st) {
  const int n = st.range(0);
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  if (openblas_get_corename) st.SetLabel(std::string("OpenBLAS ") + openblas_get_corename());
  Eigen::MatrixXd A = Eigen::MatrixXd::Random(n, n), B = Eigen::MatrixXd::Random(n, n), C(n, n);
  const double one = 1, zero = 0;
  for (auto _ : st) {
    dgemm_("N", "N", &n, &n, &n, &one, A.data(), &n, B.data(), &n, &zero, C.data(), &n);
    benchmark::DoNotOptimize(C.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_DgemmPeakBlas)->Arg(1024)->Unit(benchmark::kMillisecond);
#endif

// Eigen's vectorized exp alone, the bound at small d (K exponentials per point): n = 4096 stays
// in L1/L2 (compute bound); n = 800000 streams 12.8 MB through memory.
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
  for (int d : {2, 8, 16, 64, 256})
    for (int K : {1, 8, 64})
      for (long N : {1000L, d == 256 ? 10000L : 100000L}) b->Args({d, K, N});
  b->Args({64, 16, 10000});
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_MixtureScore)->Apply(sizes);
BENCHMARK(BM_GemmShapes)->Apply(sizes);
BENCHMARK(BM_MixtureScoreGemmKernel)->Args({2, 8, 100000})->Args({4, 8, 100000})->Args({8, 8, 100000})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MixtureScoreTrace)->Args({2, 8, 100000})->Args({64, 16, 10000})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DgemmPeak)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ExpKernel)->Arg(4096)->Arg(800000)->Unit(benchmark::kMicrosecond);

}  // namespace
