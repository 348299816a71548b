// Checks the decode stage's promise of no heap allocation per record in steady state, by
// counting calls to the global operator new (replaced for this whole test binary by
// vigil_allocation_counter).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "vigil/common/testing/allocation_counter.h"
#include "vigil/decode/decoder.h"
#include "vigil/decode/tests/decode_test_util.h"

namespace vigil::decode {
namespace {

using decode_test::Load;
using decode_test::Padded;

constexpr const char* kFields = R"(
  fields:
    - {name: id, type: string, from: event_id}
    - {name: ts, type: timestamp}
    - {name: card, type: string, from: card.number}
    - {name: amount, type: float, min: 0}
    - {name: qty, type: int, required: false}
    - {name: online, type: bool, required: false}
    - {name: lat, type: lat, required: false}
    - {name: note, type: string, required: false}
event: {id: id, time: ts, key: card}
)";

// Decodes `records` round-robin: warm-up passes first, then counts allocations over 1000 more.
long AllocationsPerThousand(Decoder& decoder, const std::vector<Padded>& records) {
  Event event;
  for (int i = 0; i < 100; ++i) {
    for (const Padded& r : records) (void)decoder.Decode(r, event);
  }
  const long before = vigil::testing::AllocationCount();
  for (int i = 0; i < 1000; ++i) {
    const DecodeStatus st = decoder.Decode(records[static_cast<size_t>(i) % records.size()], event);
    if (!st.ok()) ADD_FAILURE() << st.message;
  }
  return vigil::testing::AllocationCount() - before;
}

TEST(NoAllocation, JsonSteadyState) {
  const config::Pipeline p = Load(std::string("name: t\ninput:\n  format: jsonl") + kFields);
  auto decoder = MakeDecoder(p);
  std::vector<Padded> records;
  records.emplace_back(
      R"({"event_id":"e1","ts":"2026-11-23T10:15:30Z","card":{"number":"4111"},"amount":12.5,)"
      R"("qty":3,"online":true,"lat":1.5,"note":"Caf\u00e9","unmapped":[1,{"x":null}]})");
  records.emplace_back(
      R"({"event_id":"e2","ts":"2026-11-23T10:15:31Z","card":{"number":4111},"amount":"7"})");
  EXPECT_EQ(AllocationsPerThousand(*decoder, records), 0);
}

TEST(NoAllocation, CsvSteadyState) {
  const config::Pipeline p =
      Load(std::string("name: t\ninput:\n  format: csv\n  csv: {header: true}") + kFields);
  auto decoder = MakeDecoder(p);
  ASSERT_TRUE(
      decoder->ReadHeader(Padded("event_id,ts,card.number,amount,qty,online,lat,note")).ok());
  std::vector<Padded> records;
  records.emplace_back("e1,2026-11-23T10:15:30Z,4111,12.5,3,true,1.5,\"say \"\"hi\"\", ok\"");
  records.emplace_back("e2,2026-11-23T10:15:31Z,4111,7,,,,");
  EXPECT_EQ(AllocationsPerThousand(*decoder, records), 0);
}

}  // namespace
}  // namespace vigil::decode
