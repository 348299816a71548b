#include "vigil/sink/alert_store.h"

#include <sqlite3.h>

#include <chrono>
#include <stdexcept>

#include <fmt/format.h>
#include <simdjson.h>

#include "vigil/common/time.h"

namespace vigil::sink {

namespace {

constexpr int kBusyTimeoutMs = 5000;  // for this process's turn, and SQLite's lock
constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS alerts (
  event_id      TEXT PRIMARY KEY,
  event_time_us INTEGER NOT NULL,
  event_time    TEXT NOT NULL,
  entity        TEXT NOT NULL,
  outcome       TEXT NOT NULL,
  score         REAL NOT NULL,
  rules         TEXT NOT NULL,   -- rule ids of the reasons, comma-separated
  narrative     TEXT NOT NULL,
  rules_version INTEGER NOT NULL,
  decision      TEXT NOT NULL    -- the decision line as written
);
CREATE TABLE IF NOT EXISTS alert_rules (
  event_id TEXT NOT NULL,
  rule_id  TEXT NOT NULL,
  PRIMARY KEY (rule_id, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (event_time_us);
CREATE INDEX IF NOT EXISTS alerts_by_entity ON alerts (entity, event_time_us);
)";

std::string_view Text(sqlite3_stmt* s, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s, col)))
           : std::string_view();
}

void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

// The row a statement selecting event_id, event_time, entity, outcome, score, rules,
// narrative, rules_version, decision (in that order) stands on.
AlertStore::Row RowAt(sqlite3_stmt* s) {
  AlertStore::Row r;
  r.event_id = Text(s, 0);
  r.event_time = Text(s, 1);
  r.entity = Text(s, 2);
  r.outcome = Text(s, 3);
  r.score = sqlite3_column_double(s, 4);
  r.rules = Text(s, 5);
  r.narrative = Text(s, 6);
  r.rules_version = sqlite3_column_int64(s, 7);
  r.decision = Text(s, 8);
  return r;
}

}  // namespace

std::unique_ptr<AlertStore> AlertStore::Open(const std::string& path, bool read_only) {
  sqlite3* db = nullptr;
  const int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    const std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error(fmt::format("{}: cannot open the alert store: {}", path, why));
  }
  std::unique_ptr<AlertStore> s(new AlertStore(path, db));
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  if (!read_only) {
    s->turns_ = WriteTurns::For(path);
    s->TakeTurn();
    {
      const WriteTurns::LeaveAtEnd leave(*s->turns_);
      s->Exec("PRAGMA journal_mode=WAL");
      s->Exec("PRAGMA synchronous=NORMAL");
      s->Exec(kSchema);
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO alerts (event_id, event_time_us, event_time, "
                           "entity, outcome, score, rules, narrative, rules_version, decision) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                           -1, &s->insert_, nullptr) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO alert_rules (event_id, rule_id) VALUES (?1, ?2)",
                           -1, &s->insert_rule_, nullptr) != SQLITE_OK) {
      s->Fail("cannot prepare statements");
    }
  }
  return s;
}

AlertStore::AlertStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

AlertStore::~AlertStore() {
  if (in_transaction_) {
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    turns_->Leave();
  }
  sqlite3_finalize(insert_);
  sqlite3_finalize(insert_rule_);
  sqlite3_close(db_);
}

void AlertStore::Fail(std::string_view what) {
  throw std::runtime_error(
      fmt::format("{}: alert store: {}: {}", path_, what, sqlite3_errmsg(db_)));
}

void AlertStore::TakeTurn() {
  if (!turns_) throw std::runtime_error(fmt::format("{}: alert store: opened read-only", path_));
  if (!turns_->EnterAfterOthers(std::chrono::milliseconds(kBusyTimeoutMs))) {
    throw std::runtime_error(
        fmt::format("{}: alert store: another writer in this process held the database for {} ms",
                    path_, kBusyTimeoutMs));
  }
}

void AlertStore::Exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) Fail(sql);
}

