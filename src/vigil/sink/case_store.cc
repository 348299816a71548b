#include "vigil/sink/case_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "vigil/common/json.h"
#include "vigil/common/time.h"

namespace vigil::sink {

namespace {

constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS cases (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  title       TEXT NOT NULL,
  status      TEXT NOT NULL,   -- open | closed
  assignee    TEXT,
  disposition TEXT,            -- fraud | not_fraud | inconclusive, once closed
  created_at  TEXT NOT NULL,   -- UTC, ISO-8601
  created_by  TEXT NOT NULL,   -- token name
  updated_at  TEXT NOT NULL,
  closed_at   TEXT
);
CREATE TABLE IF NOT EXISTS case_alerts (
  case_id  INTEGER NOT NULL,
  event_id TEXT NOT NULL,      -- alerts.event_id
  PRIMARY KEY (case_id, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS case_alerts_by_event ON case_alerts (event_id);
CREATE TABLE IF NOT EXISTS case_comments (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  case_id    INTEGER NOT NULL,
  author     TEXT NOT NULL,
  text       TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  at     TEXT NOT NULL,         -- UTC, ISO-8601
  actor  TEXT NOT NULL,         -- token name
  action TEXT NOT NULL,         -- case.create, case.assign, case.comment, case.close, rules.reload
  object TEXT NOT NULL,         -- case/7, rules
  before TEXT,                  -- JSON, null when the object did not exist
  after  TEXT                   -- JSON
);
CREATE INDEX IF NOT EXISTS audit_by_object ON audit (object, id);
)";

// SQLITE_BUSY / SQLITE_LOCKED past the busy timeout: answered as CaseErrc::kBusy.
struct BusyError {};

std::string Now() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return FormatIso8601(us);
}

// One prepared statement; throws BusyError or std::runtime_error naming the file.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& path, const std::string& sql) : db_(db), path_(path) {
    const int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr);
    if (rc != SQLITE_OK) Check(rc, "cannot prepare a statement");
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& BindNullable(int i, std::string_view v) {
    if (v.empty()) {
      sqlite3_bind_null(s_, i);
      return *this;
    }
    return Bind(i, v);
  }
  // True while there is a row.
  bool Step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Check(rc, "statement failed");
    return false;
  }
  bool Null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string_view Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string_view();
  }
  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  // The column as a JSON string, or null.
  void AppendString(std::string& out, int col) const {
    if (Null(col)) {
      out += "null";
    } else {
      AppendJsonString(out, Text(col));
    }
  }
  // The column holding JSON text as it is, or null.
  void AppendRaw(std::string& out, int col) const {
    if (Null(col)) {
      out += "null";
    } else {
      out += Text(col);
    }
  }

 private:
  void Check(int rc, const char* what) {
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) throw BusyError{};
    throw std::runtime_error(
        fmt::format("{}: case store: {}: {}", path_, what, sqlite3_errmsg(db_)));
  }
  sqlite3* db_;
  const std::string& path_;
  sqlite3_stmt* s_ = nullptr;
};

void Exec(sqlite3* db, const std::string& path, const char* sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return;
  const std::string why = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) throw BusyError{};
  throw std::runtime_error(fmt::format("{}: case store: {}: {}", path, sql, why));
}

Error<CaseErrc> Err(CaseErrc code, std::string message) { return {code, std::move(message)}; }

Error<CaseErrc> Busy() {
  return {CaseErrc::kBusy, "the alert store is busy (the engine is writing); retry shortly"};
}

}  // namespace

