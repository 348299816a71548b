#pragma once

#include <string>
#include <string_view>

#include <librdkafka/rdkafka.h>

#include "vigil/kafka/kafka_config.h"

namespace vigil::kafka::internal {

// Sets a librdkafka property, naming it on failure (std::invalid_argument: an unknown or
// malformed setting); the configuration is destroyed then.
void Set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value,
         const char* where);
bool Has(const Properties& props, std::string_view name);
// A client configuration: Vigil's defaults, then the pipeline's and the environment's
// settings (which win).
rd_kafka_conf_t* MakeConf(const KafkaConfig& c, const Properties& defaults,
                          const Properties& specific, const char* specific_where);
void Warn(const std::string& text);

}  // namespace vigil::kafka::internal
