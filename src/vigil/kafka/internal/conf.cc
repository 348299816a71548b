#include "vigil/kafka/internal/conf.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

namespace vigil::kafka::internal {

void Set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value,
         const char* where) {
  char err[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    throw std::invalid_argument(fmt::format("kafka.{}: {}: {}", where, name, err));
  }
}

bool Has(const Properties& props, std::string_view name) {
  return std::any_of(props.begin(), props.end(), [&](const auto& p) { return p.first == name; });
}

rd_kafka_conf_t* MakeConf(const KafkaConfig& c, const Properties& defaults,
                          const Properties& specific, const char* specific_where) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (!c.brokers.empty()) Set(conf, "bootstrap.servers", c.brokers, "brokers");
  for (const auto& [k, v] : defaults) {
    if (!Has(c.properties, k) && !Has(specific, k)) Set(conf, k, v, "defaults");
  }
  for (const auto& [k, v] : c.properties) Set(conf, k, v, "properties");
  for (const auto& [k, v] : specific) Set(conf, k, v, specific_where);
  return conf;
}

void Warn(const std::string& text) { std::fprintf(stderr, "vigil: kafka: %s\n", text.c_str()); }

}  // namespace vigil::kafka::internal
