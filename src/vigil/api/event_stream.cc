#include "vigil/api/event_stream.h"

#include <fmt/format.h>

#include "vigil/common/json.h"

namespace vigil::api {

EventStream::EventStream(size_t capacity) : ring_(capacity > 0 ? capacity : 1) {}

void EventStream::Push(const char* type, std::string data) {
  Item& slot = ring_[next_ % ring_.size()];
  slot.type = type;
  slot.data = std::move(data);
  ++next_;
}

void EventStream::OnCommit(std::vector<std::string>& alerts) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::string& a : alerts) Push("alert", std::move(a));
  }
  cv_.notify_all();
}

void EventStream::PublishKpi(const sink::RunSummary& summary, double events_per_second) {
  std::string json = KpiJson(summary, events_per_second, dropped_total());
  {
    std::lock_guard<std::mutex> lock(mu_);
    Push("kpi", std::move(json));
  }
  cv_.notify_all();
}

uint64_t EventStream::Head() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_;
}

bool EventStream::Read(uint64_t& cursor, std::string& out, uint64_t& dropped,
                       std::chrono::milliseconds timeout, size_t max_events) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || next_ > cursor; });
  if (closed_) return false;
  if (next_ - cursor > ring_.size()) {  // overwritten before this reader got to them
    const uint64_t skipped = next_ - ring_.size() - cursor;
    dropped += skipped;
    dropped_ += skipped;
    cursor = next_ - ring_.size();
  }
  for (size_t n = 0; cursor < next_ && n < max_events; ++cursor, ++n) {
    const Item& item = ring_[cursor % ring_.size()];
    // Decision lines and KPI JSON are single lines, as a `data:` field needs.
    out += fmt::format("event: {}\ndata: {}\n\n", item.type, item.data);
  }
  return true;
}

void EventStream::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

uint64_t EventStream::dropped_total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

std::string KpiJson(const sink::RunSummary& s, double events_per_second, uint64_t stream_dropped) {
  std::string out = "{\"events_per_second\":";
  AppendJsonNumber(out, events_per_second);
  out += fmt::format(",\"read\":{},\"decided\":{},\"outcomes\":{{", s.read, s.decided);
  for (int i = 0; i < decide::kOutcomeCount; ++i) {
    out += fmt::format("{}\"{}\":{}", i ? "," : "", decide::OutcomeName(decide::Outcome(i)),
                       s.by_outcome[static_cast<size_t>(i)]);
  }
  out += fmt::format("}},\"alerts\":{},\"dead_lettered\":{},\"stream_dropped\":{}}}", s.alerts,
                     s.dead_lettered, stream_dropped);
  return out;
}

}  // namespace vigil::api
