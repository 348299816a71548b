#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/sink/alert_store.h"
#include "vigil/sink/summary.h"

namespace vigil::api {

// EventStream is the live feed behind GET /api/stream: a bounded ring of server-sent events
// (`alert`: each alert as the alert store commits it; `kpi`: the run's counters once a
// second) that any number of readers follow, each with its own cursor. Publishing takes the
// mutex once per call (once per alert-store commit, once per progress tick) and never waits
// for a reader; a reader that falls more than `capacity` events behind skips what it missed
// and is told how many (counted in dropped_total()). Thread-safe.
class EventStream final : public sink::AlertListener {
 public:
  explicit EventStream(size_t capacity = 4096);
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // sink::AlertListener: one `alert` event per line (called by the engine's writer thread).
  void OnCommit(std::vector<std::string>& alerts) override;
  // One `kpi` event from the run's counters and its current events/s.
  void PublishKpi(const sink::RunSummary& summary, double events_per_second);

  // The cursor of the next event to be published: a new reader starts there.
  uint64_t Head() const;
  // Waits up to `timeout` for events at or after `cursor`, then appends at most `max_events`
  // of them to `out` in the text/event-stream format and moves `cursor` past them. Events the
  // reader fell too far behind for are skipped and added to `dropped`. False once closed.
  bool Read(uint64_t& cursor, std::string& out, uint64_t& dropped,
            std::chrono::milliseconds timeout, size_t max_events = 256);
  // Wakes every reader and makes Read return false from now on.
  void Close();
  uint64_t dropped_total() const;

 private:
  struct Item {
    const char* type = "";
    std::string data;
  };
  void Push(const char* type, std::string data);  // with mu_ held

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> ring_;  // event `seq` is at ring_[seq % ring_.size()]
  uint64_t next_ = 0;       // seq of the next event
  uint64_t dropped_ = 0;
  bool closed_ = false;
};

// The JSON of a `kpi` event.
std::string KpiJson(const sink::RunSummary& summary, double events_per_second,
                    uint64_t stream_dropped);

}  // namespace vigil::api
