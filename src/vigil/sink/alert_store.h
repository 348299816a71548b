#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/sink/write_turns.h"

struct sqlite3;
struct sqlite3_stmt;

namespace vigil::sink {

// Told of the alerts each AlertStore::Commit made durable (e.g. the API's live stream). Called
// on the thread that commits (the engine's writer), once per commit: must not block.
class AlertListener {
 public:
  virtual ~AlertListener() = default;
  // `alerts` are the decision lines, without newline; the listener may move them out.
  virtual void OnCommit(std::vector<std::string>& alerts) = 0;
};

// AlertStore is the embedded alert store: an SQLite database (WAL mode) with one row per
// alert (a review or block decision), keyed by event id, so writing the same alert twice — a
// run resumed from a checkpoint writes the alerts after it again — keeps one row. Each row
// keeps the decision line as written, and the fields analysts filter on: event time, entity
// key, outcome, score, rule ids, narrative, rules version.
// Written by the engine's writer thread (Add, Commit), read by `vigil alerts` (Query), also
// while a run is writing. Not thread-safe: one thread per instance. Errors throw
// std::runtime_error naming the file (the writer turns them into a failed run).
class AlertStore {
 public:
  // Opens (creating if needed) the database at `path`.
  static std::unique_ptr<AlertStore> Open(const std::string& path, bool read_only = false);
  ~AlertStore();
  AlertStore(const AlertStore&) = delete;
  AlertStore& operator=(const AlertStore&) = delete;

  // Adds an alert from its decision line (the JSON the decisions output carries). Inside a
  // transaction that Commit ends.
  void Add(std::string_view decision_json);
  // Makes the alerts added so far durable, then hands them to the listener, if any.
  void Commit();
  // From now on, every Commit tells `listener` (null: none), which must outlive the store or
  // be unset first. The destructor's final commit tells no one.
  void SetListener(AlertListener* listener) { listener_ = listener; }

  struct Filter {
    std::optional<int64_t> since_us, until_us;  // event time, inclusive / exclusive
    std::string rule;                           // a rule id among its reasons
    std::string entity;                         // the event key
    std::string outcome;                        // review | block
    int64_t limit = 50;
    int64_t offset = 0;
  };
  struct Row {
    std::string event_id, event_time, entity, outcome, rules, narrative, decision;
    double score = 0;
    int64_t rules_version = 0;
  };
  // Newest event time first.
  std::vector<Row> Query(const Filter& filter);
  // The alert of event `event_id`, if stored.
  std::optional<Row> Get(std::string_view event_id);
  int64_t Count();

 private:
  AlertStore(std::string path, sqlite3* db);
  void TakeTurn();  // throws when the turn does not come (or the store is read-only)
  void Exec(const char* sql);
  [[noreturn]] void Fail(std::string_view what);

  std::string path_;
  sqlite3* db_;
  std::shared_ptr<WriteTurns> turns_;  // held from a transaction's first Add to its Commit
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* insert_rule_ = nullptr;
  bool in_transaction_ = false;
  AlertListener* listener_ = nullptr;
  std::vector<std::string> pending_;  // lines added since the last commit, for the listener
};

}  // namespace vigil::sink
