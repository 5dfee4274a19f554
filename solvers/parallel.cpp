#include "solvers/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace flowgauge {

long sample_blocked(const Solver& proto, const Model& model, const Grid& grid, MatRef X, const BlockedOptions& opt) {
  const Eigen::Index n = X.cols(), B = std::max<Eigen::Index>(1, opt.block);
  const Eigen::Index blocks = (n + B - 1) / B;
  const int threads = static_cast<int>(std::clamp<Eigen::Index>(opt.threads, 1, std::max<Eigen::Index>(1, blocks)));
  std::atomic<Eigen::Index> next{0};
  std::atomic<long> nfe{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    try {
      Model m(model.mixture(), model.schedule());  // own workspace
      for (Eigen::Index b; (b = next.fetch_add(1)) < blocks;) {
        const Eigen::Index j0 = b * B, w = std::min(B, n - j0);
        auto solver = proto.clone(j0);
        m.reset_nfe();
        sample(*solver, m, grid, X.middleCols(j0, w));
        nfe = m.nfe();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next = blocks;  // stop handing out blocks
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return nfe;
}

}  // namespace flowgauge
