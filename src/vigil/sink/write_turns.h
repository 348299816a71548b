#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

namespace vigil::sink {

// Turns between the writers of one SQLite database inside this process. The engine's alert
// store holds its write transaction for up to a second and took the next one as soon as it
// committed, so a case written from the API, left to SQLite's busy handler (sleep and
// retry), almost never found the lock free under load and failed as busy. Now a short writer
// (a case change) waits for the current turn to end, and the alert store lets every short
// writer waiting go first before it starts its next transaction. Writers in other processes
// still meet SQLite's busy timeout. One instance per database file (For), shared by every
// store that opens it here; thread-safe.
class WriteTurns {
 public:
  // The turns of the database at `path` (the same for every spelling of one file).
  static std::shared_ptr<WriteTurns> For(const std::string& path);

  // A short writer's turn: false if the current one did not end within `timeout`.
  bool Enter(std::chrono::milliseconds timeout);
  // A long writer's turn (the alert store's transaction): after every short writer waiting;
  // false if it did not come within `timeout` (the turn is held on this very thread, say).
  bool EnterAfterOthers(std::chrono::milliseconds timeout);
  // Ends the turn Enter or EnterAfterOthers gave.
  void Leave();
  // Short writers waiting now (for tests).
  int Waiting();

  // Ends a turn already entered when the scope ends.
  class LeaveAtEnd {
   public:
    explicit LeaveAtEnd(WriteTurns& t) : turns_(t) {}
    ~LeaveAtEnd() { turns_.Leave(); }
    LeaveAtEnd(const LeaveAtEnd&) = delete;
    LeaveAtEnd& operator=(const LeaveAtEnd&) = delete;

   private:
    WriteTurns& turns_;
  };

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool held_ = false;
  int waiting_ = 0;  // short writers waiting for a turn
};

}  // namespace vigil::sink