void AlertStore::Add(std::string_view line) {
  simdjson::dom::parser parser;
  simdjson::dom::element d;
  if (parser.parse(line.data(), line.size()).get(d) != simdjson::SUCCESS) {
    throw std::runtime_error(fmt::format("{}: alert store: not a decision line", path_));
  }
  if (!in_transaction_) {
    TakeTurn();  // until Commit: a case written meanwhile waits for that
    try {
      Exec("BEGIN");
    } catch (...) {
      turns_->Leave();
      throw;
    }
    in_transaction_ = true;
  }
  std::string rules;
  simdjson::dom::array reasons;
  if (d["reasons"].get(reasons) == simdjson::SUCCESS) {
    for (simdjson::dom::element r : reasons) {
      std::string_view code;
      if (r["code"].get(code) != simdjson::SUCCESS) continue;
      if (!rules.empty()) rules += ',';
      rules += code;
    }
  }
  std::string_view id, time, key, outcome, narrative;
  double score = 0;
  int64_t version = 0;
  auto need = [&](const char* field, auto& out) {
    if (d[field].get(out) != simdjson::SUCCESS) {
      throw std::runtime_error(
          fmt::format("{}: alert store: the decision line lacks '{}'", path_, field));
    }
  };
  need("event_id", id);
  need("event_time", time);
  need("key", key);
  need("outcome", outcome);
  need("score", score);
  // "" (not a null view): SQLite binds a null pointer as NULL, which the NOT NULL column
  // would refuse and INSERT OR IGNORE would drop without a word.
  if (d["narrative"].get(narrative) != simdjson::SUCCESS) narrative = "";
  if (d["rules_version"].get(version) != simdjson::SUCCESS) version = 0;
  const std::optional<int64_t> time_us = ParseIso8601(time);
  sqlite3_reset(insert_);
  BindText(insert_, 1, id);
  sqlite3_bind_int64(insert_, 2, time_us.value_or(0));
  BindText(insert_, 3, time);
  BindText(insert_, 4, key);
  BindText(insert_, 5, outcome);
  sqlite3_bind_double(insert_, 6, score);
  BindText(insert_, 7, rules);
  BindText(insert_, 8, narrative);
  sqlite3_bind_int64(insert_, 9, version);
  const std::string_view stored = line.substr(0, line.size() - (line.ends_with('\n') ? 1 : 0));
  BindText(insert_, 10, stored);
  if (sqlite3_step(insert_) != SQLITE_DONE) Fail("cannot insert an alert");
  if (listener_ && sqlite3_changes(db_) > 0) pending_.emplace_back(stored);
  for (simdjson::dom::element r : reasons) {
    std::string_view code;
    if (r["code"].get(code) != simdjson::SUCCESS) continue;
    sqlite3_reset(insert_rule_);
    BindText(insert_rule_, 1, id);
    BindText(insert_rule_, 2, code);
    if (sqlite3_step(insert_rule_) != SQLITE_DONE) Fail("cannot insert an alert's rule");
  }
}

void AlertStore::Commit() {
  if (!in_transaction_) return;
  try {
    Exec("COMMIT");
  } catch (...) {  // the run fails; the turn must not stay held by a dead transaction
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    in_transaction_ = false;
    turns_->Leave();
    throw;
  }
  in_transaction_ = false;
  turns_->Leave();
  if (listener_ && !pending_.empty()) {
    listener_->OnCommit(pending_);
    pending_.clear();
  }
}

std::vector<AlertStore::Row> AlertStore::Query(const Filter& f) {
  std::string sql =
      "SELECT event_id, event_time, entity, outcome, score, rules, narrative, rules_version, "
      "decision FROM alerts WHERE 1";
  if (f.since_us) sql += " AND event_time_us >= ?1";
  if (f.until_us) sql += " AND event_time_us < ?2";
  if (!f.rule.empty()) {
    sql += " AND event_id IN (SELECT event_id FROM alert_rules WHERE rule_id = ?3)";
  }
  if (!f.entity.empty()) sql += " AND entity = ?4";
  if (!f.outcome.empty()) sql += " AND outcome = ?5";
  sql += " ORDER BY event_time_us DESC, event_id DESC LIMIT ?6 OFFSET ?7";
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) Fail("cannot query");
  if (f.since_us) sqlite3_bind_int64(s, 1, *f.since_us);
  if (f.until_us) sqlite3_bind_int64(s, 2, *f.until_us);
  if (!f.rule.empty()) BindText(s, 3, f.rule);
  if (!f.entity.empty()) BindText(s, 4, f.entity);
  if (!f.outcome.empty()) BindText(s, 5, f.outcome);
  sqlite3_bind_int64(s, 6, f.limit);
  sqlite3_bind_int64(s, 7, f.offset);
  std::vector<Row> rows;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    rows.push_back(RowAt(s));
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) Fail("query failed");
  return rows;
}

std::optional<AlertStore::Row> AlertStore::Get(std::string_view event_id) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "SELECT event_id, event_time, entity, outcome, score, rules, narrative, "
                         "rules_version, decision FROM alerts WHERE event_id = ?1",
                         -1, &s, nullptr) != SQLITE_OK) {
    Fail("cannot query");
  }
  BindText(s, 1, event_id);
  std::optional<Row> row;
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    row = RowAt(s);
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) Fail("query failed");
  return row;
}

int64_t AlertStore::Count() {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT count(*) FROM alerts", -1, &s, nullptr) != SQLITE_OK) {
    Fail("cannot count");
  }
  int64_t n = 0;
  if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return n;
}

}  // namespace vigil::sink
