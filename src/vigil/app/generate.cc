#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

#include "vigil/app/commands.h"
#include "vigil/common/time.h"
#include "vigil/source/generator.h"

namespace vigil::app {

int Generate(const GenerateArgs& a) {
  source::GeneratorOptions o;
  o.scenario = a.scenario;
  o.events = a.events;
  o.seed = a.seed;
  o.cards = a.cards;
  o.merchants = a.merchants;
  o.fraud_rate = a.fraud_rate;
  if (!a.start.empty()) {
    const auto t = ParseIso8601(a.start);
    if (!t) {
      throw std::invalid_argument(fmt::format(
          "--start: expected an ISO-8601 time like 2026-01-01T00:00:00Z; got '{}'", a.start));
    }
    o.start_us = *t;
  }
  std::string format = a.format;
  if (format.empty()) {
    format = a.out.size() > 4 && a.out.compare(a.out.size() - 4, 4, ".csv") == 0 ? "csv" : "jsonl";
  }
  const auto stats = source::WriteGenerated(
      o, format == "csv" ? source::TextFormat::kCsv : source::TextFormat::kJsonl, a.out);
  (void)stats;
  if (a.out != "-") {
    std::fprintf(stderr, "vigil generate: wrote %llu %s events to %s (seed %llu)\n",
                 static_cast<unsigned long long>(a.events), format.c_str(), a.out.c_str(),
                 static_cast<unsigned long long>(a.seed));
  }
  return 0;
}

}  // namespace vigil::app
