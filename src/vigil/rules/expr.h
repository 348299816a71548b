#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vigil/common/event.h"
#include "vigil/common/result.h"
#include "vigil/config/pipeline.h"

namespace vigil::rules_internal {
struct Code;
class List;
}  // namespace vigil::rules_internal

// The rule expression language: compiles an analyst's expression such as
//   card_txn_10m >= 5 and amount > 3 * coalesce(card_avg_30d, 100) and mcc in high_risk_mcc
// against a Schema and a Lists snapshot, and evaluates the compiled Program per event without
// allocating. The grammar and semantics are in src/vigil/rules/README.md.
namespace vigil::rules {

enum class Errc : uint8_t {
  kOk = 0,
  kSyntax,         // not a well-formed expression
  kUnknownName,    // a field, feature, list or function that does not exist
  kType,           // operands of the wrong type
  kTooComplex,     // nested or sized beyond the evaluator's fixed limits
  kDuplicateName,  // Schema: a name declared twice
  kListFile,       // LoadList: unreadable file or bad line
};

std::string_view ErrcName(Errc c);

// Static type of an expression. kNull is the type of the literal `null` only.
enum class Type : uint8_t { kNull, kNumber, kBool, kString, kTimestamp };

std::string_view TypeName(Type t);

// Three-valued truth (Kleene logic). The encoding makes `and` the minimum, `or` the maximum
// and `not` 2 - x. A rule fires only on kTrue.
enum class Tri : uint8_t { kFalse = 0, kNull = 1, kTrue = 2 };

// Schema names what an expression may refer to: input fields (read from Event::values by
// index) and numeric slots (features, later model scores; read from a span<const double> by
// index, NaN meaning null). Built at start-up; immutable while programs are compiled against
// it; const methods are thread-safe. Programs copy what they need and do not refer back to it.
class Schema {
 public:
  struct Entry {
    std::string name;
    bool slot = false;  // false: event field `index`; true: slots[index]
    int index = 0;
    Type type = Type::kNumber;
    FieldType field_type = FieldType::kFloat;  // fields only
  };

  Schema() = default;
  // The pipeline's input fields, field i at Event::values[i]. The pipeline loader has already
  // rejected duplicate names; should one slip through, the first declaration wins.
  explicit Schema(std::span<const config::FieldSpec> fields);

  // Appends a field at the next field index (int / float / lat / lon are numbers, bool is
  // bool, string is string, timestamp is timestamp). Fails on a name already declared.
  Result<int, Errc> AddField(std::string_view name, FieldType type);
  // Appends a numeric slot: the i-th slot added is slots[i] at evaluation time.
  Result<int, Errc> AddSlot(std::string_view name);

  const Entry* Find(std::string_view name) const;
  const std::vector<Entry>& entries() const { return entries_; }
  int field_count() const { return field_count_; }
  int slot_count() const { return slot_count_; }

 private:
  Result<int, Errc> Add(std::string_view name, Entry entry);
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> by_name_;
  int field_count_ = 0;
  int slot_count_ = 0;
};

// Lists is a snapshot of named lists (`x in high_risk_mcc`). Each list is immutable once
// added; adding replaces a list in this snapshot only. Lifetime: a Program holds shared
// ownership of every list it references, so a hot reload builds a new snapshot (copying a
// Lists is cheap: it copies pointers), recompiles the rules against it and swaps them in while
// workers still evaluate old programs over the old lists; the last program dropped frees
// them. Not thread-safe to mutate; const methods are thread-safe.
class Lists {
 public:
  // String values. The list also matches numbers when every value parses as one (so a file of
  // merchant category codes serves an int field and a string field alike).
  void Add(std::string_view name, std::span<const std::string> values);
  void Add(std::string_view name, std::initializer_list<std::string_view> values);
  // Numeric values only; such a list cannot be matched against strings.
  void AddNumbers(std::string_view name, std::span<const double> values);

  bool Contains(std::string_view name) const { return lists_.find(name) != lists_.end(); }
  std::vector<std::string> Names() const;  // sorted
  // Shared ownership: see the class comment. Null if absent.
  std::shared_ptr<const rules_internal::List> Find(std::string_view name) const;