// One IMMEDIATE transaction: takes the write lock up front (so a read-then-write never has to
// upgrade and fail), rolled back unless committed.
// Taken in turn with the engine's alert store in this process (WriteTurns): busy when the
// turn does not come within the busy timeout.
struct CaseStore::Tx {
  explicit Tx(CaseStore& s) : store(s) {
    using std::chrono::milliseconds;
    const auto start = std::chrono::steady_clock::now();
    if (!s.turns_->Enter(milliseconds(s.busy_timeout_ms_))) throw BusyError{};
    // One busy timeout in all: what the turn took is not waited again for the lock.
    const auto waited =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
    sqlite3_busy_timeout(s.db_, std::max(1, s.busy_timeout_ms_ - static_cast<int>(waited.count())));
    try {
      Exec(s.db_, s.path_, "BEGIN IMMEDIATE");
    } catch (...) {
      sqlite3_busy_timeout(s.db_, s.busy_timeout_ms_);
      s.turns_->Leave();
      throw;
    }
    sqlite3_busy_timeout(s.db_, s.busy_timeout_ms_);
  }
  ~Tx() {
    if (!done) sqlite3_exec(store.db_, "ROLLBACK", nullptr, nullptr, nullptr);
    store.turns_->Leave();
  }
  void Commit() {
    Exec(store.db_, store.path_, "COMMIT");
    done = true;
  }
  CaseStore& store;
  bool done = false;
};

std::unique_ptr<CaseStore> CaseStore::Open(const std::string& path, int busy_timeout_ms) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    const std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error(fmt::format("{}: cannot open the case store: {}", path, why));
  }
  std::unique_ptr<CaseStore> s(new CaseStore(path, db));
  sqlite3_busy_timeout(db, busy_timeout_ms);
  s->turns_ = WriteTurns::For(path);
  s->busy_timeout_ms_ = busy_timeout_ms;
  try {
    if (!s->turns_->Enter(std::chrono::milliseconds(busy_timeout_ms))) throw BusyError{};
    const WriteTurns::LeaveAtEnd leave(*s->turns_);
    Exec(db, path, "PRAGMA journal_mode=WAL");
    Exec(db, path, kSchema);
  } catch (const BusyError&) {
    throw std::runtime_error(fmt::format(
        "{}: case store: the database stayed locked; cannot create the case tables", path));
  }
  return s;
}

CaseStore::CaseStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

CaseStore::~CaseStore() { sqlite3_close(db_); }

void CaseStore::Fail(std::string_view what) {
  throw std::runtime_error(fmt::format("{}: case store: {}: {}", path_, what, sqlite3_errmsg(db_)));
}

std::optional<std::string> CaseStore::CaseJson(int64_t id) {
  Stmt q(db_, path_,
         "SELECT id, title, status, assignee, disposition, created_at, created_by, updated_at, "
         "closed_at, (SELECT json_group_array(event_id) FROM (SELECT event_id FROM case_alerts "
         "WHERE case_id = cases.id ORDER BY event_id)) FROM cases WHERE id = ?1");
  q.Bind(1, id);
  if (!q.Step()) return std::nullopt;
  std::string out = fmt::format("{{\"id\":{},\"title\":", q.Int(0));
  q.AppendString(out, 1);
  const char* keys[] = {"status",     "assignee",   "disposition", "created_at",
                        "created_by", "updated_at", "closed_at"};
  for (int i = 0; i < 7; ++i) {
    out += fmt::format(",\"{}\":", keys[i]);
    q.AppendString(out, i + 2);
  }
  out += ",\"alerts\":";
  q.AppendRaw(out, 9);
  out += '}';
  return out;
}

