#include "experiments/runner_mpi.hpp"

#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fmt/format.h>
#include <stdexcept>
#include <thread>

#include "analytics/errors.hpp"
#include "experiments/runner_detail.hpp"
#include "results/h5.hpp"

namespace flowgauge::mpi {
using namespace detail;

namespace {

// Messages (MPI_INT payloads unless said otherwise), all between rank 0 and one other rank.
enum Tag : int {
  kRequest = 1,  // r -> 0: {cells wanted, ids of cells finished since the last message...}
  kReply = 2,    // 0 -> r: ids of cells to compute; fewer than wanted: nothing more to hand out
  kError = 3,    // r -> 0: MPI_CHAR "<exit status>|<message>": a worker of r failed
  kBye = 4,      // r -> 0: {ids of cells finished since the last message...}; r has stopped
};

// Polls instead of blocking: a blocking MPI call spins a core that the worker threads need.
class Backoff {
 public:
  void reset() { us_ = 20; }
  void wait() {
    std::this_thread::sleep_for(std::chrono::microseconds(us_));
    us_ = std::min(us_ * 2, 2000);
  }

 private:
  int us_ = 20;
};

void send_ints(const std::vector<int>& v, int dest, int tag) {
  MPI_Send(v.data(), static_cast<int>(v.size()), MPI_INT, dest, tag, MPI_COMM_WORLD);
}

// Status carried from a rank to rank 0: 2 bad input, 1 internal, kWriteFailed a full disk (exit 1).
constexpr int kWriteFailed = -1;

std::string error_text(const std::exception_ptr& error, int& status) {
  try {
    std::rethrow_exception(error);
  } catch (const InputError& err) {
    status = 2;
    return err.what();
  } catch (const h5::WriteError& err) {
    status = kWriteFailed;
    return err.what();
  } catch (const std::exception& err) {
    status = 1;
    return err.what();
  } catch (...) {
    status = 1;
    return "unknown error";
  }
}

// ---- rank 0: serves requests, computes with its own threads, writes the main file ----
RunSummary coordinate(const Session& s, const Experiment& e, const RunOptions& opt, const IdSet& scope, Prepared& p) {
  const auto t_start = std::chrono::steady_clock::now();
  MainInfo info{.complete = p.todo.empty(), .started = p.started, .threads = resolve_threads(e, opt), .command = run_command(e),
                .shard = opt.shard, .shards = opt.shards, .scope = scope.size()};
  auto& done = p.done;
  RunSummary sum;
  sum.cells = scope.size();
  sum.resumed = done.size();
  write_main(e, done, info, *p.extras);
  info.complete = false;

  Assigner assigner(e, p.todo);
  std::mutex m;  // guards assigner, done, stop
  bool stop = false;
  std::size_t computed = 0;
  std::vector<std::size_t> per_rank(static_cast<std::size_t>(s.size()), 0);
  WorkerPool pool(
      e, info.threads,
      [&](int worker) {  // rank 0's threads: requesters -1, -2, ... (remote ranks are 1, 2, ...)
        std::lock_guard<std::mutex> lock(m);
        return stop || interrupted() ? -1 : assigner.take(-1 - worker);
      },
      [&](int id, Table&& row) {
        std::lock_guard<std::mutex> lock(m);
        done.emplace(id, row);
        ++computed;
        ++per_rank[0];
      });

  int remote_status = 0, remote_rank = -1;
  std::string remote_error;
  auto finished_remotely = [&](int rank, const int* ids, int n) {
    for (int i = 0; i < n; ++i) {
      Table r = load_cell(e, ids[i]);  // written durably by that rank before it told us
      std::lock_guard<std::mutex> lock(m);
      done.emplace(ids[i], r);
      ++computed;
      ++per_rank[static_cast<std::size_t>(rank)];
    }
  };
  const bool tty = isatty(STDERR_FILENO);
  auto progress = [&](bool final) {
    if (opt.quiet) return;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::lock_guard<std::mutex> lock(m);
    const double eta = computed ? el / computed * (p.todo.size() - computed) : 0;
    const auto line = fmt::format("flowgauge run: {}/{} cells ({} resumed) on {} ranks, elapsed {}, ETA {}", done.size(),
                                  scope.size(), sum.resumed, s.size(), hms(el), hms(eta));
    if (tty) fmt::print(stderr, "\r{}{}", line, final ? "\n" : "");
    else fmt::print(stderr, "{}\n", line);
  };
  RebuildClock rebuild(opt.rebuild_seconds);
  auto last_print = std::chrono::steady_clock::now();
  std::size_t rebuilt_at = done.size();
  int active = s.size() - 1;
  Backoff backoff;
  std::vector<int> buf;
  // An error here (a cell file not visible from rank 0, ...) leaves ranks waiting for replies that
  // never come, and MPI_Finalize would wait for them: abort the job instead (finished cells are on
  // disk; a rerun resumes).
  bool announced = false;
  try {
  while (active > 0) {
    if (pool.failed()) {
      std::lock_guard<std::mutex> lock(m);
      stop = true;
    }
    // SIGINT / SIGTERM (mpirun forwards them to every rank): hand out no more cells; every rank
    // finishes its cells in flight and says goodbye. A second one abandons them.
    if (const int sig = interrupted()) {
      std::lock_guard<std::mutex> lock(m);
      if (abandon_requested()) abandon_run(e, done, info, *p.extras, scope.size(), opt, p.lock.get());
      stop = true;
      if (!announced) {
        announced = true;
        fmt::print(stderr, "flowgauge run: {}: handing out no new cell; every rank finishes its cells in flight (a second {} "
                           "abandons them)\n",
                   signal_name(sig), sig == SIGINT ? "Ctrl-C" : "signal");
      }
    }
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
    if (flag) {
      backoff.reset();
      const int src = st.MPI_SOURCE;
      if (st.MPI_TAG == kError) {
        int n = 0;
        MPI_Get_count(&st, MPI_CHAR, &n);
        std::string text(static_cast<std::size_t>(n), '\0');
        MPI_Recv(text.data(), n, MPI_CHAR, src, kError, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (remote_rank < 0) {
          const auto bar = text.find('|');
          remote_status = std::atoi(text.substr(0, bar).c_str());
          remote_error = text.substr(bar + 1);
          remote_rank = src;
        }
        std::lock_guard<std::mutex> lock(m);
        stop = true;
        continue;
      }
      int n = 0;
      MPI_Get_count(&st, MPI_INT, &n);
      buf.resize(static_cast<std::size_t>(std::max(n, 1)));
      MPI_Recv(buf.data(), n, MPI_INT, src, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (st.MPI_TAG == kBye) {
        finished_remotely(src, buf.data(), n);
        --active;
      } else if (st.MPI_TAG == kRequest) {
        finished_remotely(src, buf.data() + 1, n - 1);
        std::vector<int> give;
        {
          std::lock_guard<std::mutex> lock(m);
          for (int k = 0; k < buf[0] && !stop; ++k) {
            const int id = assigner.take(src);
            if (id < 0) break;
            give.push_back(id);
          }
        }
        send_ints(give, src, kReply);
      }
    } else {
      backoff.wait();
    }
    const auto now = std::chrono::steady_clock::now();
    if (rebuild.due()) {
      std::lock_guard<std::mutex> lock(m);
      if (done.size() != rebuilt_at) write_main(e, done, info, *p.extras);
      rebuilt_at = done.size();
      rebuild.rebuilt(now);
    }
    if (std::chrono::duration<double>(now - last_print).count() >= 1.0) {
      progress(false);
      last_print = now;
    }
  }
  } catch (...) {
    int status = 1;
    const auto what = error_text(std::current_exception(), status);
    fmt::print(stderr, "\nflowgauge: error: {}\nflowgauge: aborting every rank (finished cells are kept: rerun to resume)\n", what);
    MPI_Abort(MPI_COMM_WORLD, status);
  }
  pool.join();
  const auto error = pool.error();
  if (error || remote_rank >= 0) {
    bool written = true;
    try {
      write_main(e, done, info, *p.extras);  // partial: what finished stays
    } catch (const std::exception&) {
      written = false;  // the disk is still full: the first error says so, and the cell files hold the cells
    }
    const std::string kept = kept_and_resume(e, done.size(), scope.size(), opt, written, "after fixing that, ");
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const h5::WriteError& err) {
        throw h5::WriteError(fmt::format("{}\n  {}", err.what(), kept));
      }
    }
    const auto msg = fmt::format("rank {}: {}", remote_rank, remote_error);
    if (remote_status == 2) throw InputError(msg);
    if (remote_status == kWriteFailed) throw h5::WriteError(fmt::format("{}\n  {}", msg, kept));
    throw std::runtime_error(msg);
  }
  const int sig = interrupted();
  info.complete = done.size() == scope.size();
  write_main(e, done, info, *p.extras);
  if (info.complete) remove_stale_partials(e);  // also those of processes that were still dying when the run started
  progress(true);
  if (sig)
    fmt::print(stderr, "flowgauge run: stopped by {}: {}\n", signal_name(sig),
               kept_and_resume(e, done.size(), scope.size(), opt, true, ""));
  sum.signal = sig;
  if (!opt.quiet) fmt::print(stderr, "flowgauge run: cells computed per rank: {}\n", fmt::join(per_rank, ", "));
  sum.computed = computed;
  sum.failed = done.failed();
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return sum;
}

// ---- ranks > 0: ask rank 0 for cells, compute them with the local threads ----
// Returns the signal that stopped this rank early (0: none).
int work(const Session& s, const Experiment& e, const RunOptions& opt) {
  std::mutex m;
  std::condition_variable cv;
  int wanting = 0, stopped = 0;
  std::deque<int> queue;
  std::vector<int> finished;
  bool exhausted = false;
  const int threads = resolve_threads(e, opt);
  WorkerPool pool(
      e, threads,
      [&](int) {
        std::unique_lock<std::mutex> lock(m);
        ++wanting;
        cv.notify_all();
        cv.wait(lock, [&] { return !queue.empty() || exhausted; });
        --wanting;
        if (queue.empty()) {
          ++stopped;
          cv.notify_all();
          return -1;
        }
        const int id = queue.front();
        queue.pop_front();
        return id;
      },
      [&](int id, Table&&) {
        std::lock_guard<std::mutex> lock(m);
        finished.push_back(id);
      });
  bool error_sent = false;
  for (;;) {
    std::unique_lock<std::mutex> lock(m);
    if (const int sig = interrupted()) {  // SIGINT / SIGTERM: ask for nothing more, finish the cells in flight
      if (abandon_requested()) {
        g_h5.lock();  // no cell file is being written, and none starts
        std::_Exit(128 + sig);
      }
      if (!exhausted) {
        exhausted = true;
        queue.clear();
        cv.notify_all();
      }
    }
    if (pool.failed() && !error_sent) {
      exhausted = true;
      cv.notify_all();
      lock.unlock();
      pool.join();  // the others finish their cells in flight
      int status = 1;
      const auto what = error_text(pool.error(), status);
      const auto msg = fmt::format("{}|{}", status, what);
      MPI_Send(msg.data(), static_cast<int>(msg.size()), MPI_CHAR, 0, kError, MPI_COMM_WORLD);
      error_sent = true;
      break;
    }
    if (exhausted && stopped == threads) break;
    const int want = wanting - static_cast<int>(queue.size());
    if (want > 0 && !exhausted) {
      std::vector<int> msg{want};
      msg.insert(msg.end(), finished.begin(), finished.end());
      finished.clear();
      lock.unlock();
      send_ints(msg, 0, kRequest);
      MPI_Status st;
      int flag = 0;
      Backoff b;
      for (;;) {  // the reply, polled
        MPI_Iprobe(0, kReply, MPI_COMM_WORLD, &flag, &st);
        if (flag) break;
        b.wait();
      }
      int n = 0;
      MPI_Get_count(&st, MPI_INT, &n);
      std::vector<int> ids(static_cast<std::size_t>(std::max(n, 1)));
      MPI_Recv(ids.data(), n, MPI_INT, 0, kReply, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      lock.lock();
      queue.insert(queue.end(), ids.begin(), ids.begin() + n);
      if (n < want) exhausted = true;
      cv.notify_all();
      continue;
    }
    cv.wait_for(lock, std::chrono::milliseconds(5));
  }
  pool.join();
  std::vector<int> rest;
  {
    std::lock_guard<std::mutex> lock(m);
    rest.swap(finished);
  }
  send_ints(rest, 0, kBye);
  return interrupted();
}

}  // namespace

Session::Session() {
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  if (provided < MPI_THREAD_FUNNELED) {
    if (rank_ == 0) fmt::print(stderr, "flowgauge: error: the MPI library offers no MPI_THREAD_FUNNELED\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

Session::~Session() { MPI_Finalize(); }

bool Session::all(bool ok) const {
  int in = ok ? 1 : 0, out = 0;
  MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return out != 0;
}

int Session::first(bool flag) const {
  int in = flag ? rank_ : size_, out = size_;
  MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return out == size_ ? -1 : out;
}

RunSummary run(const Session& s, const Experiment& e, const RunOptions& opt) {
  RunSignals signals;
  // Every rank must run the same plan (the experiment file and its data files, read on each node).
  std::uint64_t hash = e.plan_hash;
  MPI_Bcast(&hash, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  const int other = s.first(hash != e.plan_hash);
  if (other >= 0) {
    if (s.rank() == 0)
      throw InputError(fmt::format("rank {} reads {} as another plan (its hash differs from rank 0's {:016x}): every node must "
                                   "see the same experiment and data files",
                                   other, e.file, e.plan_hash));
    return {};
  }
  const auto scope = scope_of(e, opt);
  // Rank 0 prepares (refusals, directories, finished cells) before any rank starts a cell.
  Prepared p;
  std::exception_ptr error;
  if (s.rank() == 0) {
    try {
      p = prepare(e, scope, resolve_threads(e, opt));
    } catch (...) {
      error = std::current_exception();
    }
  }
  int ok = error ? 0 : 1;
  MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!ok) {
    if (s.rank() == 0) std::rethrow_exception(error);
    return {};
  }
  if (s.rank() == 0) return coordinate(s, e, opt, scope, p);
  RunSummary sum;
  sum.signal = work(s, e, opt);
  return sum;
}

}  // namespace flowgauge::mpi
