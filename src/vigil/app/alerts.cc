#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "vigil/app/commands.h"
#include "vigil/common/time.h"
#include "vigil/sink/alert_store.h"

namespace vigil::app {

namespace {

std::optional<int64_t> Time(const std::string& text, const char* flag) {
  if (text.empty()) return std::nullopt;
  const std::optional<int64_t> us = ParseIso8601(text);
  if (!us) {
    throw std::invalid_argument(fmt::format(
        "{}: expected an ISO-8601 time like 2026-01-05T10:00:00Z; got '{}'", flag, text));
  }
  return us;
}

// The last four characters: alert listings show card numbers and account ids masked.
std::string Masked(const std::string& s) {
  return "\u2026" + s.substr(s.size() > 4 ? s.size() - 4 : 0);
}

}  // namespace

int Alerts(const AlertsArgs& a) {
  sink::AlertStore::Filter f;
  f.since_us = Time(a.since, "--since");
  f.until_us = Time(a.until, "--until");
  f.rule = a.rule;
  f.entity = a.entity;
  f.outcome = a.outcome;
  f.limit = a.limit;
  f.offset = a.offset;
  auto store = sink::AlertStore::Open(a.db, /*read_only=*/true);
  const auto rows = store->Query(f);
  if (a.json) {
    for (const auto& r : rows) std::printf("%s\n", r.decision.c_str());
    return 0;
  }
  for (const auto& r : rows) {
    std::printf("%s  %-6s %6.0f  %-6s %-18s %s  (rules v%lld: %s)\n", r.event_time.c_str(),
                r.outcome.c_str(), r.score, Masked(r.entity).c_str(), r.event_id.c_str(),
                r.narrative.c_str(), static_cast<long long>(r.rules_version), r.rules.c_str());
  }
  std::fprintf(stderr, "%zu of %lld alerts in %s\n", rows.size(),
               static_cast<long long>(store->Count()), a.db.c_str());
  return 0;
}

}  // namespace vigil::app
