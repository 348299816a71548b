#include "vigil/app/run_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <simdjson.h>

#include "vigil/common/json.h"

namespace vigil::app {

namespace {

std::string Serialize(const RunState& s) {
  const engine::CommitPoint& c = s.commit;
  const sink::RunSummary& m = c.summary;
  std::string out = "{\"version\":1,\"pipeline\":";
  AppendJsonString(out, s.pipeline);
  out += ",\"input\":";
  AppendJsonString(out, s.input);
  out += fmt::format(
      ",\"completed\":{},\"offset\":{},\"next_line\":{},\"decisions_bytes\":{},"
      "\"dead_letters_bytes\":{},\"late_bytes\":{},\"read\":{},\"decided\":{},"
      "\"dead_lettered\":{},\"duplicate\":{},\"late\":{},\"alerts\":{},\"watermark_us\":{},"
      "\"elapsed_seconds\":{},\"by_outcome\":[{}],\"dead_by_reason\":[{}]}}\n",
      s.completed, c.offset, c.next_line, c.decisions_bytes, c.dead_letters_bytes, c.late_bytes,
      m.read, m.decided, m.dead_lettered, m.duplicate, m.late, m.alerts, m.watermark_us,
      m.elapsed_seconds, fmt::join(m.by_outcome, ","), fmt::join(m.dead_by_reason, ","));
  return out;
}

}  // namespace

void SaveRunState(const std::string& path, const RunState& state) {
  const std::string tmp = path + ".tmp";
  const std::string text = Serialize(state);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error(fmt::format("{}: cannot write: {}", tmp, std::strerror(errno)));
  const ssize_t n = ::write(fd, text.data(), text.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size()) || std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
  }
}

std::optional<RunState> LoadRunState(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(ss.str()).get(doc) != simdjson::SUCCESS) {
    throw std::runtime_error(fmt::format("{}: not valid JSON; remove it to start afresh", path));
  }
  RunState s;
  try {
    auto u = [&](const char* key) { return static_cast<uint64_t>(int64_t(doc[key])); };
    s.pipeline = std::string(std::string_view(doc["pipeline"]));
    s.input = std::string(std::string_view(doc["input"]));
    s.completed = bool(doc["completed"]);
    engine::CommitPoint& c = s.commit;
    c.offset = u("offset");
    c.next_line = u("next_line");
    c.decisions_bytes = u("decisions_bytes");
    c.dead_letters_bytes = u("dead_letters_bytes");
    c.late_bytes = u("late_bytes");
    sink::RunSummary& m = c.summary;
    m.read = u("read");
    m.decided = u("decided");
    m.dead_lettered = u("dead_lettered");
    m.duplicate = u("duplicate");
    m.late = u("late");
    m.alerts = u("alerts");
    m.watermark_us = int64_t(doc["watermark_us"]);
    m.elapsed_seconds = double(doc["elapsed_seconds"]);
    auto counts = [&](const char* key, auto& into) {
      size_t i = 0;
      for (auto v : simdjson::dom::array(doc[key])) {
        if (i < into.size()) into[i++] = static_cast<uint64_t>(int64_t(v));
      }
    };
    counts("by_outcome", m.by_outcome);
    counts("dead_by_reason", m.dead_by_reason);
  } catch (const simdjson::simdjson_error& e) {
    throw std::runtime_error(
        fmt::format("{}: missing or mistyped key ({}); remove it to start afresh", path, e.what()));
  }
  return s;
}

}  // namespace vigil::app
