#pragma once
// Flat combining (Hendler, Incze, Shavit, Tzafrir, SPAA 2010) with one consumer at a time: threads
// queue items, and whichever finds nobody consuming consumes the whole queue (its own item and those
// queued meanwhile) while the others go on with their work. The runner's worker pool queues computed
// cells here: HDF5 takes one caller at a time, and no worker waits for another's file writes, fsyncs
// or main-file rebuilds.
#include <cstddef>
#include <deque>
#include <mutex>
#include <utility>

namespace flowgauge::detail {

// ConsumerLock: the consumer's mutex type (a test slows its unlock() to widen the one race).
template <class T, class ConsumerLock = std::mutex>
class CombiningQueue {
 public:
  // Past `bound` queued items a pusher waits for the consumer and takes over (memory stays bounded).
  explicit CombiningQueue(std::size_t bound) : bound_(bound) {}

  // Queues `item`, then consumes the queue with consume(T&&) unless another thread is consuming it
  // (that thread then consumes `item` as well). An exception from consume propagates; the item it
  // was given is dropped, the others stay queued.
  template <class F>
  void push(T item, F&& consume) {
    std::size_t queued = 0;
    {
      std::lock_guard<std::mutex> lock(m_);
      items_.push_back(std::move(item));
      queued = items_.size();
    }
    drain(consume, queued > bound_);
  }
  // Consumes everything queued, after the thread consuming now if there is one.
  template <class F>
  void flush(F&& consume) {
    drain(consume, true);
  }
  std::size_t size() const {
    std::lock_guard<std::mutex> lock(m_);
    return items_.size();
  }

 private:
  template <class F>
  void drain(F& consume, bool wait) {
    for (;;) {
      std::unique_lock<ConsumerLock> consuming(consumer_, std::defer_lock);
      if (wait) consuming.lock();
      else if (!consuming.try_lock()) return;  // its holder looks at the queue again after letting go
      for (;;) {
        T item;
        {
          std::lock_guard<std::mutex> lock(m_);
          if (items_.empty()) break;
          item = std::move(items_.front());
          items_.pop_front();
        }
        consume(std::move(item));
      }
      consuming.unlock();
      // An item queued after the last look above, by a thread whose try_lock failed, is ours.
      std::lock_guard<std::mutex> lock(m_);
      if (items_.empty()) return;
      wait = false;
    }
  }

  const std::size_t bound_;
  mutable std::mutex m_;  // guards items_
  std::deque<T> items_;
  ConsumerLock consumer_;  // held by the consuming thread
};

}  // namespace flowgauge::detail
