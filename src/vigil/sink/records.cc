#include "vigil/sink/records.h"

#include <cmath>

#include <simdjson.h>

#include "vigil/common/json.h"
#include "vigil/common/time.h"

namespace vigil::sink {

namespace {

void AppendValue(std::string& out, const Event& e, const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      out.append("null");
      break;
    case Value::Kind::kInt:
      AppendJsonNumber(out, v.i);
      break;
    case Value::Kind::kFloat:
      AppendJsonNumber(out, v.f);
      break;
    case Value::Kind::kBool:
      out.append(v.b ? "true" : "false");
      break;
    case Value::Kind::kString:
      AppendJsonString(out, e.Str(v));
      break;
    case Value::Kind::kTime:
      out.push_back('"');
      AppendIso8601(out, v.i);
      out.push_back('"');
      break;
  }
}

void AppendPosition(std::string& out, const Position& at) {
  out.append("{\"source\":");
  AppendJsonString(out, at.source);
  out.append(",\"line\":");
  AppendJsonNumber(out, static_cast<int64_t>(at.line));
  out.append(",\"offset\":");
  AppendJsonNumber(out, static_cast<int64_t>(at.offset));
}

void AppendBase64(std::string& out, std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                       static_cast<uint8_t>(in[i + 2]);
    out.push_back(kAlphabet[n >> 18]);
    out.push_back(kAlphabet[n >> 12 & 63]);
    out.push_back(kAlphabet[n >> 6 & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  if (i < in.size()) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
    out.push_back(kAlphabet[n >> 18]);
    out.push_back(kAlphabet[n >> 12 & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[n >> 6 & 63] : '=');
    out.push_back('=');
  }
}

// Raw input goes out as a JSON string when it is valid UTF-8, else as "raw_base64" so that
// the output stays valid JSON and no byte of the record is lost.
void AppendRaw(std::string& out, std::string_view raw) {
  if (simdjson::validate_utf8(raw.data(), raw.size())) {
    out.append(",\"raw\":");
    AppendJsonString(out, raw);
  } else {
    out.append(",\"raw_base64\":\"");
    AppendBase64(out, raw);
    out.push_back('"');
  }
}

// The JSON key `"name":`, after a comma unless it is the first of its object.
std::string Key(std::string_view name, bool first) {
  std::string key = first ? "" : ",";
  AppendJsonString(key, name);
  key.push_back(':');
  return key;
}

}  // namespace

DecisionWriter::DecisionWriter(const config::Pipeline& pipeline, DecisionFormat format)
    : format_(std::move(format)) {
  for (size_t i = 0; i < pipeline.input.fields.size(); ++i) {
    field_keys_.push_back(Key(pipeline.input.fields[i].name, i == 0));
  }
  for (size_t i = 0; i < format_.feature_names.size(); ++i) {
    feature_keys_.push_back(Key(format_.feature_names[i], i == 0));
  }
}

void DecisionWriter::Append(std::string& out, const Event& e, const decide::Decision& d,
                            std::span<const double> features) const {
  out.append("{\"event_id\":");
  AppendJsonString(out, e.Id());
  out.append(",\"key\":");
  if (Tokenized(e.key_index)) {
    out.push_back('"');
    format_.tokenizer->Append(out, e.Key());
    out.push_back('"');
  } else {
    AppendJsonString(out, e.Key());
  }
  out.append(",\"event_time\":\"");
  const size_t time_at = out.size();  // the event's time field, echoed below, copies this
  AppendIso8601(out, e.time_us);
  const size_t time_len = out.size() - time_at;
  out.append("\",\"outcome\":\"");
  out.append(decide::OutcomeName(d.outcome));
  out.append("\",\"score\":");
  AppendJsonNumber(out, d.score);
  out.append(",\"reasons\":[");
  const auto reasons = d.reasons();
  for (size_t i = 0; i < reasons.size(); ++i) {
    const decide::Reason& r = reasons[i];
    if (i) out.push_back(',');
    out.append("{\"code\":");
    AppendJsonString(out, r.code);
    out.append(",\"detail\":");
    AppendJsonString(out, r.detail);
    out.append(",\"score\":");
    AppendJsonNumber(out, r.contribution);
    if (r.action != decide::Outcome::kApprove) {
      out.append(",\"action\":\"");
      out.append(decide::OutcomeName(r.action));
      out.push_back('"');
    }
    out.push_back('}');
  }
  out.push_back(']');
  if (!d.narrative.empty()) {
    out.append(",\"narrative\":");
    AppendJsonString(out, d.narrative);
  }
  if (!d.shadow.empty()) {
    out.append(",\"shadow\":[");
    for (size_t i = 0; i < d.shadow.size(); ++i) {
      if (i) out.push_back(',');
      AppendJsonString(out, d.shadow[i]);
    }
    out.push_back(']');
  }
  if (!std::isnan(d.model_score)) {
    out.append(",\"model_score\":");
    AppendJsonNumber(out, d.model_score);
  }
  if (!std::isnan(d.challenger_score)) {
    out.append(",\"challenger_score\":");
    AppendJsonNumber(out, d.challenger_score);
  }
  if (d.rules_version != 0) {
    out.append(",\"rules_version\":");
    AppendJsonNumber(out, static_cast<int64_t>(d.rules_version));
  }
  out.append(",\"record\":");
  AppendJsonNumber(out, static_cast<int64_t>(e.record));
  if (e.source_time_ms >= 0) {  // Kafka: the input message's timestamp, for latency
    out.append(",\"source_timestamp_ms\":");
    AppendJsonNumber(out, e.source_time_ms);
  }
  if (format_.include_event) {
    out.append(",\"event\":{");
    for (size_t i = 0; i < field_keys_.size(); ++i) {
      out.append(field_keys_[i]);
      const Value& v = e.values[i];
      if (v.kind == Value::Kind::kString && Tokenized(i)) {
        out.push_back('"');
        format_.tokenizer->Append(out, e.Str(v));
        out.push_back('"');
      } else if (v.kind == Value::Kind::kTime && v.i == e.time_us) {
        out.push_back('"');
        out.append(out, time_at, time_len);  // may reallocate: append copies by position
        out.push_back('"');
      } else {
        AppendValue(out, e, v);
      }
    }
    out.push_back('}');
  }
  if (!feature_keys_.empty()) {
    out.append(",\"features\":{");
    for (size_t i = 0; i < feature_keys_.size(); ++i) {
      out.append(feature_keys_[i]);
      AppendJsonNumber(out, features[i]);
    }
    out.push_back('}');
  }
  out.append("}\n");
}

void AppendDeadLetter(std::string& out, const Position& at, decode::Errc reason,
                      std::string_view field, std::string_view message, std::string_view raw) {
  AppendPosition(out, at);
  out.append(",\"reason\":\"");
  out.append(decode::ErrcName(reason));
  out.append("\",\"field\":");
  if (field.empty()) {
    out.append("null");
  } else {
    AppendJsonString(out, field);
  }
  out.append(",\"message\":");
  AppendJsonString(out, message);
  AppendRaw(out, raw);
  out.append("}\n");
}

void AppendLate(std::string& out, const Position& at, const Event& e, int64_t watermark_us,
                std::string_view raw) {
  AppendPosition(out, at);
  out.append(",\"reason\":\"late\",\"event_id\":");
  AppendJsonString(out, e.Id());
  out.append(",\"event_time\":\"");
  AppendIso8601(out, e.time_us);
  out.append("\",\"watermark\":\"");
  AppendIso8601(out, watermark_us);
  out.push_back('"');
  AppendRaw(out, raw);
  out.append("}\n");
}

}  // namespace vigil::sink
