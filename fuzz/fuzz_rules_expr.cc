// Feeds arbitrary text to the rule expression compiler. Compile must return a program or a
// diagnostic that points inside the text, and never throw. A program must evaluate to a valid
// result on events with values and with nulls, and its canonical text must compile to the same
// canonical text and evaluate to the same results.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/rules/expr.h"

namespace {

using vigil::Event;
using vigil::FieldType;
using vigil::Value;
using namespace vigil::rules;

[[noreturn]] void Bug(const char* what, std::string_view text) {
  std::fprintf(stderr, "rules expr bug: %s: %.*s\n", what, static_cast<int>(text.size()),
               text.data());
  std::abort();
}

struct Fixture {
  Schema schema;
  Lists lists;
  std::vector<Event> events;
  std::vector<std::vector<double>> slots;

  Fixture() {
    (void)schema.AddField("ts", FieldType::kTimestamp);
    (void)schema.AddField("t2", FieldType::kTimestamp);
    (void)schema.AddField("s", FieldType::kString);
    (void)schema.AddField("s2", FieldType::kString);
    (void)schema.AddField("n", FieldType::kFloat);
    (void)schema.AddField("i", FieldType::kInt);
    (void)schema.AddField("b", FieldType::kBool);
    (void)schema.AddField("lat", FieldType::kLat);
    (void)schema.AddSlot("f");
    (void)schema.AddSlot("g");
    lists.Add("l", {"RU", "KP", "1", "2"});
    lists.Add("codes", {"1", "2", "5967"});
    const double ids[] = {1, 2, 3};
    lists.AddNumbers("ids", ids);

    events.resize(3);
    for (Event& e : events) e.Reset(8);
    Event& full = events[0];
    full.values[0].kind = Value::Kind::kTime;
    full.values[0].i = 1795428930000000LL;
    full.values[1].kind = Value::Kind::kTime;
    full.values[1].i = 1795428930000000LL - 90000000LL;
    full.SetString(2, "RU");
    full.SetString(3, "m_crypto");
    full.values[4].kind = Value::Kind::kFloat;
    full.values[4].f = 12.5;
    full.values[5].kind = Value::Kind::kInt;
    full.values[5].i = 2;
    full.values[6].kind = Value::Kind::kBool;
    full.values[6].b = true;
    full.values[7].kind = Value::Kind::kFloat;
    full.values[7].f = 52.5;
    Event& odd = events[2];  // zeros, empty strings, negative time
    odd.values[0].kind = Value::Kind::kTime;
    odd.values[0].i = -1;
    odd.SetString(2, "");
    odd.values[4].kind = Value::Kind::kFloat;
    odd.values[4].f = 0;
    odd.values[5].kind = Value::Kind::kInt;
    odd.values[5].i = 0;
    const double nan = std::nan("");
    slots = {{7, 0.5}, {nan, nan}, {0, -1e308}};
  }
};

bool SameNumber(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

void Check(const Fixture& f, std::string_view text, Type want) {
  const CompileResult r = Compile(text, f.schema, f.lists, want);
  if (!r.ok()) {
    const Diagnostic& d = r.error();
    if (d.code == Errc::kOk || d.message.empty()) Bug("error without a code or message", text);
    if (static_cast<size_t>(d.offset) + d.length > text.size()) Bug("error outside text", text);
    return;
  }
  const Program& p = r.value();
  const std::string& canonical = p.canonical();
  const CompileResult again = Compile(canonical, f.schema, f.lists, want);
  if (!again.ok()) Bug("canonical text does not compile", canonical);
  if (again.value().canonical() != canonical) Bug("canonical text not stable", canonical);
  for (size_t i = 0; i < f.events.size(); ++i) {
    if (want == Type::kBool) {
      const Tri a = p.Evaluate(f.events[i], f.slots[i]);
      if (static_cast<int>(a) > 2) Bug("invalid Tri", text);
      if (again.value().Evaluate(f.events[i], f.slots[i]) != a) Bug("canonical differs", text);
    } else {
      const double a = p.EvaluateNumber(f.events[i], f.slots[i]);
      const double b = again.value().EvaluateNumber(f.events[i], f.slots[i]);
      if (!SameNumber(a, b)) Bug("canonical differs", text);
    }
  }
  std::string explanation;
  p.Explain(f.events[0], f.slots[0], explanation);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture fixture;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    Check(fixture, text, Type::kBool);
    Check(fixture, text, Type::kNumber);
  } catch (const std::exception& e) {
    Bug("exception escaped", e.what());
  } catch (...) {
    Bug("non-standard exception escaped", "");
  }
  return 0;
}
