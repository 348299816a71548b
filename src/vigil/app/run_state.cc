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
      ",\"completed\":{},\"offset\":{},\"decisions_bytes\":{},\"dead_letters_bytes\":{},"
      "\"late_bytes\":{},\"decisions_lines\":{},\"dead_letters_lines\":{},\"late_lines\":{},"
      "\"read\":{},\"decided\":{}}}\n",
      s.completed, c.offset, c.decisions_bytes, c.dead_letters_bytes, c.late_bytes,
      c.decisions_lines, c.dead_letters_lines, c.late_lines, m.read, m.decided);
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
    c.decisions_bytes = u("decisions_bytes");
    c.dead_letters_bytes = u("dead_letters_bytes");
    c.late_bytes = u("late_bytes");
    c.decisions_lines = u("decisions_lines");
    c.dead_letters_lines = u("dead_letters_lines");
    c.late_lines = u("late_lines");
    c.summary.read = u("read");
    c.summary.decided = u("decided");
  } catch (const simdjson::simdjson_error& e) {
    throw std::runtime_error(
        fmt::format("{}: missing or mistyped key ({}); remove it to start afresh", path, e.what()));
  }
  return s;
}

}  // namespace vigil::app
