#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vigil/common/result.h"
#include "vigil/sink/write_turns.h"

struct sqlite3;

namespace vigil::sink {

// What a case operation can fail with; the API maps each to an HTTP status.
enum class CaseErrc : uint8_t {
  kNotFound,  // no such case or alert (404)
  kConflict,  // e.g. closing a closed case (409)
  kInvalid,   // a value the store refuses, e.g. an unknown disposition (400)
  kBusy,      // the database stayed locked past the busy timeout (503)
};

template <typename T>
using CaseResult = Result<T, CaseErrc>;

// CaseStore keeps the human side of alerts in the alert store's SQLite database: cases (alerts
// grouped for an analyst, with an assignee, comments and a closing disposition: fraud,
// not_fraud or inconclusive) and the audit log of every change (who, what, when, before and
// after as JSON). Its tables are created idempotently beside the alert store's.
// It uses its own connection with a short busy timeout, and each change is one short
// IMMEDIATE transaction, so the engine's writer thread (which also writes alerts in WAL mode)
// waits at most that long for it. In one process the two take turns (WriteTurns): a change
// waits for the alert store's open transaction to commit (at most about a second), not for
// a free moment SQLite's busy handler may never see. Results are JSON texts, ready to serve.
// Not thread-safe: one thread at a time per instance (the API serializes its calls).
class CaseStore {
 public:
  // Opens the database at `path` (the alert store; created if missing) and creates the case
  // and audit tables if needed. Throws std::runtime_error naming the file.
  static std::unique_ptr<CaseStore> Open(const std::string& path, int busy_timeout_ms = 2000);
  ~CaseStore();
  CaseStore(const CaseStore&) = delete;
  CaseStore& operator=(const CaseStore&) = delete;

  // Opens a case over `alert_ids` (event ids in the alert store). Returns the case.
  CaseResult<std::string> Create(const std::vector<std::string>& alert_ids, std::string_view title,
                                 std::string_view actor);
  // The case with its alerts (decision lines), comments and history (its audit entries).
  CaseResult<std::string> Get(int64_t id);
  struct CaseFilter {
    std::string status;    // open | closed | "" (any)
    std::string assignee;  // "" (any)
    int64_t limit = 50;
    int64_t offset = 0;
  };
  // {"total","limit","offset","cases":[case, ...]}, newest first.
  CaseResult<std::string> List(const CaseFilter& filter);
  CaseResult<std::string> Assign(int64_t id, std::string_view assignee, std::string_view actor);
  CaseResult<std::string> Comment(int64_t id, std::string_view text, std::string_view actor);
  // disposition: fraud | not_fraud | inconclusive. A closed case cannot be closed again.
  CaseResult<std::string> Close(int64_t id, std::string_view disposition, std::string_view comment,
                                std::string_view actor);

  // Records an action that is not about a case (e.g. a rules reload) in the audit log.
  CaseResult<bool> Audit(std::string_view actor, std::string_view action, std::string_view object,
                         std::string_view before_json, std::string_view after_json);
  struct AuditFilter {
    std::string actor, action, object;  // "" (any)
    int64_t limit = 50;
    int64_t offset = 0;
  };
  // {"total","limit","offset","entries":[{id, at, actor, action, object, before, after}]},
  // newest first.
  CaseResult<std::string> AuditLog(const AuditFilter& filter);

  // The ids of the cases that hold alert `event_id`, as a JSON array.
  std::string CasesOf(std::string_view event_id);

  // Labels from closed cases: (event id, 1 for fraud / 0 for not_fraud), one per alert in
  // event id order; inconclusive cases give none. When an alert is in several closed cases, the
  // latest closed one decides.
  std::vector<std::pair<std::string, int>> Labels();

 private:
  CaseStore(std::string path, sqlite3* db);
  struct Tx;
  [[noreturn]] void Fail(std::string_view what);
  std::optional<std::string> CaseJson(int64_t id);
  void WriteAudit(std::string_view actor, std::string_view action, std::string_view object,
                  std::string_view before_json, std::string_view after_json);

  std::string path_;
  sqlite3* db_;
  std::shared_ptr<WriteTurns> turns_;  // this process's writers of the file take turns
  int busy_timeout_ms_ = 0;
};

}  // namespace vigil::sink
