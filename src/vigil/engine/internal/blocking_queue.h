#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace vigil::engine_internal {

// BlockingQueue is a bounded multi-producer multi-consumer queue. The engine moves whole
// batches (hundreds to thousands of events) through it, so its lock is taken once per batch,
// never per event. Thread-safe.
template <typename T>
class BlockingQueue {
 public:
  explicit BlockingQueue(size_t capacity) : capacity_(capacity) {}
  BlockingQueue(const BlockingQueue&) = delete;
  BlockingQueue& operator=(const BlockingQueue&) = delete;

  // Blocks while full (backpressure).
  void Push(T v) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(v));
    not_empty_.notify_one();
  }

  T Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !items_.empty(); });
    return TakeLocked();
  }

  // Waits up to `timeout`; nullopt when nothing arrived.
  template <typename Rep, typename Period>
  std::optional<T> PopFor(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock lock(mu_);
    if (!not_empty_.wait_for(lock, timeout, [&] { return !items_.empty(); })) return std::nullopt;
    return TakeLocked();
  }

  size_t Size() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }

 private:
  T TakeLocked() {
    T v = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return v;
  }
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<T> items_;
};

}  // namespace vigil::engine_internal