void CaseStore::WriteAudit(std::string_view actor, std::string_view action, std::string_view object,
                           std::string_view before_json, std::string_view after_json) {
  Stmt ins(db_, path_,
           "INSERT INTO audit (at, actor, action, object, before, after) "
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  ins.Bind(1, Now()).Bind(2, actor).Bind(3, action).Bind(4, object);
  ins.BindNullable(5, before_json).BindNullable(6, after_json);
  ins.Step();
}

CaseResult<std::string> CaseStore::Create(const std::vector<std::string>& alert_ids,
                                          std::string_view title, std::string_view actor) {
  if (alert_ids.empty()) return Err(CaseErrc::kInvalid, "a case needs alerts");
  try {
    Tx tx(*this);
    for (const std::string& a : alert_ids) {
      Stmt q(db_, path_, "SELECT 1 FROM alerts WHERE event_id = ?1");
      if (!q.Bind(1, a).Step()) {
        return Err(CaseErrc::kNotFound, fmt::format("alert '{}' is not in the alert store", a));
      }
    }
    const std::string now = Now();
    Stmt ins(db_, path_,
             "INSERT INTO cases (title, status, created_at, created_by, updated_at) "
             "VALUES (?1, 'open', ?2, ?3, ?2)");
    const std::string fallback = fmt::format("{} alert{} from {}", alert_ids.size(),
                                             alert_ids.size() == 1 ? "" : "s", alert_ids.front());
    ins.Bind(1, title.empty() ? std::string_view(fallback) : title).Bind(2, now).Bind(3, actor);
    ins.Step();
    const int64_t id = sqlite3_last_insert_rowid(db_);
    for (const std::string& a : alert_ids) {
      Stmt link(db_, path_,
                "INSERT OR IGNORE INTO case_alerts (case_id, event_id) VALUES (?1, ?2)");
      link.Bind(1, id).Bind(2, a).Step();
    }
    std::string after = *CaseJson(id);
    WriteAudit(actor, "case.create", fmt::format("case/{}", id), "", after);
    tx.Commit();
    return after;
  } catch (const BusyError&) {
    return Busy();
  }
}

CaseResult<std::string> CaseStore::Get(int64_t id) {
  try {
    std::optional<std::string> c = CaseJson(id);
    if (!c) return Err(CaseErrc::kNotFound, fmt::format("no case {}", id));
    std::string out = std::move(*c);
    out.pop_back();
    out += ",\"alert_details\":[";
    {
      Stmt q(db_, path_,
             "SELECT a.decision FROM case_alerts c JOIN alerts a ON a.event_id = c.event_id "
             "WHERE c.case_id = ?1 ORDER BY a.event_time_us, a.event_id");
      q.Bind(1, id);
      for (bool first = true; q.Step(); first = false) {
        if (!first) out += ',';
        out += q.Text(0);
      }
    }
    out += "],\"comments\":[";
    {
      Stmt q(db_, path_,
             "SELECT id, author, text, created_at FROM case_comments WHERE case_id = ?1 ORDER BY "
             "id");
      q.Bind(1, id);
      for (bool first = true; q.Step(); first = false) {
        out += fmt::format("{}{{\"id\":{},\"author\":", first ? "" : ",", q.Int(0));
        q.AppendString(out, 1);
        out += ",\"text\":";
        q.AppendString(out, 2);
        out += ",\"at\":";
        q.AppendString(out, 3);
        out += '}';
      }
    }
    out += "],\"history\":";
    AuditFilter f;
    f.object = fmt::format("case/{}", id);
    f.limit = 1000;
    CaseResult<std::string> history = AuditLog(f);
    if (!history) return history;
    // Only the entries array of the log page.
    const std::string& h = history.value();
    const size_t at = h.find("\"entries\":");
    out.append(h, at + 10, h.size() - (at + 10) - 2);  // drop the closing "}\n"
    out += '}';
    return out;
  } catch (const BusyError&) {
    return Busy();
  }
}

CaseResult<std::string> CaseStore::List(const CaseFilter& f) {
  try {
    const std::string where = " WHERE (?1 = '' OR status = ?1) AND (?2 = '' OR assignee = ?2)";
    Stmt count(db_, path_, "SELECT count(*) FROM cases" + where);
    count.Bind(1, f.status).Bind(2, f.assignee).Step();
    std::string out = fmt::format("{{\"total\":{},\"limit\":{},\"offset\":{},\"cases\":[",
                                  count.Int(0), f.limit, f.offset);
    Stmt q(db_, path_, "SELECT id FROM cases" + where + " ORDER BY id DESC LIMIT ?3 OFFSET ?4");
    q.Bind(1, f.status).Bind(2, f.assignee).Bind(3, f.limit).Bind(4, f.offset);
    for (bool first = true; q.Step(); first = false) {
      if (!first) out += ',';
      out += CaseJson(q.Int(0)).value_or("null");
    }
    out += "]}\n";
    return out;
  } catch (const BusyError&) {
    return Busy();
  }
}

CaseResult<std::string> CaseStore::Assign(int64_t id, std::string_view assignee,
                                          std::string_view actor) {
  try {
    Tx tx(*this);
    const std::optional<std::string> before = CaseJson(id);
    if (!before) return Err(CaseErrc::kNotFound, fmt::format("no case {}", id));
    {
      Stmt q(db_, path_, "SELECT status FROM cases WHERE id = ?1");
      q.Bind(1, id).Step();
      if (q.Text(0) == "closed") {
        return Err(CaseErrc::kConflict,
                   fmt::format("case {} is closed; it cannot be reassigned", id));
      }
    }
    Stmt up(db_, path_, "UPDATE cases SET assignee = ?2, updated_at = ?3 WHERE id = ?1");
    up.Bind(1, id).BindNullable(2, assignee).Bind(3, Now()).Step();
    std::string after = *CaseJson(id);
    WriteAudit(actor, "case.assign", fmt::format("case/{}", id), *before, after);
    tx.Commit();
    return after;
  } catch (const BusyError&) {
    return Busy();
  }
}

CaseResult<std::string> CaseStore::Comment(int64_t id, std::string_view text,
                                           std::string_view actor) {
  if (text.empty()) return Err(CaseErrc::kInvalid, "a comment needs text");
  try {
    Tx tx(*this);
    if (!CaseJson(id)) return Err(CaseErrc::kNotFound, fmt::format("no case {}", id));
    const std::string now = Now();
    Stmt ins(db_, path_,
             "INSERT INTO case_comments (case_id, author, text, created_at) VALUES (?1, ?2, ?3, "
             "?4)");
    ins.Bind(1, id).Bind(2, actor).Bind(3, text).Bind(4, now).Step();
    std::string after =
        fmt::format("{{\"id\":{},\"case\":{},\"author\":", sqlite3_last_insert_rowid(db_), id);
    AppendJsonString(after, actor);
    after += ",\"text\":";
    AppendJsonString(after, text);
    after += ",\"at\":";
    AppendJsonString(after, now);
    after += '}';
    Stmt up(db_, path_, "UPDATE cases SET updated_at = ?2 WHERE id = ?1");
    up.Bind(1, id).Bind(2, now).Step();
    WriteAudit(actor, "case.comment", fmt::format("case/{}", id), "", after);
    tx.Commit();
    return after;
  } catch (const BusyError&) {
    return Busy();
  }
}

CaseResult<std::string> CaseStore::Close(int64_t id, std::string_view disposition,
                                         std::string_view comment, std::string_view actor) {
  if (disposition != "fraud" && disposition != "not_fraud" && disposition != "inconclusive") {
    return Err(CaseErrc::kInvalid, "'disposition' must be fraud, not_fraud or inconclusive");
  }
  try {
    Tx tx(*this);
    const std::optional<std::string> before = CaseJson(id);
    if (!before) return Err(CaseErrc::kNotFound, fmt::format("no case {}", id));
    {
      Stmt q(db_, path_, "SELECT status, disposition FROM cases WHERE id = ?1");
      q.Bind(1, id).Step();
      if (q.Text(0) == "closed") {
        return Err(CaseErrc::kConflict,
                   fmt::format("case {} is already closed (disposition {})", id, q.Text(1)));
      }
    }
    const std::string now = Now();
    Stmt up(db_, path_,
            "UPDATE cases SET status = 'closed', disposition = ?2, closed_at = ?3, updated_at = ?3 "
            "WHERE id = ?1");
    up.Bind(1, id).Bind(2, disposition).Bind(3, now).Step();
    if (!comment.empty()) {
      Stmt ins(db_, path_,
               "INSERT INTO case_comments (case_id, author, text, created_at) VALUES (?1, ?2, "
               "?3, ?4)");
      ins.Bind(1, id).Bind(2, actor).Bind(3, comment).Bind(4, now).Step();
    }
    std::string after = *CaseJson(id);
    WriteAudit(actor, "case.close", fmt::format("case/{}", id), *before, after);
    tx.Commit();
    return after;
  } catch (const BusyError&) {
    return Busy();
  }
}

CaseResult<bool> CaseStore::Audit(std::string_view actor, std::string_view action,
                                  std::string_view object, std::string_view before_json,
                                  std::string_view after_json) {
  try {
    Tx tx(*this);
    WriteAudit(actor, action, object, before_json, after_json);
    tx.Commit();
    return true;
  } catch (const BusyError&) {
    return Busy();
  }
}

CaseResult<std::string> CaseStore::AuditLog(const AuditFilter& f) {
  try {
    const std::string where =
        " WHERE (?1 = '' OR actor = ?1) AND (?2 = '' OR action = ?2) AND (?3 = '' OR object = ?3)";
    Stmt count(db_, path_, "SELECT count(*) FROM audit" + where);
    count.Bind(1, f.actor).Bind(2, f.action).Bind(3, f.object).Step();
    std::string out = fmt::format("{{\"total\":{},\"limit\":{},\"offset\":{},\"entries\":[",
                                  count.Int(0), f.limit, f.offset);
    Stmt q(db_, path_,
           "SELECT id, at, actor, action, object, before, after FROM audit" + where +
               " ORDER BY id DESC LIMIT ?4 OFFSET ?5");
    q.Bind(1, f.actor).Bind(2, f.action).Bind(3, f.object).Bind(4, f.limit).Bind(5, f.offset);
    for (bool first = true; q.Step(); first = false) {
      out += fmt::format("{}{{\"id\":{},\"at\":", first ? "" : ",", q.Int(0));
      q.AppendString(out, 1);
      out += ",\"actor\":";
      q.AppendString(out, 2);
      out += ",\"action\":";
      q.AppendString(out, 3);
      out += ",\"object\":";
      q.AppendString(out, 4);
      out += ",\"before\":";
      q.AppendRaw(out, 5);
      out += ",\"after\":";
      q.AppendRaw(out, 6);
      out += '}';
    }
    out += "]}\n";
    return out;
  } catch (const BusyError&) {
    return Busy();
  }
}

std::string CaseStore::CasesOf(std::string_view event_id) try {
  Stmt q(db_, path_, "SELECT case_id FROM case_alerts WHERE event_id = ?1 ORDER BY case_id");
  q.Bind(1, event_id);
  std::string out = "[";
  for (bool first = true; q.Step(); first = false) {
    out += fmt::format("{}{}", first ? "" : ",", q.Int(0));
  }
  return out + "]";
} catch (const BusyError&) {
  throw std::runtime_error(fmt::format("{}: case store: the database stayed locked", path_));
}

std::vector<std::pair<std::string, int>> CaseStore::Labels() try {
  Stmt q(db_, path_,
         "SELECT ca.event_id, c.disposition FROM cases c JOIN case_alerts ca ON ca.case_id = c.id "
         "WHERE c.status = 'closed' ORDER BY c.closed_at, c.id");
  std::map<std::string, int, std::less<>> latest;  // -1: inconclusive
  while (q.Step()) {
    const std::string_view d = q.Text(1);
    latest[std::string(q.Text(0))] = d == "fraud" ? 1 : d == "not_fraud" ? 0 : -1;
  }
  std::vector<std::pair<std::string, int>> out;
  for (auto& [id, label] : latest) {
    if (label >= 0) out.emplace_back(id, label);
  }
  return out;
} catch (const BusyError&) {
  throw std::runtime_error(fmt::format("{}: case store: the database stayed locked", path_));
}

}  // namespace vigil::sink
