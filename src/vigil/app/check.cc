#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "vigil/app/commands.h"
#include "vigil/app/stages.h"
#include "vigil/config/pipeline.h"
#include "vigil/decode/decoder.h"
#include "vigil/features/spec.h"
#include "vigil/kafka/kafka_config.h"
#include "vigil/source/record_source.h"

namespace vigil::app {

int Check(const std::string& path, const std::string& input) {
  const config::Pipeline p = config::LoadPipelineFile(path);  // throws ConfigError: exit 2
  const features::Spec spec = features::ParseSpec(p);         // throws ConfigError: exit 2
  PipelineStages stages(p, spec);                             // rules, lists, decision
  const std::optional<kafka::KafkaConfig> kc = kafka::LoadKafkaConfig(p);  // ConfigError: exit 2
  std::unique_ptr<decode::Decoder> decoder = decode::MakeDecoder(p);
  if (!input.empty() && decoder->WantsHeader()) {
    source::FileOptions o;
    o.framing = source::Framing::kCsv;
    o.max_record_bytes = p.input.max_record_bytes;
    auto src = source::OpenFile(input, o);
    std::vector<source::Record> first;
    if (!src->Next(first, 1)) {
      std::fprintf(stderr, "%s:1: empty input: expected a CSV header row\n", input.c_str());
      return 2;
    }
    decode::DecodeStatus st = decoder->ReadHeader(first[0].text);
    if (!st.ok()) {
      std::fprintf(stderr, "%s:1: %s\n", input.c_str(), st.message.c_str());
      return 2;
    }
  }
  const auto& f = p.input.fields;
  std::printf(
      "%s: ok: pipeline '%s', %s input, %zu fields, %zu entities, %zu features, %zu rules; "
      "id %s, time %s, key %s\n",
      path.c_str(), p.name.c_str(), p.input.format == config::InputFormat::kCsv ? "csv" : "jsonl",
      f.size(), spec.entities.size(), spec.features.size(),
      stages.book() ? stages.book()->Current()->rules.size() : size_t{0},
      f[p.id_field].name.c_str(), f[p.time_field].name.c_str(), f[p.key_field].name.c_str());
  if (kc) {
    const std::string snapshots =
        kc->snapshot_interval_us > 0
            ? fmt::format("to {} (each partition every {:g} s, {})", kc->state_topic,
                          static_cast<double>(kc->snapshot_interval_us) / 1e6,
                          kc->state_compression)
            : "off";
    std::printf("  kafka: group %s, %zu topic(s), decisions to %s, state snapshots %s\n",
                kc->group.c_str(), kc->topics.size(), kc->decisions_topic.c_str(),
                snapshots.c_str());
  }
  return 0;
}

}  // namespace vigil::app
