// experiments/combining_queue.hpp, the worker pool's hand-off of computed cells to the one thread at
// a time that writes them: every item consumed once, never two consumers at once, nothing stranded
// in the queue once the pushes return, and a pusher does not wait while another thread consumes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "experiments/combining_queue.hpp"

namespace {

using flowgauge::detail::CombiningQueue;

TEST(CombiningQueue, EveryItemIsConsumedOnceByOneThreadAtATimeAndNoneIsStranded) {
  constexpr int kThreads = 4, kPerThread = 20000;
  constexpr std::size_t kBound = 8;
  CombiningQueue<int> q(kBound);
  std::vector<int> seen(kThreads * kPerThread, 0);  // written by the one consumer only
  std::atomic<bool> consuming{false};
  std::atomic<int> overlaps{0};
  std::size_t longest = 0;
  auto consume = [&](int&& v) {
    if (consuming.exchange(true)) ++overlaps;
    longest = std::max(longest, q.size() + 1);
    ++seen[static_cast<std::size_t>(v)];
    consuming = false;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) q.push(t * kPerThread + i, consume);
    });
  for (auto& th : threads) th.join();
  // no flush: an item queued while another thread consumed was taken by that thread before it returned
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), kThreads * kPerThread);
  // a pusher that finds more than kBound queued waits and consumes: at most one item per other thread over it
  EXPECT_LE(longest, kBound + kThreads);
}

// The race the queue must survive: another thread queues an item (and fails to become the
// consumer) after the consumer last found the queue empty but before it let go. A consumer lock
// whose unlock() first lets such a push happen makes that interleaving certain.
struct SlowUnlock {
  std::mutex m;
  static inline std::function<void()> before_unlock;  // run once, by the next unlock()
  void lock() { m.lock(); }
  bool try_lock() { return m.try_lock(); }
  void unlock() {
    if (before_unlock) std::exchange(before_unlock, nullptr)();
    m.unlock();
  }
};

TEST(CombiningQueue, AnItemQueuedAsTheConsumerLetsGoIsConsumedByIt) {
  CombiningQueue<int, SlowUnlock> q(100);
  std::vector<int> got;
  auto consume = [&](int&& v) { got.push_back(v); };
  q.push(1, consume);
  ASSERT_EQ(got, std::vector<int>({1}));
  // the next push's consumer, about to let go, waits for another thread to push 3
  SlowUnlock::before_unlock = [&] { std::thread([&] { q.push(3, consume); }).join(); };
  q.push(2, consume);
  EXPECT_EQ(got, std::vector<int>({1, 2, 3}));  // without the second look, 3 stays queued
  EXPECT_EQ(q.size(), 0u);
}

TEST(CombiningQueue, APusherGoesOnWhileAnotherThreadConsumes) {
  constexpr int kOthers = 5;  // under the bound: none of these pushes may wait
  CombiningQueue<int> q(2 * kOthers);
  std::mutex m;
  std::condition_variable cv;
  bool first_consuming = false;
  int pushed = 0;
  bool timed_out = false;
  std::vector<std::thread::id> consumer_of(kOthers + 1);
  auto consume = [&](int&& v) {
    consumer_of[static_cast<std::size_t>(v)] = std::this_thread::get_id();
    if (v != 0) return;
    std::unique_lock<std::mutex> lock(m);
    first_consuming = true;
    cv.notify_all();
    // A pusher that waited for this consumer would never let `pushed` reach kOthers: fail after a
    // minute rather than hang (the pushes below take microseconds).
    timed_out = !cv.wait_for(lock, std::chrono::minutes(1), [&] { return pushed == kOthers; });
  };
  std::thread first([&] { q.push(0, consume); });
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return first_consuming; });
  }
  for (int i = 1; i <= kOthers; ++i) {
    q.push(i, consume);  // returns at once: item 0's consumer takes this one too
    std::lock_guard<std::mutex> lock(m);
    ++pushed;
    cv.notify_all();
  }
  const auto me = std::this_thread::get_id();
  const auto first_id = first.get_id();
  first.join();
  EXPECT_FALSE(timed_out);
  EXPECT_EQ(q.size(), 0u);
  for (int i = 0; i <= kOthers; ++i) {
    EXPECT_EQ(consumer_of[static_cast<std::size_t>(i)], first_id) << "item " << i;
    EXPECT_NE(consumer_of[static_cast<std::size_t>(i)], me) << "item " << i;
  }
}

TEST(CombiningQueue, AConsumerErrorReachesItsPusherAndTheQueueGoesOn) {
  CombiningQueue<int> q(100);
  std::vector<int> got;
  auto consume = [&](int&& v) {
    if (v == 2) throw std::runtime_error("disk full");
    got.push_back(v);
  };
  q.push(1, consume);
  EXPECT_THROW(q.push(2, consume), std::runtime_error);
  q.push(3, consume);  // the consumer's lock went with the exception: 3 is consumed, not left queued
  q.flush(consume);
  EXPECT_EQ(got, std::vector<int>({1, 3}));
  EXPECT_EQ(q.size(), 0u);
}

}  // namespace
