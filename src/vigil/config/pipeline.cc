#include "vigil/config/pipeline.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <type_traits>

#include <fmt/format.h>

#include "vigil/common/file.h"
#include "vigil/common/hash.h"
#include "vigil/config/internal/reader.h"

namespace vigil::config {

ConfigError::ConfigError(std::vector<std::string> diagnostics)
    : std::runtime_error([&] {
        std::string all;
        for (const auto& d : diagnostics) {
          if (!all.empty()) all += '\n';
          all += d;
        }
        return all;
      }()),
      diagnostics_(std::move(diagnostics)) {}

int Pipeline::FieldIndex(std::string_view field) const {
  for (size_t i = 0; i < input.fields.size(); ++i) {
    if (input.fields[i].name == field) return static_cast<int>(i);
  }
  return -1;
}

namespace {

using config_internal::Reader;

std::optional<FieldType> ParseFieldType(const std::string& s) {
  if (s == "int") return FieldType::kInt;
  if (s == "float") return FieldType::kFloat;
  if (s == "string") return FieldType::kString;
  if (s == "bool") return FieldType::kBool;
  if (s == "timestamp") return FieldType::kTimestamp;
  if (s == "lat") return FieldType::kLat;
  if (s == "lon") return FieldType::kLon;
  return std::nullopt;
}

void ReadField(Reader& r, const YAML::Node& n, const std::string& where, InputSpec& input) {
  FieldSpec f;
  f.line = n.Mark().line + 1;
  r.AllowKeys(n, where, {"name", "from", "column", "type", "required", "format", "min", "max"});
  if (!r.String(n, "name", where, f.name, /*required=*/true)) return;
  f.from = f.name;
  r.String(n, "from", where, f.from, false);
  int64_t column = -1;
  if (r.Int(n, "column", where, column, false)) {
    if (column < 0) r.Fail(n["column"], where + ".column", "expected a column index >= 0");
    f.column = static_cast<int>(column);
  }
  std::string type;
  if (r.String(n, "type", where, type, true)) {
    if (auto t = ParseFieldType(type)) {
      f.type = *t;
    } else {
      r.Fail(n["type"], where + ".type",
             fmt::format("expected one of int, float, string, bool, timestamp, lat, lon; got '{}'",
                         type));
    }
  }
  r.Bool(n, "required", where, f.required, false);
  std::string format;
  if (r.String(n, "format", where, format, false)) {
    if (f.type != FieldType::kTimestamp) {
      r.Fail(n["format"], where + ".format", "'format' applies only to timestamp fields");
    } else if (auto tf = ParseTimeFormat(format)) {
      f.time_format = *tf;
    } else {
      r.Fail(n["format"], where + ".format",
             fmt::format("expected one of iso8601, epoch_s, epoch_ms, epoch_us, epoch_ns; got '{}'",
                         format));
    }
  }
  double bound = 0;
  if (r.Double(n, "min", where, bound, false)) f.min = bound;
  if (r.Double(n, "max", where, bound, false)) f.max = bound;
  for (const auto& other : input.fields) {
    if (other.name == f.name) {
      r.Fail(n["name"], where + ".name", fmt::format("duplicate field name '{}'", f.name));
    }
  }
  input.fields.push_back(std::move(f));
}

void ReadInput(Reader& r, const YAML::Node& n, Pipeline& p) {
  r.AllowKeys(n, "input", {"format", "csv", "max_record_bytes", "fields"});
  std::string format = "jsonl";
  r.String(n, "format", "input", format, false);
  if (format == "jsonl" || format == "json") {
    p.input.format = InputFormat::kJsonl;
  } else if (format == "csv") {
    p.input.format = InputFormat::kCsv;
  } else {
    r.Fail(n["format"], "input.format", fmt::format("expected jsonl or csv; got '{}'", format));
  }
  if (const YAML::Node csv = n["csv"]) {
    r.AllowKeys(csv, "input.csv", {"delimiter", "header"});
    std::string delim = ",";
    if (r.String(csv, "delimiter", "input.csv", delim, false)) {
      if (delim == "\\t" || delim == "tab") delim = "\t";
      if (delim.size() != 1 || delim[0] == '"' || delim[0] == '\n' || delim[0] == '\r') {
        r.Fail(csv["delimiter"], "input.csv.delimiter",
               "expected a single character other than a quote or newline");
      } else {
        p.input.delimiter = delim[0];
      }
    }
    r.Bool(csv, "header", "input.csv", p.input.header, false);
  }
  int64_t max_bytes = static_cast<int64_t>(p.input.max_record_bytes);
  if (r.Int(n, "max_record_bytes", "input", max_bytes, false)) {
    if (max_bytes < 16 || max_bytes > (64 << 20)) {
      r.Fail(n["max_record_bytes"], "input.max_record_bytes",
             "expected a size between 16 and 67108864 bytes");
    } else {
      p.input.max_record_bytes = static_cast<size_t>(max_bytes);
    }
  }
  const YAML::Node fields = n["fields"];
  if (!fields) {
    r.Fail(n, "input.fields", "missing: the list of input fields (name, type)");
    return;
  }
  if (!fields.IsSequence() || fields.size() == 0) {
    r.Fail(fields, "input.fields", "expected a non-empty list of fields");
    return;
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string where = fmt::format("input.fields[{}]", i);
    if (!fields[i].IsMap()) {
      r.Fail(fields[i], where, "expected a mapping like {name: amount, type: float}");
      continue;
    }
    ReadField(r, fields[i], where, p.input);
  }
  if (p.input.format == InputFormat::kCsv && !p.input.header) {
    for (size_t i = 0; i < p.input.fields.size(); ++i) {
      if (p.input.fields[i].column < 0) {
        r.Fail(fields[i], fmt::format("input.fields[{}]", i),
               "a CSV without a header needs 'column: N' on every field");
      }
    }
  }
}

// Resolves one of event.id / event.time / event.key to a field index and checks its type.
void ResolveEventField(Reader& r, const YAML::Node& ev, const char* key, Pipeline& p, size_t& index,
                       FieldType want) {
  std::string name;
  if (!r.String(ev, key, "event", name, true)) return;
  const int i = p.FieldIndex(name);
  if (i < 0) {
    r.Fail(ev[key], fmt::format("event.{}", key),
           fmt::format("unknown field '{}': declare it under input.fields", name));
    return;
  }
  const FieldSpec& f = p.input.fields[static_cast<size_t>(i)];
  if (f.type != want) {
    r.Fail(ev[key], fmt::format("event.{}", key),
           fmt::format("field '{}' must have type {}; it is declared as {}", name,
                       FieldTypeName(want), FieldTypeName(f.type)));
  }
  if (!f.required) {
    r.Fail(ev[key], fmt::format("event.{}", key), fmt::format("field '{}' must be required", name));
  }
  index = static_cast<size_t>(i);
}

void ReadDuration(Reader& r, const YAML::Node& n, const char* key, const std::string& where,
                  int64_t& out) {
  std::string text;
  if (!r.String(n, key, where, text, false)) return;
  if (auto d = ParseDuration(text)) {
    out = *d;
  } else {
    r.Fail(n[key], where + "." + key,
           fmt::format("expected a duration like 500ms, 30s, 10m, 24h or 7d; got '{}'", text));
  }
}

// api.tokens: [{name, role, token_env | token_file}, ...]. The secrets stay outside the file;
// a token_env that is not set is reported here, so `vigil check` catches it before a run.
void ReadApiTokens(Reader& r, const YAML::Node& tokens, Pipeline& p) {
  if (!tokens.IsSequence()) {
    r.Fail(tokens, "api.tokens",
           "expected a list like [{name: ops, role: admin, token_env: VIGIL_ADMIN_TOKEN}]");
    return;
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    const YAML::Node t = tokens[i];
    const std::string where = fmt::format("api.tokens[{}]", i);
    if (!t.IsMap()) {
      r.Fail(t, where, "expected a mapping like {name: ops, role: admin, token_env: VAR}");
      continue;
    }
    r.AllowKeys(t, where, {"name", "role", "token_env", "token_file", "token"});
    ApiTokenSpec spec;
    spec.line = t.Mark().line + 1;
    r.String(t, "name", where, spec.name, true);
    if (r.String(t, "role", where, spec.role, true) && spec.role != "viewer" &&
        spec.role != "analyst" && spec.role != "admin") {
      r.Fail(t["role"], where + ".role",
             fmt::format("expected viewer, analyst or admin; got '{}'", spec.role));
    }
    if (t["token"]) {
      r.Fail(t["token"], where + ".token",
             "secrets do not go in the pipeline file: use token_env: VAR or token_file: PATH");
    }
    const bool env = r.String(t, "token_env", where, spec.token_env, false);
    const bool file = r.String(t, "token_file", where, spec.token_file, false);
    if (env == file) {
      r.Fail(t, where, "expected exactly one of token_env (an environment variable) or token_file");
    } else if (env && !std::getenv(spec.token_env.c_str())) {
      r.Fail(t["token_env"], where + ".token_env",
             fmt::format("${} is not set: export it with the token's secret, e.g. export {}=$("
                         "openssl rand -hex 32)",
                         spec.token_env, spec.token_env));
    }
    for (const auto& other : p.api_tokens) {
      if (other.name == spec.name) {
        r.Fail(t["name"], where + ".name", fmt::format("duplicate token name '{}'", spec.name));
      }
    }
    p.api_tokens.push_back(std::move(spec));
  }
}

// api.tls: {cert: PEM, key: PEM}, both required, each a readable file.
void ReadApiTls(Reader& r, const YAML::Node& tls, Pipeline& p) {
  if (!tls.IsMap()) {
    r.Fail(tls, "api.tls", "expected a mapping: {cert: FILE.pem, key: FILE.pem}");
    return;
  }
  r.AllowKeys(tls, "api.tls", {"cert", "key"});
  const std::filesystem::path base = std::filesystem::path(p.path).parent_path();
  for (const auto& [key, out] : {std::pair<const char*, std::string*>{"cert", &p.api_tls_cert},
                                 std::pair<const char*, std::string*>{"key", &p.api_tls_key}}) {
    std::string file;
    if (!r.String(tls, key, "api.tls", file, true)) continue;
    *out = (base / file).string();
    if (std::FILE* f = std::fopen(out->c_str(), "rb")) {
      std::fclose(f);
    } else {
      r.Fail(tls[key], fmt::format("api.tls.{}", key),
             fmt::format("cannot read '{}': expected a PEM file", *out));
    }
  }
}

Pipeline Parse(const YAML::Node& root, const std::string& path) {
  Reader r(path);
  Pipeline p;
  p.path = path;
  p.root = root;
  if (!root.IsMap()) {
    r.Fail(root, "pipeline", "expected a mapping at the top level (name, input, event, ...)");
    r.Throw();
  }
  // Sections that later stages own are accepted here and parsed by them.
  r.AllowKeys(root, "", {"name",     "description", "input",  "event",      "dedup",
                         "lateness", "outputs",     "engine", "checkpoint", "privacy",
                         "entities", "features",    "lists",  "rules",      "rules_file",
                         "model",    "decision",    "alerts", "api",        "kafka"});
  r.String(root, "name", "", p.name, true);
  r.String(root, "description", "", p.description, false);
  if (const YAML::Node in = root["input"]; in && in.IsMap()) {
    ReadInput(r, in, p);
  } else {
    r.Fail(in ? in : root, "input", "missing or not a mapping: input format and fields");
  }
  if (const YAML::Node ev = root["event"]; ev && ev.IsMap() && !p.input.fields.empty()) {
    r.AllowKeys(ev, "event", {"id", "time", "key"});
    ResolveEventField(r, ev, "id", p, p.id_field, FieldType::kString);
    ResolveEventField(r, ev, "time", p, p.time_field, FieldType::kTimestamp);
    ResolveEventField(r, ev, "key", p, p.key_field, FieldType::kString);
  } else if (!root["event"]) {
    r.Fail(root, "event", "missing: event.id, event.time and event.key name input fields");
  }
  if (const YAML::Node d = root["dedup"]) {
    r.AllowKeys(d, "dedup", {"horizon", "max_ids"});
    ReadDuration(r, d, "horizon", "dedup", p.dedup_horizon_us);
    int64_t max_ids = static_cast<int64_t>(p.dedup_max_ids);
    if (r.Int(d, "max_ids", "dedup", max_ids, false)) {
      if (max_ids < 1)
        r.Fail(d["max_ids"], "dedup.max_ids", "expected a positive number");
      else
        p.dedup_max_ids = static_cast<size_t>(max_ids);
    }
  }
  if (const YAML::Node l = root["lateness"]) {
    r.AllowKeys(l, "lateness", {"allowed", "order"});
    ReadDuration(r, l, "allowed", "lateness", p.allowed_lateness_us);
    std::string order = "arrival";
    if (r.String(l, "order", "lateness", order, false)) {
      if (order == "event_time") {
        p.event_time_order = true;
      } else if (order != "arrival") {
        r.Fail(l["order"], "lateness.order",
               fmt::format("expected arrival or event_time; got '{}'", order));
      }
    }
  }
  if (const YAML::Node e = root["engine"]) {
    r.AllowKeys(e, "engine", {"workers", "batch_size", "batches_in_flight"});
    // engine.KEY, an integer in [lo, hi], into `to` (left as it is when absent or bad).
    auto in_range = [&](const char* key, int64_t lo, int64_t hi, auto& to) {
      int64_t v = static_cast<int64_t>(to);
      if (!r.Int(e, key, "engine", v, false)) return;
      if (v < lo || v > hi) {
        r.Fail(e[key], fmt::format("engine.{}", key), fmt::format("expected {}..{}", lo, hi));
      } else {
        to = static_cast<std::remove_reference_t<decltype(to)>>(v);
      }
    };
    in_range("workers", 0, 256, p.workers);
    in_range("batch_size", 1, 65536, p.batch_size);
    in_range("batches_in_flight", 3, 4096, p.batches_in_flight);
  }
  if (const YAML::Node pv = root["privacy"]) {
    r.AllowKeys(pv, "privacy", {"tokenize", "key_env"});
    r.String(pv, "key_env", "privacy", p.token_key_env, false);
    if (const YAML::Node t = pv["tokenize"]) {
      if (!t.IsSequence()) {
        r.Fail(t, "privacy.tokenize", "expected a list of string fields, e.g. [card_id]");
      } else {
        p.tokenized.assign(p.input.fields.size(), false);
        for (const auto& item : t) {
          const std::string name = item.as<std::string>("");
          const int f = p.FieldIndex(name);
          if (f < 0) {
            r.Fail(item, "privacy.tokenize", fmt::format("unknown field '{}'", name));
          } else if (p.input.fields[static_cast<size_t>(f)].type != FieldType::kString) {
            r.Fail(item, "privacy.tokenize",
                   fmt::format("field '{}' is {}: only string fields are tokenized", name,
                               FieldTypeName(p.input.fields[static_cast<size_t>(f)].type)));
          } else {
            p.tokenized[static_cast<size_t>(f)] = true;
          }
        }
      }
    }
  }
  if (const YAML::Node a = root["api"]) {
    r.AllowKeys(a, "api", {"listen", "tokens", "tls"});
    r.String(a, "listen", "api", p.api_listen, false);
    if (const YAML::Node tokens = a["tokens"]) ReadApiTokens(r, tokens, p);
    if (const YAML::Node tls = a["tls"]) ReadApiTls(r, tls, p);
  }
  if (const YAML::Node a = root["alerts"]) {
    r.AllowKeys(a, "alerts", {"store"});
    r.String(a, "store", "alerts", p.alerts_store, false);
  }
  if (const YAML::Node c = root["checkpoint"]) {
    r.AllowKeys(c, "checkpoint", {"dir", "interval"});
    r.String(c, "dir", "checkpoint", p.checkpoint_dir, false);
    ReadDuration(r, c, "interval", "checkpoint", p.checkpoint_interval_us);
    if (p.checkpoint_interval_us <= 0) {
      r.Fail(c["interval"], "checkpoint.interval", "expected a positive duration");
    }
  }
  if (const YAML::Node o = root["outputs"]) {
    r.AllowKeys(o, "outputs", {"dir", "decisions", "dead_letters", "late", "include_event"});
    r.String(o, "dir", "outputs", p.outputs.dir, false);
    r.String(o, "decisions", "outputs", p.outputs.decisions, false);
    r.String(o, "dead_letters", "outputs", p.outputs.dead_letters, false);
    r.String(o, "late", "outputs", p.outputs.late, false);
    r.Bool(o, "include_event", "outputs", p.outputs.include_event, false);
  }
  r.Throw();
  return p;
}

}  // namespace

Pipeline LoadPipelineText(const std::string& text, const std::string& path) {
  // Besides ParserException for malformed text, yaml-cpp throws other YAML::Exception kinds
  // from node access on unexpected shapes (BadSubscript for `csv: x` then csv["header"], ...).
  // Whatever it throws leaves here as a ConfigError naming the place.
  auto error = [&path](const YAML::Exception& e, const char* what) {
    if (e.mark.line < 0) return ConfigError({fmt::format("{}: {}: {}", path, what, e.msg)});
    return ConfigError(
        {fmt::format("{}:{}:{}: {}: {}", path, e.mark.line + 1, e.mark.column + 1, what, e.msg)});
  };
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw error(e, "invalid YAML");
  }
  try {
    Pipeline p = Parse(root, path);
    p.text = text;
    YAML::Emitter state;
    state << YAML::BeginSeq;
    for (const char* key : {"input", "event", "dedup", "lateness", "entities", "features"}) {
      state << YAML::Clone(root[key]);
    }
    state << YAML::EndSeq;
    p.state_hash = Hash64(state.c_str());
    return p;
  } catch (const YAML::Exception& e) {
    throw error(e, "unexpected YAML structure");
  }
}

Pipeline LoadPipelineFile(const std::string& path) {
  const std::optional<std::string> text = ReadWholeFile(path);
  if (!text) throw ConfigError({fmt::format("{}: cannot open pipeline file", path)});
  return LoadPipelineText(*text, path);
}

}  // namespace vigil::config
