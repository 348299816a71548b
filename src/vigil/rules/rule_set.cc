#include "vigil/rules/rule_set.h"

#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "vigil/common/file.h"
#include "vigil/config/internal/reader.h"

namespace vigil::rules {

namespace {

using config_internal::Reader;

// Where the lists, rules and decision sections come from: the pipeline file, or the file its
// `rules_file:` names.
struct Source {
  std::string path;
  std::string text;
  YAML::Node root;
};

// How a scalar is quoted, from the character at its mark.
ScalarStyle StyleAt(const std::string& text, const YAML::Mark& m) {
  if (m.pos < 0 || static_cast<size_t>(m.pos) >= text.size()) return ScalarStyle::kPlain;
  const char c = text[static_cast<size_t>(m.pos)];
  return c == '"'    ? ScalarStyle::kDoubleQuoted
         : c == '\'' ? ScalarStyle::kSingleQuoted
                     : ScalarStyle::kPlain;
}

// Compiles an expression scalar; a problem is reported at its place inside the scalar.
std::optional<Program> CompileAt(Reader& r, const Source& p, const RuleSet& set,
                                 const YAML::Node& node, const std::string& where, Type want) {
  if (!node.IsScalar()) {
    r.Fail(node, where,
           want == Type::kBool ? "expected an expression, e.g. \"amount > 1000\""
                               : "expected a number or an expression");
    return std::nullopt;
  }
  const std::string& text = node.Scalar();
  CompileResult c = Compile(text, set.schema, set.lists, want);
  if (c) return std::move(c.value());
  const Diagnostic& d = c.error();
  const YAML::Mark m = node.Mark();
  const LineCol at = MapOffset(m.line, m.column, StyleAt(p.text, m), text, d.offset);
  r.FailAt(at.line, at.column, where, d.message);
  return std::nullopt;
}

void ReadLists(Reader& r, const Source& p, RuleSet& set) {
  const YAML::Node lists = p.root["lists"];
  if (!lists) return;
  if (!lists.IsMap()) {
    r.Fail(lists, "lists", "expected a mapping of list names to {file: PATH} or {values: [...]}");
    return;
  }
  const std::filesystem::path base = std::filesystem::path(p.path).parent_path();
  for (const auto& kv : lists) {
    const std::string name = kv.first.as<std::string>("");
    const std::string where = "lists." + name;
    const YAML::Node& spec = kv.second;
    r.AllowKeys(spec, where, {"file", "values"});
    if (!spec.IsMap()) continue;
    std::vector<std::string> values;
    std::string file;
    if (r.String(spec, "file", where, file, false)) {
      const std::string path = (base / file).string();
      auto loaded = LoadList(path);
      if (!loaded) {
        r.Fail(spec["file"], where + ".file", loaded.error().message);
        continue;
      }
      values = std::move(loaded.value());
      set.files.push_back(path);
    } else if (const YAML::Node v = spec["values"]; v && v.IsSequence()) {
      for (const auto& item : v) {
        if (!item.IsScalar()) {
          r.Fail(item, where + ".values", "expected a list of plain values");
          continue;
        }
        values.push_back(item.Scalar());
      }
    } else {
      r.Fail(spec, where, "expected file: PATH (one value per line) or values: [a, b, ...]");
      continue;
    }
    set.lists.Add(name, values);
  }
}

decide::Outcome ParseAction(Reader& r, const YAML::Node& rule, const std::string& where) {
  std::string action;
  if (!r.String(rule, "action", where, action, false) || action == "none") {
    return decide::Outcome::kApprove;
  }
  if (action == "review") return decide::Outcome::kReview;
  if (action == "block") return decide::Outcome::kBlock;
  r.Fail(rule["action"], where + ".action",
         fmt::format("expected none, review or block; got '{}'", action));
  return decide::Outcome::kApprove;
}

// Checks a narrative template's {name} and {name|format} placeholders.
void CheckNarrative(Reader& r, const RuleSet& set, const YAML::Node& node,
                    const std::string& where) {
  const std::string& t = node.Scalar();
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '{') continue;
    const size_t end = t.find('}', i);
    if (end == std::string::npos) {
      r.Fail(node, where, "a '{' is not closed by '}'");
      return;
    }
    const std::string_view inner(t.data() + i + 1, end - i - 1);
    const size_t bar = inner.find('|');
    const std::string_view name = inner.substr(0, bar);
    if (!set.schema.Find(name)) {
      r.Fail(node, where, fmt::format("unknown field or feature '{}' in {{...}}", name));
    }
    if (bar != std::string_view::npos) {
      const std::string_view format = inner.substr(bar + 1);
      static constexpr std::string_view kFormats[] = {"money", "int", "km",      "kmh", "x",
                                                      "mask",  "raw", "minutes", "time"};
      bool known = false;
      for (std::string_view f : kFormats) known = known || f == format;
      if (!known) {
        r.Fail(node, where,
               fmt::format("unknown format '{}'; expected money, int, km, kmh, x, minutes, time, "
                           "mask or raw",
                           format));
      }
    }
    i = end;
  }
}

