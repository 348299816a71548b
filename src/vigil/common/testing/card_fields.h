#pragma once

// Benchmark support: the card-transaction record the benchmarks share (15 fields, keyed by
// card), as the `input:` block's fields and the `event:` line of a pipeline file.
namespace vigil::testing {

inline constexpr const char* kCardFields = R"(
  fields:
    - {name: event_id, type: string}
    - {name: ts, type: timestamp}
    - {name: card_id, type: string}
    - {name: account_id, type: string}
    - {name: merchant_id, type: string}
    - {name: mcc, type: int, min: 0, max: 9999}
    - {name: amount, type: float, min: 0}
    - {name: currency, type: string}
    - {name: country, type: string}
    - {name: lat, type: lat}
    - {name: lon, type: lon}
    - {name: device_id, type: string, required: false}
    - {name: channel, type: string}
    - {name: is_fraud, type: bool, required: false}
    - {name: pattern, type: string, required: false}
event: {id: event_id, time: ts, key: card_id}
)";

}  // namespace vigil::testing
