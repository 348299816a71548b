#include "vigil/rules/rule_stage.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "vigil/common/time.h"

namespace vigil::rules {

namespace {

// 1234567.891 with 2 decimals -> "1,234,567.89".
void AppendGrouped(std::string& out, double v, int decimals) {
  const std::string digits = fmt::format("{:.{}f}", std::fabs(v), decimals);
  if (v < 0 && digits.find_first_not_of("0.") != std::string::npos) out.push_back('-');
  const size_t dot = digits.find('.');
  const size_t int_len = dot == std::string::npos ? digits.size() : dot;
  for (size_t i = 0; i < int_len; ++i) {
    if (i > 0 && (int_len - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  if (dot != std::string::npos) out.append(digits, dot, std::string::npos);
}

// A number with as many decimals as it needs, up to 2: 7, 7.5, 7.25.
void AppendPlain(std::string& out, double v) {
  if (v == std::round(v) && std::fabs(v) < 1e15) {
    AppendGrouped(out, v, 0);
  } else {
    AppendGrouped(out, v, 2);
  }
}

void AppendMasked(std::string& out, std::string_view s) {
  out.append("\u2026");
  out.append(s.substr(s.size() > 4 ? s.size() - 4 : 0));
}

void AppendValue(std::string& out, const RuleSet& set, const Schema::Entry& e,
                 std::string_view format, const Event& event, std::span<const double> slots) {
  double number = std::nan("");
  if (e.slot) {
    number = static_cast<size_t>(e.index) < slots.size() ? slots[static_cast<size_t>(e.index)]
                                                         : std::nan("");
  } else {
    const Value& v = event.values[static_cast<size_t>(e.index)];
    switch (v.kind) {
      case Value::Kind::kNull:
        break;
      case Value::Kind::kString: {
        const std::string_view s = event.Str(v);
        const size_t f = static_cast<size_t>(e.index);
        const bool mask =
            format == "mask" || set.secret_field[f] || (format != "raw" && set.masked_field[f]);
        if (mask) {
          AppendMasked(out, s);
        } else {
          out.append(s);
        }
        return;
      }
      case Value::Kind::kBool:
        out.append(v.b ? "yes" : "no");
        return;
      case Value::Kind::kTime:
        AppendIso8601(out, v.i);
        return;
      case Value::Kind::kInt:
        number = static_cast<double>(v.i);
        break;
      case Value::Kind::kFloat:
        number = v.f;
        break;
    }
  }
  if (std::isnan(number)) {
    out.append("unknown");
  } else if (format == "money") {
    AppendGrouped(out, number, 2);
  } else if (format == "int") {
    AppendGrouped(out, number, 0);
  } else if (format == "km") {
    AppendGrouped(out, number, 0);
    out.append(" km");
  } else if (format == "kmh") {
    AppendGrouped(out, number, 0);
    out.append(" km/h");
  } else if (format == "x") {
    AppendGrouped(out, number, 1);
    out.append("\u00d7");
  } else if (format == "minutes") {
    const double m = number / 60;
    AppendGrouped(out, m, m < 10 ? 1 : 0);
    out.append(" minutes");
  } else if (format == "time") {
    AppendIso8601(out, static_cast<int64_t>(number * 1e6));
  } else {
    AppendPlain(out, number);
  }
}

// Replaces a tokenized field's value in an explanation with its masked form.
void MaskIn(std::string& text, const Event& event, int field) {
  const Value& v = event.values[static_cast<size_t>(field)];
  if (v.kind != Value::Kind::kString || v.s.len == 0) return;
  const std::string_view raw = event.Str(v);
  std::string masked;
  AppendMasked(masked, raw);
  for (size_t at = text.find(raw); at != std::string::npos; at = text.find(raw, at)) {
    text.replace(at, raw.size(), masked);
    at += masked.size();
  }
}

}  // namespace

void RenderNarrative(const RuleSet& set, std::string_view text, const Event& event,
                     std::span<const double> slots, std::string& out) {
  for (size_t i = 0; i < text.size(); ++i) {
    const size_t end = text[i] == '{' ? text.find('}', i) : std::string_view::npos;
    if (end == std::string_view::npos) {
      out.push_back(text[i]);
      continue;
    }
    const std::string_view inner = text.substr(i + 1, end - i - 1);
    const size_t bar = inner.find('|');
    const Schema::Entry* e = set.schema.Find(inner.substr(0, bar));
    if (e) {
      AppendValue(out, set, *e, bar == std::string_view::npos ? "" : inner.substr(bar + 1), event,
                  slots);
    } else {
      out.append(text.substr(i, end - i + 1));  // checked at load; kept as written otherwise
    }
    i = end;
  }
}

void RuleStage::Configure(const decide::StageConfig& config) {
  set_ = &static_cast<const RuleSet&>(config);
  fired_.reserve(set_->rules.size());
}

void RuleStage::Process(const Event& event, std::span<const double> features, decide::Decision& d) {
  if (!set_) return;
  d.rules_version = set_->version;
  fired_.clear();
  double score = 0;
  decide::Outcome action = decide::Outcome::kApprove;
  const auto& rules = set_->rules;
  for (size_t i = 0; i < rules.size(); ++i) {
    const Rule& rule = rules[i];
    if (rule.when->Evaluate(event, features) != Tri::kTrue) continue;
    if (rule.shadow) {
      d.shadow.push_back(rule.id);
      continue;
    }
    double s = rule.score;
    if (rule.score_expr) {
      s = rule.score_expr->EvaluateNumber(event, features);
      if (std::isnan(s)) s = 0;
    }
    score += s;
    action = std::max(action, rule.action);
    fired_.push_back(static_cast<uint32_t>(i));
    decide::Reason& r = d.AddReason();
    r.code = rule.id;
    r.contribution = s;
    r.action = rule.action;
    r.detail = rule.description;
    r.detail += r.detail.empty() ? "" : ": ";
    rule.when->Explain(event, features, r.detail);
    for (int field : rule.secret_refs) MaskIn(r.detail, event, field);
  }
  // The policy weighs the whole score: the rules' and what earlier stages (the model) added.
  d.score += score;
  const decide::Outcome by_score = d.score >= set_->policy.block_at    ? decide::Outcome::kBlock
                                   : d.score >= set_->policy.review_at ? decide::Outcome::kReview
                                                                       : decide::Outcome::kApprove;
  d.outcome = std::max({d.outcome, action, by_score});
  if (!d.IsAlert()) return;
  for (uint32_t i : fired_) {
    const Rule& rule = rules[i];
    if (rule.narrative.empty()) continue;
    if (!d.narrative.empty()) d.narrative += ' ';
    RenderNarrative(*set_, rule.narrative, event, features, d.narrative);
  }
  if (d.narrative.empty() && !fired_.empty()) {  // none fired: the model raised the alert
    d.narrative = "Rules fired: ";
    for (size_t k = 0; k < fired_.size(); ++k) {
      const Rule& rule = rules[fired_[k]];
      if (k) d.narrative += "; ";
      d.narrative += rule.description.empty() ? rule.id : rule.description;
    }
    d.narrative += '.';
  }
}

}  // namespace vigil::rules
