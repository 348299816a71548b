#include "vigil/rules/expr.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <system_error>

#include <fmt/format.h>

#include "vigil/common/time.h"
#include "vigil/rules/internal/code.h"
#include "vigil/rules/internal/codegen.h"
#include "vigil/rules/internal/lexer.h"
#include "vigil/rules/internal/list.h"
#include "vigil/rules/internal/numeric.h"
#include "vigil/rules/internal/parser.h"

namespace vigil::rules {

using rules_internal::Code;
using rules_internal::List;

namespace {

// Longer texts are refused before lexing; offsets must fit in 32 bits, and no real rule is
// anywhere near this long.
constexpr size_t kMaxTextBytes = 64 * 1024;

Type TypeOf(FieldType t) {
  switch (t) {
    case FieldType::kInt:
    case FieldType::kFloat:
    case FieldType::kLat:
    case FieldType::kLon:
      return Type::kNumber;
    case FieldType::kBool:
      return Type::kBool;
    case FieldType::kString:
      return Type::kString;
    case FieldType::kTimestamp:
      return Type::kTimestamp;
  }
  return Type::kNumber;
}

void AppendNumber(std::string& out, double x, bool integer_field) {
  if (std::isnan(x)) {
    out += "null";
  } else if (integer_field || (x == std::trunc(x) && std::fabs(x) < 1e15)) {
    fmt::format_to(std::back_inserter(out), "{:.0f}", x);
  } else if (std::fabs(x) >= 0.01 && std::fabs(x) < 1e15) {
    fmt::format_to(std::back_inserter(out), "{:.2f}", x);
  } else {
    fmt::format_to(std::back_inserter(out), "{:.3g}", x);
  }
}

// Lead and continuation bytes only (overlong forms and surrogates are not checked).
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

std::string_view ErrcName(Errc c) {
  switch (c) {
    case Errc::kOk:
      return "ok";
    case Errc::kSyntax:
      return "syntax";
    case Errc::kUnknownName:
      return "unknown_name";
    case Errc::kType:
      return "type";
    case Errc::kTooComplex:
      return "too_complex";
    case Errc::kDuplicateName:
      return "duplicate_name";
    case Errc::kListFile:
      return "list_file";
  }
  return "unknown";
}

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kNull:
      return "null";
    case Type::kNumber:
      return "number";
    case Type::kBool:
      return "bool";
    case Type::kString:
      return "string";
    case Type::kTimestamp:
      return "timestamp";
  }
  return "?";
}

// --- Schema

Schema::Schema(std::span<const config::FieldSpec> fields) {
  for (const config::FieldSpec& f : fields) {
    if (!AddField(f.name, f.type).ok()) ++field_count_;  // keep later fields at their index
  }
}

Result<int, Errc> Schema::Add(std::string_view name, Entry entry) {
  if (by_name_.find(name) != by_name_.end()) {
    return Error<Errc>{Errc::kDuplicateName, fmt::format("'{}' is declared twice", name)};
  }
  entry.name = std::string(name);
  const int index = entry.index;
  by_name_.emplace(entry.name, entries_.size());
  entries_.push_back(std::move(entry));
  return index;
}

Result<int, Errc> Schema::AddField(std::string_view name, FieldType type) {
  Entry e;
  e.slot = false;
  e.index = field_count_;
  e.type = TypeOf(type);
  e.field_type = type;
  Result<int, Errc> r = Add(name, std::move(e));
  if (r.ok()) ++field_count_;
  return r;
}

Result<int, Errc> Schema::AddSlot(std::string_view name) {
  Entry e;
  e.slot = true;
  e.index = slot_count_;
  e.type = Type::kNumber;
  Result<int, Errc> r = Add(name, std::move(e));
  if (r.ok()) ++slot_count_;
  return r;
}

const Schema::Entry* Schema::Find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

// --- Lists

void Lists::Add(std::string_view name, std::span<const std::string> values) {
  lists_.insert_or_assign(std::string(name),
                          std::make_shared<const List>(List::FromStrings(values)));
}

void Lists::Add(std::string_view name, std::initializer_list<std::string_view> values) {
  const std::vector<std::string> copy(values.begin(), values.end());
  Add(name, copy);
}

void Lists::AddNumbers(std::string_view name, std::span<const double> values) {
  lists_.insert_or_assign(std::string(name),
                          std::make_shared<const List>(List::FromNumbers(values)));
}

std::vector<std::string> Lists::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, list] : lists_) names.push_back(name);
  return names;
}

std::shared_ptr<const List> Lists::Find(std::string_view name) const {
  const auto it = lists_.find(name);
  return it == lists_.end() ? nullptr : it->second;
}

Result<std::vector<std::string>, Errc> LoadList(const std::string& path) {
  auto fail = [&](std::string what) {
    return Error<Errc>{Errc::kListFile, fmt::format("{}: {}", path, what)};
  };
  auto fail_line = [&](size_t line, std::string what) {
    return Error<Errc>{Errc::kListFile, fmt::format("{}:{}: {}", path, line, what)};
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return fail("cannot open: " + std::generic_category().message(errno));
  std::string data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error) return fail("read error");

  std::vector<std::string> values;
  size_t line_no = 0;
  size_t pos = 0;
  if (data.starts_with("\xEF\xBB\xBF")) pos = 3;  // a UTF-8 byte order mark
  while (pos < data.size()) {
    ++line_no;
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::string_view line(data.data() + pos, end - pos);
    pos = end + 1;
    // A comment starts at '#' at the line's start or after whitespace.
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = line.substr(0, i);
        break;
      }
    }
    const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    while (!line.empty() && blank(line.front())) line.remove_prefix(1);
    while (!line.empty() && blank(line.back())) line.remove_suffix(1);
    if (line.empty()) continue;
    for (char c : line) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 && c != '\t') {
        return fail_line(line_no, fmt::format("control character 0x{:02X} in a value", u));
      }
    }
    if (!ValidUtf8(line)) return fail_line(line_no, "not valid UTF-8");
    if (line.size() >= 2 && (line.front() == '"' || line.front() == '\'') &&
        line.back() == line.front()) {
      return fail_line(line_no, fmt::format("write values without quotes: {}, not {}",
                                            line.substr(1, line.size() - 2), line));
    }
    values.emplace_back(line);
  }
  return values;
}

