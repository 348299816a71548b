#include "vigil/config/internal/reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <tuple>

#include <fmt/format.h>

#include "vigil/config/pipeline.h"

namespace vigil::config_internal {

namespace {
std::string Join(const std::string& where, const char* key) {
  return where.empty() ? std::string(key) : where + "." + key;
}
}  // namespace

void Reader::Fail(const YAML::Node& at, const std::string& where, const std::string& what) {
  const YAML::Mark m = at.Mark();
  if (m.line >= 0) {
    diagnostics_.push_back({m.line, m.column,
                            fmt::format("{}:{}:{}: {}: {}", path_, m.line + 1, m.column + 1,
                                        where.empty() ? "pipeline" : where, what)});
  } else {
    diagnostics_.push_back({-1, -1, fmt::format("{}: {}: {}", path_, where, what)});
  }
}

void Reader::FailAt(int line, int column, const std::string& where, const std::string& what) {
  diagnostics_.push_back({line, column,
                          fmt::format("{}:{}:{}: {}: {}", path_, line + 1, column + 1,
                                      where.empty() ? "pipeline" : where, what)});
}

void Reader::AllowKeys(const YAML::Node& map, const std::string& where,
                       std::initializer_list<const char*> allowed) {
  if (!map.IsMap()) {
    Fail(map, where, "expected a mapping");
    return;
  }
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>("");
    bool known = false;
    for (const char* a : allowed) known = known || key == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      Fail(kv.first, Join(where, key.c_str()),
           fmt::format("unknown key '{}'; expected one of: {}", key, list));
    }
  }
}

std::optional<YAML::Node> Reader::Get(const YAML::Node& map, const char* key,
                                      const std::string& where, bool required) {
  // Copy-construct: yaml-cpp's Node::operator= would assign through to the referenced node.
  const YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) {
    if (required) Fail(map, Join(where, key), "missing required key");
    return std::nullopt;
  }
  if (!n.IsScalar()) {
    Fail(n, Join(where, key), "expected a single value, not a list or mapping");
    return std::nullopt;
  }
  return n;
}

bool Reader::String(const YAML::Node& map, const char* key, const std::string& where,
                    std::string& out, bool required) {
  const std::optional<YAML::Node> got = Get(map, key, where, required);
  if (!got) return false;
  const YAML::Node& n = *got;
  out = n.Scalar();
  return true;
}

bool Reader::Int(const YAML::Node& map, const char* key, const std::string& where, int64_t& out,
                 bool required) {
  const std::optional<YAML::Node> got = Get(map, key, where, required);
  if (!got) return false;
  const YAML::Node& n = *got;
  const std::string& s = n.Scalar();
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    Fail(n, Join(where, key), fmt::format("expected an integer; got '{}'", s));
    return false;
  }
  out = v;
  return true;
}

bool Reader::Double(const YAML::Node& map, const char* key, const std::string& where, double& out,
                    bool required) {
  const std::optional<YAML::Node> got = Get(map, key, where, required);
  if (!got) return false;
  const YAML::Node& n = *got;
  const std::string& s = n.Scalar();
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) {
    Fail(n, Join(where, key), fmt::format("expected a finite number; got '{}'", s));
    return false;
  }
  out = v;
  return true;
}

bool Reader::Bool(const YAML::Node& map, const char* key, const std::string& where, bool& out,
                  bool required) {
  const std::optional<YAML::Node> got = Get(map, key, where, required);
  if (!got) return false;
  const YAML::Node& n = *got;
  const std::string& s = n.Scalar();
  if (s == "true" || s == "yes" || s == "on") {
    out = true;
  } else if (s == "false" || s == "no" || s == "off") {
    out = false;
  } else {
    Fail(n, Join(where, key), fmt::format("expected true or false; got '{}'", s));
    return false;
  }
  return true;
}

void Reader::Throw() {
  if (diagnostics_.empty()) return;
  std::stable_sort(diagnostics_.begin(), diagnostics_.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
  std::vector<std::string> lines;
  for (auto& d : diagnostics_) lines.push_back(std::move(d.text));
  diagnostics_.clear();
  throw config::ConfigError(std::move(lines));
}

}  // namespace vigil::config_internal