// The rules file a pipeline names, read and parsed; a problem is a ConfigError at the
// pipeline's `rules_file` key or in the rules file.
Source RulesSource(const config::Pipeline& pipeline) {
  const YAML::Node key = pipeline.root["rules_file"];
  if (!key) return {pipeline.path, pipeline.text, pipeline.root};
  Reader r(pipeline.path);
  for (const char* section : {"lists", "rules", "decision"}) {
    if (pipeline.root[section]) {
      r.Fail(pipeline.root[section], section,
             "given both here and in rules_file: keep the lists, rules and decision sections in "
             "one place");
    }
  }
  if (!key.IsScalar()) r.Fail(key, "rules_file", "expected a path (relative to this file)");
  r.Throw();
  Source s;
  s.path = (std::filesystem::path(pipeline.path).parent_path() / key.Scalar()).string();
  std::optional<std::string> text = ReadWholeFile(s.path);
  if (!text) {
    r.Fail(key, "rules_file", fmt::format("cannot read '{}'", s.path));
    r.Throw();
  }
  s.text = std::move(*text);
  try {
    s.root = YAML::Load(s.text);
  } catch (const YAML::Exception& e) {
    throw config::ConfigError(
        {fmt::format("{}:{}:{}: {}", s.path, e.mark.line + 1, e.mark.column + 1, e.msg)});
  }
  Reader rr(s.path);
  if (!s.root.IsMap()) {
    rr.Fail(s.root, "rules_file", "expected a mapping with lists, rules and decision");
  } else {
    rr.AllowKeys(s.root, "", {"lists", "rules", "decision"});
  }
  rr.Throw();
  return s;
}

}  // namespace

bool HasRules(const config::Pipeline& pipeline) {
  return pipeline.root["rules"] || pipeline.root["rules_file"];
}

