#include "vigil/sink/write_turns.h"

#include <filesystem>
#include <map>

namespace vigil::sink {

std::shared_ptr<WriteTurns> WriteTurns::For(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<WriteTurns>> by_file;
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) key = path;
  const std::lock_guard lock(mu);
  std::erase_if(by_file, [](const auto& kv) { return kv.second.expired(); });
  std::weak_ptr<WriteTurns>& slot = by_file[key];
  std::shared_ptr<WriteTurns> turns = slot.lock();
  if (!turns) {
    turns = std::make_shared<WriteTurns>();
    slot = turns;
  }
  return turns;
}

bool WriteTurns::Enter(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  ++waiting_;
  const bool mine = changed_.wait_for(lock, timeout, [&] { return !held_; });
  --waiting_;
  if (mine) {
    held_ = true;
  } else {
    changed_.notify_all();  // a long writer may have been waiting for this one to go
  }
  return mine;
}

bool WriteTurns::EnterAfterOthers(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!changed_.wait_for(lock, timeout, [&] { return !held_ && waiting_ == 0; })) return false;
  held_ = true;
  return true;
}

int WriteTurns::Waiting() {
  const std::lock_guard lock(mu_);
  return waiting_;
}

void WriteTurns::Leave() {
  {
    const std::lock_guard lock(mu_);
    held_ = false;
  }
  changed_.notify_all();
}

}  // namespace vigil::sink