 private:
  std::map<std::string, std::shared_ptr<const rules_internal::List>, std::less<>> lists_;
};

// Reads a list file: one value per line, surrounding whitespace trimmed, blank lines and
// comments ignored (`#` at the start of a line or after whitespace starts a comment). Errors
// are "path:line: what" (or "path: what" for the file as a whole). Start-up / reload only.
Result<std::vector<std::string>, Errc> LoadList(const std::string& path);

// Where and why an expression failed to compile. `offset` and `length` are bytes of the
// expression text (length 0 at the end of the text).
struct Diagnostic {
  Errc code = Errc::kOk;
  uint32_t offset = 0;
  uint32_t length = 0;
  std::string message;
};

// Program is a compiled expression: a flat postfix code with its constants, evaluated with a
// fixed-size value stack on the caller's stack. Immutable after Compile; Evaluate and the
// other const methods may run concurrently on any number of threads. Move-only.
class Program {
 public:
  // A field or slot the expression reads, for explanations ("card_txn_10m=7").
  struct Ref {
    std::string name;
    bool slot = false;
    int index = 0;
    Type type = Type::kNumber;
  };

  Program(Program&&) noexcept;
  Program& operator=(Program&&) noexcept;
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  ~Program();

  Type type() const;  // kBool or kNumber: what Compile was asked for

  // Evaluates a kBool program. `event` must have every schema field and `slots` every slot
  // the schema declares (a shorter input is a caller bug: asserted, kNull in release).
  // Never allocates, never throws.
  Tri Evaluate(const Event& event, std::span<const double> slots) const;
  // Evaluates a kNumber program; NaN is null. Never allocates, never throws.
  double EvaluateNumber(const Event& event, std::span<const double> slots) const;

  // Fields and slots referenced, in source order, each once.
  std::span<const Ref> refs() const;
  // Appends "name=value, ..." for refs() (strings quoted, null as null, timestamps ISO-8601).
  void Explain(const Event& event, std::span<const double> slots, std::string& out) const;
  // The expression re-rendered canonically: keywords (`and`, not `&&`), one space around
  // binary operators, double-quoted strings, only the parentheses precedence needs.
  const std::string& canonical() const;
  size_t code_size() const;  // instructions, for tests and benchmarks

  // Made by Compile (the code type is internal to this stage).
  explicit Program(std::unique_ptr<const rules_internal::Code> code);

 private:
  std::unique_ptr<const rules_internal::Code> code_;
};

// A Program or the first problem found in the text.
class [[nodiscard]] CompileResult {
 public:
  CompileResult(Program program) : v_(std::move(program)) {}  // NOLINT(google-explicit-constructor)
  CompileResult(Diagnostic error) : v_(std::move(error)) {}   // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  Program& value() { return std::get<0>(v_); }
  const Program& value() const { return std::get<0>(v_); }
  const Diagnostic& error() const { return std::get<1>(v_); }

 private:
  std::variant<Program, Diagnostic> v_;
};

// Compiles `text`; `want` is kBool for a rule condition or kNumber for a score. Runs at
// start-up or reload, never per event; reports errors as values.
CompileResult Compile(std::string_view text, const Schema& schema, const Lists& lists,
                      Type want = Type::kBool);

// How a YAML scalar was written, for mapping offsets back to the file.
enum class ScalarStyle : uint8_t { kPlain, kSingleQuoted, kDoubleQuoted };

struct LineCol {
  int line = 0;  // 0-based, like YAML::Mark
  int column = 0;
};

// Maps byte `offset` of an expression to its place in the pipeline file. `line`/`column` are
// the scalar's YAML::Mark (the first character of a plain scalar, the opening quote of a
// quoted one: file_text[mark.pos] tells which); `value` is the scalar's text. Exact for
// single-line scalars whose quoted form uses only the escapes \" \\ ('' in single quotes);
// for other scalars the result is an approximation on the scalar's first line.
LineCol MapOffset(int line, int column, ScalarStyle style, std::string_view value, size_t offset);

}  // namespace vigil::rules