std::shared_ptr<const RuleSet> LoadRuleSet(const config::Pipeline& pipeline,
                                           const features::Spec& features, uint64_t version) {
  const Source p = RulesSource(pipeline);
  auto set = std::make_shared<RuleSet>();
  set->version = version;
  set->source = p.path;
  if (p.path != pipeline.path) set->files.push_back(p.path);
  Reader r(p.path);
  set->schema = Schema(pipeline.input.fields);
  for (const auto& f : features.features) {
    if (!set->schema.AddSlot(f.name)) {
      r.Fail(pipeline.root["features"], "features",
             fmt::format("feature '{}' has the name of an input field: rules could not tell "
                         "them apart",
                         f.name));
    }
  }
  set->masked_field.assign(pipeline.input.fields.size(), false);
  set->masked_field[pipeline.key_field] = true;
  for (const auto& e : features.entities) {
    set->masked_field[static_cast<size_t>(e.field)] = true;
  }
  set->secret_field = pipeline.tokenized;
  set->secret_field.resize(pipeline.input.fields.size(), false);
  for (size_t f = 0; f < set->secret_field.size(); ++f) {
    if (set->secret_field[f]) set->masked_field[f] = true;
  }
  ReadLists(r, p, *set);

  if (const YAML::Node d = p.root["decision"]) {
    r.AllowKeys(d, "decision", {"review_at", "block_at"});
    r.Double(d, "review_at", "decision", set->policy.review_at, false);
    r.Double(d, "block_at", "decision", set->policy.block_at, false);
    if (!(set->policy.review_at <= set->policy.block_at)) {
      r.Fail(d, "decision", "expected review_at <= block_at");
    }
  }

  const YAML::Node rules = p.root["rules"];
  if (rules && !rules.IsSequence()) {
    r.Fail(rules, "rules", "expected a list of rules (- id: ..., when: ...)");
  } else if (rules) {
    std::set<std::string> ids;
    for (size_t i = 0; i < rules.size(); ++i) {
      const YAML::Node n = rules[i];
      std::string where = fmt::format("rules[{}]", i);
      r.AllowKeys(n, where,
                  {"id", "description", "when", "score", "action", "tags", "mode", "narrative"});
      if (!n.IsMap()) continue;
      Rule rule;
      if (r.String(n, "id", where, rule.id, true)) {
        where = fmt::format("rules[{}] ({})", i, rule.id);
        if (!ids.insert(rule.id).second) {
          r.Fail(n["id"], where + ".id", fmt::format("rule id '{}' is used twice", rule.id));
        }
      }
      r.String(n, "description", where, rule.description, false);
      if (!n["when"]) {
        r.Fail(n, where + ".when", "missing required key: the rule's condition");
        continue;
      }
      std::optional<Program> when = CompileAt(r, p, *set, n["when"], where + ".when", Type::kBool);
      if (const YAML::Node s = n["score"]) {
        double number = 0;
        if (s.IsScalar() && YAML::convert<double>::decode(s, number)) {
          rule.score = number;
        } else {
          rule.score_expr = CompileAt(r, p, *set, s, where + ".score", Type::kNumber);
        }
      }
      rule.action = ParseAction(r, n, where);
      std::string mode = "active";
      if (r.String(n, "mode", where, mode, false) && mode != "active" && mode != "shadow") {
        r.Fail(n["mode"], where + ".mode",
               fmt::format("expected active or shadow; got '{}'", mode));
      }
      rule.shadow = mode == "shadow";
      if (const YAML::Node t = n["tags"]) {
        if (!t.IsSequence()) {
          r.Fail(t, where + ".tags", "expected a list, e.g. [card_testing, velocity]");
        } else {
          for (const auto& tag : t) rule.tags.push_back(tag.as<std::string>(""));
        }
      }
      if (const YAML::Node nt = n["narrative"]) {
        if (nt.IsScalar()) {
          rule.narrative = nt.Scalar();
          CheckNarrative(r, *set, nt, where + ".narrative");
        } else {
          r.Fail(nt, where + ".narrative", "expected a text with {field} placeholders");
        }
      }
      if (!when) continue;
      rule.when_text = n["when"].Scalar();
      for (const Program::Ref& ref : when->refs()) {
        if (!ref.slot && set->secret_field[static_cast<size_t>(ref.index)]) {
          rule.secret_refs.push_back(ref.index);
        }
      }
      rule.when = std::move(when);
      if (rule.score == 0 && !rule.score_expr && rule.action == decide::Outcome::kApprove &&
          !rule.shadow) {
        r.Fail(n, where,
               "the rule has neither a score nor an action, so it can never matter; "
               "add score: N or action: review|block (or mode: shadow)");
      }
      set->rules.push_back(std::move(rule));
    }
  }
  r.Throw();
  return set;
}

RuleBook::RuleBook(const config::Pipeline& pipeline, const features::Spec& features,
                   std::shared_ptr<const RuleSet> initial)
    : path_(pipeline.path),
      state_hash_(pipeline.state_hash),
      features_(features),
      current_(std::move(initial)) {}

std::shared_ptr<const RuleSet> RuleBook::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

std::string RuleBook::Reload() {
  try {
    const config::Pipeline p = config::LoadPipelineFile(path_);
    if (p.state_hash != state_hash_) {
      return fmt::format(
          "{}: the input, event, dedup, lateness, entities or features sections changed; a "
          "reload takes rules, lists and decision only (restart to change the rest); the "
          "running rule set stays",
          path_);
    }
    const uint64_t next = Current()->version + 1;
    std::shared_ptr<const RuleSet> set = LoadRuleSet(p, features_, next);
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(set);
    return "";
  } catch (const config::ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return fmt::format("{}: {}", path_, e.what());
  }
}

}  // namespace vigil::rules
