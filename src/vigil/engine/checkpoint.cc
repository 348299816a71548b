#include "vigil/engine/checkpoint.h"

#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>
#include <simdjson.h>

#include "vigil/common/file.h"
#include "vigil/common/json.h"
#include "vigil/common/snapshot_file.h"

namespace vigil::engine {

namespace fs = std::filesystem;

namespace {

constexpr int kManifestVersion = 1;

std::string CheckpointName(uint64_t seq) { return fmt::format("ckpt-{:06}", seq); }

template <size_t N>
std::string JsonArray(const std::array<uint64_t, N>& a) {
  std::string s = "[";
  for (size_t i = 0; i < N; ++i) s += fmt::format("{}{}", i ? "," : "", a[i]);
  return s + "]";
}

}  // namespace

std::string ManifestJson(const Manifest& m) {
  const sink::RunSummary& s = m.summary;
  std::string out = fmt::format("{{\"version\":{},\"seq\":{},\"checkpoint\":\"{}\",\"pipeline\":",
                                kManifestVersion, m.seq, CheckpointName(m.seq));
  AppendJsonString(out, m.pipeline);
  out += ",\"pipeline_hash\":";
  AppendJsonString(out, m.pipeline_hash);
  out += ",\"input\":";
  AppendJsonString(out, m.input);
  out += fmt::format(
      ",\"completed\":{},\"offset\":{},\"line\":{},\"decisions_bytes\":{},"
      "\"dead_letters_bytes\":{},\"late_bytes\":{},\"decisions_lines\":{},"
      "\"dead_letters_lines\":{},\"late_lines\":{},\"shards\":{},\"read\":{},\"decided\":{},"
      "\"dead_lettered\":{},\"duplicate\":{},\"late\":{},\"alerts\":{},\"by_outcome\":{},"
      "\"dead_by_reason\":{},\"rule_hits\":{},\"watermark_us\":{},\"elapsed_seconds\":{}}}\n",
      m.completed, m.offset, m.line, m.decisions_bytes, m.dead_letters_bytes, m.late_bytes,
      m.decisions_lines, m.dead_letters_lines, m.late_lines, m.shards, s.read, s.decided,
      s.dead_lettered, s.duplicate, s.late, s.alerts, JsonArray(s.by_outcome),
      JsonArray(s.dead_by_reason), sink::RuleHitsJson(s), s.watermark_us, s.elapsed_seconds);
  return out;
}

Manifest ParseManifest(const std::string& json, const std::string& path) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) {
    throw std::runtime_error(
        fmt::format("{}: not valid JSON; pass --overwrite to start afresh", path));
  }
  Manifest m;
  try {
    if (int64_t(doc["version"]) != kManifestVersion) {
      throw std::runtime_error(fmt::format("{}: checkpoint version {} (this vigil reads {})", path,
                                           int64_t(doc["version"]), kManifestVersion));
    }
    auto u = [&](const char* key) { return static_cast<uint64_t>(int64_t(doc[key])); };
    auto array = [&](const char* key, auto& out) {
      simdjson::dom::array a = doc[key];
      if (a.size() != out.size()) {
        throw std::runtime_error(
            fmt::format("{}: '{}' has {} entries, expected {}", path, key, a.size(), out.size()));
      }
      size_t i = 0;
      for (auto v : a) out[i++] = static_cast<uint64_t>(int64_t(v));
    };
    m.seq = u("seq");
    m.pipeline = std::string(std::string_view(doc["pipeline"]));
    m.pipeline_hash = std::string(std::string_view(doc["pipeline_hash"]));
    m.input = std::string(std::string_view(doc["input"]));
    m.completed = bool(doc["completed"]);
    m.offset = u("offset");
    m.line = u("line");
    m.decisions_bytes = u("decisions_bytes");
    m.dead_letters_bytes = u("dead_letters_bytes");
    m.late_bytes = u("late_bytes");
    m.decisions_lines = u("decisions_lines");
    m.dead_letters_lines = u("dead_letters_lines");
    m.late_lines = u("late_lines");
    m.shards = static_cast<int>(u("shards"));
    sink::RunSummary& s = m.summary;
    s.read = u("read");
    s.decided = u("decided");
    s.dead_lettered = u("dead_lettered");
    s.duplicate = u("duplicate");
    s.late = u("late");
    s.alerts = u("alerts");
    array("by_outcome", s.by_outcome);
    array("dead_by_reason", s.dead_by_reason);
    for (auto [id, n] : simdjson::dom::object(doc["rule_hits"])) {
      s.rule_hits[std::string(id)] = static_cast<uint64_t>(int64_t(n));
    }
    s.watermark_us = int64_t(doc["watermark_us"]);
    s.elapsed_seconds = double(doc["elapsed_seconds"]);
    s.input = m.input;
  } catch (const simdjson::simdjson_error& e) {
    throw std::runtime_error(fmt::format(
        "{}: missing or mistyped key ({}); pass --overwrite to start afresh", path, e.what()));
  }
  return m;
}

CheckpointStore::CheckpointStore(std::string dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
}

std::optional<Manifest> CheckpointStore::Latest() const {
  const std::string path = (fs::path(dir_) / "latest.json").string();
  const std::optional<std::string> text = ReadWholeFile(path);
  if (!text) return std::nullopt;
  return ParseManifest(*text, path);
}

std::string CheckpointStore::PathOf(uint64_t seq) const {
  return (fs::path(dir_) / CheckpointName(seq)).string();
}

std::string CheckpointStore::Begin(uint64_t seq) const {
  const std::string path = PathOf(seq);
  fs::remove_all(path);  // left by a crash before its commit
  fs::create_directories(path);
  return path;
}

void CheckpointStore::Commit(const Manifest& m) const {
  SyncDirectory(PathOf(m.seq));
  SyncDirectory(dir_);
  WriteFileAtomically((fs::path(dir_) / "latest.json").string(), ManifestJson(m));
  // Keep the newest and the one before it; older ones go. (Newer ones are being written:
  // the router starts the next checkpoint before the writer commits this one.)
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("ckpt-", 0) != 0) continue;
    uint64_t seq = 0;
    try {
      seq = std::stoull(name.substr(5));
    } catch (const std::exception&) {
      continue;
    }
    if (seq + 1 < m.seq) fs::remove_all(entry.path());
  }
}

void CheckpointStore::Clear() const {
  fs::remove((fs::path(dir_) / "latest.json"));
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.is_directory() && entry.path().filename().string().rfind("ckpt-", 0) == 0) {
      fs::remove_all(entry.path());
    }
  }
}

}  // namespace vigil::engine
