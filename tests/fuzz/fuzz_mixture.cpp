// libFuzzer target: mixture files (analytics/mixture_io.cpp) and GaussianMixture validation.
// Any input must either build a mixture or be refused with InputError / toml::parse_error; a
// mixture that is accepted must be usable: normalized weights, eigen-decomposition, and exact
// log p, score, trace, denoiser at points drawn from p_t, all finite. Anything else aborts.
// Built by FLOWGAUGE_FUZZ (clang, -fsanitize=fuzzer) and, with a replay main, as a CTest test.
#include <toml++/toml.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

#include "analytics/errors.hpp"
#include "analytics/mixture_io.hpp"

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "fuzz_mixture: accepted mixture violates: %s\n", what);
  std::abort();
}

void check(const flowgauge::GaussianMixture& gm) {
  using namespace flowgauge;
  const double eps = std::numeric_limits<double>::epsilon();
  const int d = gm.dim(), K = gm.size();
  if (d < 1 || K < 1) broken("dimension and size >= 1");
  // Normalized weights: each a rounded quotient, so the sum is 1 within K eps.
  if (std::abs(gm.weights().sum() - 1.0) > 4 * K * eps) broken("weights sum to 1");
  if (!(gm.weights().minCoeff() >= std::numeric_limits<double>::min()) || !gm.log_weights().allFinite())
    broken("weights normal, log weights finite");
  for (int k = 0; k < K; ++k) {
    if (!gm.eigvals(k).allFinite() || gm.eigvals(k).minCoeff() < 0) broken("eigenvalues finite and >= 0");
    // Eigenvectors orthonormal to backward-stable rounding (a few d eps).
    const MatrixXd E = gm.eigvecs(k).transpose() * gm.eigvecs(k) - MatrixXd::Identity(d, d);
    if (E.cwiseAbs().maxCoeff() > 64 * d * eps) broken("eigenvectors orthonormal");
  }
  // p_t at a mid-way time of a variance-preserving schedule: C_k(t) >= 0.36 I, never singular.
  const double alpha = 0.8, sigma = 0.6;
  const MatrixXd X = gm.sample(alpha, sigma, 1, 3);
  if (!X.allFinite()) broken("samples finite");
  const MixtureEval ev = gm.evaluate(X, alpha, sigma, kLogp | kScore | kTrace | kResp | kDenoiser);
  if (!ev.logp.allFinite() || !ev.score.allFinite() || !ev.trace.allFinite() || !ev.resp.allFinite() ||
      !ev.x0.allFinite())
    broken("log p, score, trace, responsibilities, denoiser finite at samples of p_t");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool verbose = std::getenv("FLOWGAUGE_FUZZ_VERBOSE") != nullptr;  // print each refusal
  const std::string text(reinterpret_cast<const char*>(data), size);
  toml::table table;
  try {
    table = toml::parse(std::string_view(text), std::string_view("fuzz.toml"));
  } catch (const toml::parse_error&) {
    return 0;  // not TOML: load_mixture reports it as "file:line:col: TOML syntax error"
  }
  try {
    check(flowgauge::mixture_from_toml(table, "fuzz.toml"));
  } catch (const flowgauge::InputError& e) {  // refused by name: expected
    if (verbose) std::fprintf(stderr, "refused: %s\n", e.what());
  }
  return 0;
}
