#include "vigil/features/spec.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "vigil/config/internal/reader.h"

namespace vigil::features {

int Spec::FeatureIndex(std::string_view name) const {
  for (size_t i = 0; i < features.size(); ++i) {
    if (features[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

namespace {

using config_internal::Reader;

constexpr int kDefaultBuckets = 12;
constexpr int kMaxBuckets = 1024;
constexpr int kMaxAnomalyCapacity = 255;  // features_internal::kRobustMaxCapacity
constexpr size_t kMaxAnomalyInputs = 16;

struct OpInfo {
  const char* name;
  Op op;
};
constexpr OpInfo kOps[] = {
    {"count", Op::kCount},
    {"sum", Op::kSum},
    {"avg", Op::kAvg},
    {"min", Op::kMin},
    {"max", Op::kMax},
    {"stddev", Op::kStddev},
    {"distinct", Op::kDistinct},
    {"is_new", Op::kIsNew},
    {"last", Op::kLast},
    {"time_since_last", Op::kTimeSinceLast},
    {"ewma", Op::kEwma},
    {"zscore", Op::kZscore},
    {"geo_distance", Op::kGeoDistance},
    {"geo_speed", Op::kGeoSpeed},
    {"ratio", Op::kRatio},
    {"diff", Op::kDiff},
    {"anomaly", Op::kAnomaly},
};

std::string OpList() {
  std::string s;
  for (const auto& o : kOps) s += std::string(s.empty() ? "" : ", ") + o.name;
  return s;
}

bool IsWindowOp(Op op) {
  return op == Op::kCount || op == Op::kSum || op == Op::kAvg || op == Op::kMin || op == Op::kMax ||
         op == Op::kStddev || op == Op::kDistinct;
}

bool IsNumeric(FieldType t) {
  return t == FieldType::kInt || t == FieldType::kFloat || t == FieldType::kLat ||
         t == FieldType::kLon;
}

// Parses "field OP value": amount < 5, channel == 'ecom', is_fraud != true.
std::optional<Where> ParseWhere(const config::Pipeline& p, const std::string& text,
                                std::string& error) {
  static constexpr struct {
    const char* text;
    Where::Cmp cmp;
  } kCmps[] = {{"==", Where::Cmp::kEq}, {"!=", Where::Cmp::kNe}, {"<=", Where::Cmp::kLe},
               {">=", Where::Cmp::kGe}, {"<", Where::Cmp::kLt},  {">", Where::Cmp::kGt}};
  size_t at = std::string::npos, len = 0;
  Where w;
  for (const auto& c : kCmps) {
    const size_t pos = text.find(c.text);
    if (pos != std::string::npos) {
      at = pos;
      len = std::string_view(c.text).size();
      w.cmp = c.cmp;
      break;
    }
  }
  auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
  };
  if (at == std::string::npos) {
    error = fmt::format("expected 'field OP value' with OP one of == != < <= > >=; got '{}'", text);
    return std::nullopt;
  }
  const std::string_view field = trim(std::string_view(text).substr(0, at));
  std::string_view value = trim(std::string_view(text).substr(at + len));
  w.field = p.FieldIndex(field);
  if (w.field < 0) {
    error = fmt::format("unknown field '{}' in where", field);
    return std::nullopt;
  }
  const FieldType type = p.input.fields[static_cast<size_t>(w.field)].type;
  if (IsNumeric(type)) {
    double v = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || ptr != value.data() + value.size() || !std::isfinite(v)) {
      error = fmt::format("field '{}' is numeric: expected a number after the comparison; got '{}'",
                          field, value);
      return std::nullopt;
    }
    w.number = v;
  } else if (type == FieldType::kBool) {
    if (value != "true" && value != "false") {
      error = fmt::format("field '{}' is bool: expected true or false; got '{}'", field, value);
      return std::nullopt;
    }
    w.number = value == "true" ? 1 : 0;
    if (w.cmp != Where::Cmp::kEq && w.cmp != Where::Cmp::kNe) {
      error = "bool fields compare with == or != only";
      return std::nullopt;
    }
  } else if (type == FieldType::kString) {
    if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    if (w.cmp != Where::Cmp::kEq && w.cmp != Where::Cmp::kNe) {
      error = "string fields compare with == or != only";
      return std::nullopt;
    }
    w.numeric = false;
    w.text = std::string(value);
  } else {
    error =
        fmt::format("field '{}' of type {} cannot be used in where", field, FieldTypeName(type));
    return std::nullopt;
  }
  return w;
}

int NumericField(Reader& r, const config::Pipeline& p, const YAML::Node& n, const char* key,
                 const std::string& where, bool required) {
  std::string name;
  if (!r.String(n, key, where, name, required)) return -1;
  const int i = p.FieldIndex(name);
  if (i < 0) {
    r.Fail(n[key], where + "." + key, fmt::format("unknown field '{}'", name));
    return -1;
  }
  if (!IsNumeric(p.input.fields[static_cast<size_t>(i)].type)) {
    r.Fail(n[key], where + "." + key,
           fmt::format("field '{}' must be numeric (int, float, lat, lon)", name));
    return -1;
  }
  return i;
}

void ReadEntities(Reader& r, const config::Pipeline& p, const YAML::Node& n, Spec& spec) {
  if (!n.IsMap()) {
    r.Fail(n, "entities", "expected a mapping of entity name to its key field, e.g. card: card_id");
    return;
  }
  for (const auto& kv : n) {
    EntitySpec e;
    e.name = kv.first.as<std::string>("");
    const std::string where = "entities." + e.name;
    std::string field;
    if (kv.second.IsScalar()) {
      field = kv.second.Scalar();
    } else if (kv.second.IsMap()) {
      r.AllowKeys(kv.second, where, {"field", "ttl"});
      r.String(kv.second, "field", where, field, true);
      std::string ttl;
      if (r.String(kv.second, "ttl", where, ttl, false)) {
        if (auto d = ParseDuration(ttl)) {
          e.ttl_us = *d;
        } else {
          r.Fail(kv.second["ttl"], where + ".ttl", "expected a duration like 30d");
        }
      }
    } else {
      r.Fail(kv.second, where, "expected a field name or {field: ..., ttl: ...}");
      continue;
    }
    e.field = p.FieldIndex(field);
    if (e.field < 0) {
      r.Fail(kv.second, where,
             fmt::format("unknown field '{}': declare it under input.fields", field));
      continue;
    }
    if (p.input.fields[static_cast<size_t>(e.field)].type != FieldType::kString) {
      r.Fail(kv.second, where, fmt::format("the key field '{}' must be a string", field));
    }
    spec.entities.push_back(std::move(e));
  }
}

// An operand of ratio / diff: an input field or an earlier feature.
void ReadOperand(Reader& r, const config::Pipeline& p, const Spec& spec, const YAML::Node& n,
                 const char* key, const std::string& where, int& field, int& feature) {
  std::string name;
  if (!r.String(n, key, where, name, true)) return;
  feature = spec.FeatureIndex(name);
  if (feature >= 0) return;
  field = p.FieldIndex(name);
  if (field < 0) {
    r.Fail(n[key], where + "." + key,
           fmt::format("unknown field or feature '{}' (a feature must be declared above)", name));
  } else if (!IsNumeric(p.input.fields[static_cast<size_t>(field)].type)) {
    r.Fail(n[key], where + "." + key, fmt::format("field '{}' must be numeric", name));
  }
}

// The inputs of an anomaly score: a list of names (or one name), each a numeric input field
// or a feature declared above for the same entity. Only those: a feature of another entity or
// a ratio / diff is computed after the entity's features (FeatureEngine's second phase).
void ReadAnomalyInputs(Reader& r, const config::Pipeline& p, const Spec& spec, const YAML::Node& n,
                       const std::string& where, FeatureSpec& f) {
  const YAML::Node of = n["of"];
  const std::string at = where + ".of";
  if (!of || !(of.IsScalar() || of.IsSequence()) || (of.IsSequence() && of.size() == 0)) {
    r.Fail(of ? of : n, at, "expected a list of numeric fields or features, e.g. [amount, km]");
    return;
  }
  std::vector<YAML::Node> names;
  if (of.IsScalar()) {
    names.push_back(of);
  } else {
    for (size_t i = 0; i < of.size(); ++i) names.push_back(of[i]);
  }
  if (names.size() > kMaxAnomalyInputs) {
    r.Fail(of, at, fmt::format("at most {} inputs", kMaxAnomalyInputs));
    return;
  }
  for (const YAML::Node& x : names) {
    if (!x.IsScalar()) {
      r.Fail(x, at, "expected a field or feature name");
      continue;
    }
    const std::string name = x.Scalar();
    FeatureSpec::Input in;
    in.feature = spec.FeatureIndex(name);
    if (in.feature >= 0) {
      const FeatureSpec& g = spec.features[static_cast<size_t>(in.feature)];
      if (g.entity < 0 || g.entity != f.entity) {
        r.Fail(x, at,
               fmt::format("feature '{}' is not a feature of this entity; an anomaly reads input "
                           "fields and features of its own entity (not ratio / diff)",
                           name));
        continue;
      }
    } else {
      in.field = p.FieldIndex(name);
      if (in.field < 0) {
        r.Fail(
            x, at,
            fmt::format("unknown field or feature '{}' (a feature must be declared above)", name));
        continue;
      }
      if (!IsNumeric(p.input.fields[static_cast<size_t>(in.field)].type)) {
        r.Fail(x, at, fmt::format("field '{}' must be numeric (int, float, lat, lon)", name));
        continue;
      }
    }
    for (const auto& seen : f.inputs) {
      if (seen.field == in.field && seen.feature == in.feature) {
        r.Fail(x, at, fmt::format("'{}' is listed twice", name));
      }
    }
    f.inputs.push_back(in);
  }
}

void ReadFeature(Reader& r, const config::Pipeline& p, const YAML::Node& n,
                 const std::string& where, Spec& spec) {
  r.AllowKeys(n, where,
              {"name", "entity", "op", "of", "window", "step", "where", "half_life", "capacity",
               "lat", "lon", "a", "b", "min_history"});
  FeatureSpec f;
  if (!r.String(n, "name", where, f.name, true)) return;
  if (spec.FeatureIndex(f.name) >= 0 || p.FieldIndex(f.name) >= 0) {
    r.Fail(n["name"], where + ".name",
           fmt::format("'{}' is already the name of a field or feature", f.name));
  }
  std::string op;
  if (!r.String(n, "op", where, op, true)) return;
  bool known = false;
  for (const auto& o : kOps) {
    if (op == o.name) {
      f.op = o.op;
      known = true;
    }
  }
  if (!known) {
    r.Fail(n["op"], where + ".op",
           fmt::format("unknown op '{}'; expected one of: {}", op, OpList()));
    return;
  }
  const bool derived = f.op == Op::kRatio || f.op == Op::kDiff;
  if (derived) {
    ReadOperand(r, p, spec, n, "a", where, f.a_field, f.a_feature);
    ReadOperand(r, p, spec, n, "b", where, f.b_field, f.b_feature);
    spec.features.push_back(std::move(f));
    return;
  }
  std::string entity;
  if (r.String(n, "entity", where, entity, true)) {
    for (size_t i = 0; i < spec.entities.size(); ++i) {
      if (spec.entities[i].name == entity) f.entity = static_cast<int>(i);
    }
    if (f.entity < 0) {
      r.Fail(n["entity"], where + ".entity",
             fmt::format("unknown entity '{}': declare it under entities", entity));
    }
  }
  const bool needs_numeric_of = f.op == Op::kSum || f.op == Op::kAvg || f.op == Op::kMin ||
                                f.op == Op::kMax || f.op == Op::kStddev || f.op == Op::kLast ||
                                f.op == Op::kEwma || f.op == Op::kZscore;
  if (needs_numeric_of) {
    f.of = NumericField(r, p, n, "of", where, true);
  } else if (f.op == Op::kAnomaly) {
    ReadAnomalyInputs(r, p, spec, n, where, f);
  } else if (f.op == Op::kDistinct || f.op == Op::kIsNew) {
    std::string of;
    if (r.String(n, "of", where, of, true)) {
      f.of = p.FieldIndex(of);
      if (f.of < 0) r.Fail(n["of"], where + ".of", fmt::format("unknown field '{}'", of));
    }
  } else if (n["of"]) {
    r.Fail(n["of"], where + ".of", fmt::format("op '{}' takes no 'of'", op));
  }
  if (f.op == Op::kGeoDistance || f.op == Op::kGeoSpeed) {
    f.lat = NumericField(r, p, n, "lat", where, true);
    f.lon = NumericField(r, p, n, "lon", where, true);
  }
  if (IsWindowOp(f.op)) {
    std::string window;
    if (r.String(n, "window", where, window, true)) {
      const auto w = ParseDuration(window);
      if (!w || *w < 1000000) {
        r.Fail(n["window"], where + ".window",
               "expected a duration of at least 1s, like 10m or 30d");
      } else {
        f.window_us = *w;
        f.step_us = std::max<int64_t>(1000000, f.window_us / kDefaultBuckets);
        std::string step;
        if (r.String(n, "step", where, step, false)) {
          const auto s = ParseDuration(step);
          if (!s || *s < 1000 || *s > f.window_us) {
            r.Fail(n["step"], where + ".step", "expected a duration between 1ms and the window");
          } else {
            f.step_us = *s;
          }
        }
        if ((f.window_us + f.step_us - 1) / f.step_us > kMaxBuckets) {
          r.Fail(
              n["window"], where + ".window",
              fmt::format("window / step is more than {} buckets; use a larger step", kMaxBuckets));
        }
      }
    }
    std::string filter;
    if (r.String(n, "where", where, filter, false)) {
      std::string error;
      f.where = ParseWhere(p, filter, error);
      if (!f.where) r.Fail(n["where"], where + ".where", error);
    }
  } else {
    if (n["window"])
      r.Fail(n["window"], where + ".window", fmt::format("op '{}' takes no window", op));
    if (n["where"]) r.Fail(n["where"], where + ".where", fmt::format("op '{}' takes no where", op));
  }
  if (f.op == Op::kEwma || f.op == Op::kZscore) {
    std::string hl = "7d";
    r.String(n, "half_life", where, hl, false);
    const auto h = ParseDuration(hl);
    if (!h || *h <= 0) {
      r.Fail(n["half_life"], where + ".half_life", "expected a positive duration like 7d");
    } else {
      f.half_life_us = *h;
    }
  }
  if (f.op == Op::kAnomaly) {
    int64_t cap = f.capacity;
    if (r.Int(n, "capacity", where, cap, false) && (cap < 3 || cap > kMaxAnomalyCapacity)) {
      r.Fail(n["capacity"], where + ".capacity",
             fmt::format("expected 3..{}", kMaxAnomalyCapacity));
      cap = f.capacity;
    }
    int64_t min = std::min<int64_t>(f.min_history, cap);
    if (r.Int(n, "min_history", where, min, false) && (min < 3 || min > cap)) {
      r.Fail(n["min_history"], where + ".min_history",
             fmt::format("expected 3..capacity ({})", cap));
    }
    f.capacity = static_cast<int>(cap);
    f.min_history = static_cast<int>(min);
  } else if (n["min_history"]) {
    r.Fail(n["min_history"], where + ".min_history",
           fmt::format("op '{}' takes no min_history", op));
  }
  if (f.op == Op::kIsNew) {
    int64_t cap = f.capacity;
    if (r.Int(n, "capacity", where, cap, false)) {
      if (cap < 1 || cap > 255)
        r.Fail(n["capacity"], where + ".capacity", "expected 1..255");
      else
        f.capacity = static_cast<int>(cap);
    }
  }
  spec.features.push_back(std::move(f));
}

}  // namespace

Spec ParseSpec(const config::Pipeline& p) {
  Reader r(p.path);
  Spec spec;
  if (const YAML::Node e = p.root["entities"]) ReadEntities(r, p, e, spec);
  if (const YAML::Node fs = p.root["features"]) {
    if (!fs.IsSequence()) {
      r.Fail(fs, "features", "expected a list of features");
    } else {
      for (size_t i = 0; i < fs.size(); ++i) {
        const std::string where = fmt::format("features[{}]", i);
        if (!fs[i].IsMap()) {
          r.Fail(fs[i], where,
                 "expected a mapping like {name: n, entity: card, op: count, window: 1h}");
          continue;
        }
        ReadFeature(r, p, fs[i], where, spec);
      }
    }
    if (spec.entities.empty() && fs.IsSequence() && fs.size() > 0) {
      r.Fail(fs, "features", "features need at least one entry under entities");
    }
  }
  r.Throw();
  return spec;
}

}  // namespace vigil::features