// --- Program

Program::Program(std::unique_ptr<const Code> code) : code_(std::move(code)) {}
Program::Program(Program&&) noexcept = default;
Program& Program::operator=(Program&&) noexcept = default;
Program::~Program() = default;

Type Program::type() const { return code_->type; }
std::span<const Program::Ref> Program::refs() const { return code_->refs; }
const std::string& Program::canonical() const { return code_->canonical; }
size_t Program::code_size() const { return code_->instrs.size(); }

Tri Program::Evaluate(const Event& event, std::span<const double> slots) const {
  const Code& c = *code_;
  const bool fits = event.values.size() >= c.fields_needed && slots.size() >= c.slots_needed;
  assert(c.type == Type::kBool && "Evaluate on a number program: use EvaluateNumber");
  assert(fits && "event or slots shorter than the schema the program was compiled against");
  if (c.type != Type::kBool || !fits) return Tri::kNull;
  return static_cast<Tri>(c.Run(event, slots.data()).tri);
}

double Program::EvaluateNumber(const Event& event, std::span<const double> slots) const {
  const Code& c = *code_;
  const bool fits = event.values.size() >= c.fields_needed && slots.size() >= c.slots_needed;
  assert(c.type == Type::kNumber && "EvaluateNumber on a bool program: use Evaluate");
  assert(fits && "event or slots shorter than the schema the program was compiled against");
  if (c.type != Type::kNumber || !fits) return rules_internal::kNaN;
  return c.Run(event, slots.data()).num;
}

void Program::Explain(const Event& event, std::span<const double> slots, std::string& out) const {
  bool first = true;
  for (const Ref& r : code_->refs) {
    if (!first) out += ", ";
    first = false;
    out += r.name;
    out += '=';
    if (r.slot) {
      const auto i = static_cast<size_t>(r.index);
      AppendNumber(out, i < slots.size() ? slots[i] : rules_internal::kNaN, false);
      continue;
    }
    const auto i = static_cast<size_t>(r.index);
    const Value v = i < event.values.size() ? event.values[i] : Value{};
    switch (v.kind) {
      case Value::Kind::kNull:
        out += "null";
        break;
      case Value::Kind::kInt:
        AppendNumber(out, static_cast<double>(v.i), true);
        break;
      case Value::Kind::kFloat:
        AppendNumber(out, v.f, false);
        break;
      case Value::Kind::kBool:
        out += v.b ? "true" : "false";
        break;
      case Value::Kind::kString:
        out += '"';
        out += event.Str(v);
        out += '"';
        break;
      case Value::Kind::kTime:
        AppendIso8601(out, v.i);
        break;
    }
  }
}

// --- Compile

CompileResult Compile(std::string_view text, const Schema& schema, const Lists& lists, Type want) {
  assert((want == Type::kBool || want == Type::kNumber) && "Compile: want kBool or kNumber");
  Diagnostic error;
  if (text.size() > kMaxTextBytes) {
    error.code = Errc::kTooComplex;
    error.message = fmt::format("expression longer than {} bytes", kMaxTextBytes);
    return error;
  }
  std::vector<rules_internal::Token> tokens;
  if (!rules_internal::Lex(text, tokens, error)) return error;
  rules_internal::Ast ast;
  if (!rules_internal::Parse(text, tokens, schema, lists, ast, error)) return error;
  const rules_internal::Node& root = ast.nodes[static_cast<size_t>(ast.root)];
  if (root.type != want) {
    error.code = Errc::kType;
    error.offset = root.pos;
    error.length = root.len;
    error.message =
        want == Type::kBool
            ? fmt::format("a condition must be a bool; this expression is a {}",
                          TypeName(root.type))
            : fmt::format("expected a number; this expression is a {}", TypeName(root.type));
    return error;
  }
  auto code = std::make_unique<Code>();
  code->type = want;
  if (!rules_internal::Generate(ast, *code, error)) return error;
  code->refs = std::move(ast.refs);
  code->canonical = rules_internal::Render(ast);
  return Program(std::move(code));
}

// --- Positions

LineCol MapOffset(int line, int column, ScalarStyle style, std::string_view value, size_t offset) {
  offset = std::min(offset, value.size());
  if (style == ScalarStyle::kPlain) return {line, column + static_cast<int>(offset)};
  int col = column + 1;  // the opening quote
  for (size_t i = 0; i < offset; ++i) {
    const char c = value[i];
    int width = 1;
    if (style == ScalarStyle::kDoubleQuoted) {
      if (c == '"' || c == '\\' || (static_cast<unsigned char>(c) < 0x20 && c != '\t')) width = 2;
    } else if (c == '\'') {
      width = 2;
    }
    col += width;
  }
  return {line, col};
}

}  // namespace vigil::rules
