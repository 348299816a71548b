#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <simdjson.h>

#include "vigil/decode/internal/csv_splitter.h"
#include "vigil/decode/internal/decoders.h"
#include "vigil/decode/internal/field_parser.h"

namespace vigil::decode_internal {

namespace {

using config::FieldSpec;
using decode::DecodeStatus;
using decode::Errc;

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// Most cells are ASCII; checking that inline is cheaper than a validate_utf8 call per cell.
bool IsAscii(std::string_view s) {
  const char* p = s.data();
  const char* const end = p + s.size();
  uint64_t any = 0;
  for (; end - p >= 8; p += 8) {
    uint64_t w;
    std::memcpy(&w, p, sizeof(w));
    any |= w;
  }
  for (; p < end; ++p) any |= static_cast<unsigned char>(*p);
  return (any & 0x8080808080808080ULL) == 0;
}

constexpr size_t kMaxListedColumns = 512;  // bytes of column names quoted in a header error

// CsvDecoder maps CSV cells to fields by column: from the header (FieldSpec::from names the
// column) or, without a header, by FieldSpec::column. See decoder.h for the contract.
class CsvDecoder final : public decode::Decoder {
 public:
  explicit CsvDecoder(const config::Pipeline& pipeline)
      : pipeline_(pipeline),
        splitter_(pipeline.input.delimiter),
        columns_(pipeline.input.fields.size(), -1),
        have_header_(!pipeline.input.header) {
    if (!pipeline.input.header) {
      for (size_t i = 0; i < columns_.size(); ++i) columns_[i] = pipeline.input.fields[i].column;
    }
  }

  CsvDecoder(const CsvDecoder&) = delete;
  CsvDecoder& operator=(const CsvDecoder&) = delete;

  bool WantsHeader() const override { return !have_header_; }

  DecodeStatus ReadHeader(std::string_view record) override {
    DecodeStatus status;
    std::string error;
    if (!splitter_.Split(record, error)) {
      FailRecord(Errc::kBadHeader, "CSV header: " + error, status);
      header_error_ = status;
      return status;
    }
    std::vector<std::string_view> names(splitter_.size());
    for (size_t c = 0; c < names.size(); ++c) {
      std::string_view name = TrimSpace(splitter_[c].text);
      if (c == 0 && name.starts_with(kUtf8Bom)) name = TrimSpace(name.substr(kUtf8Bom.size()));
      names[c] = name;
    }
    const auto& fields = pipeline_.input.fields;
    for (size_t i = 0; i < fields.size(); ++i) {
      columns_[i] = -1;
      for (size_t c = 0; c < names.size(); ++c) {
        if (names[c] == fields[i].from) {  // the first of duplicate columns wins
          columns_[i] = static_cast<int>(c);
          break;
        }
      }
      if (columns_[i] < 0 && fields[i].required && status.ok()) {
        std::string list;
        for (std::string_view name : names) {
          if (!list.empty()) list += ", ";
          if (list.size() + name.size() > kMaxListedColumns) {
            list += "...";
            break;
          }
          AppendEscaped(list, name);  // header bytes are input: keep the message UTF-8
        }
        status.code = Errc::kBadHeader;
        status.field = fields[i].name;
        status.message =
            fmt::format("CSV header has no column '{}' (columns: {})", fields[i].from, list);
      }
    }
    header_error_ = status;
    have_header_ = status.ok();
    return status;
  }

  DecodeStatus Decode(std::string_view record, Event& event) override {
    const auto& fields = pipeline_.input.fields;
    event.Reset(fields.size());
    DecodeStatus status;
    if (!CheckSize(pipeline_, record.size(), status)) return status;
    if (!have_header_) {
      if (!header_error_.ok()) return header_error_;
      FailRecord(Errc::kBadHeader, "the CSV header has not been read", status);
      return status;
    }
    if (record.empty() || record == "\r") {
      FailRecord(Errc::kParse, "empty record", status);
      return status;
    }
    if (!splitter_.Split(record, error_)) {
      FailRecord(Errc::kParse, error_, status);
      return status;
    }
    const size_t cells = splitter_.size();
    for (size_t i = 0; i < fields.size(); ++i) {
      const FieldSpec& spec = fields[i];
      const int column = columns_[i];
      if (column < 0) continue;  // optional and not in the header: always null
      if (static_cast<size_t>(column) >= cells) {
        if (spec.required) {
          FailMissing(spec,
                      fmt::format("the row has {} column{}, '{}' needs at least {}", cells,
                                  cells == 1 ? "" : "s", spec.name, column + 1),
                      status);
          return status;
        }
        continue;
      }
      const CsvSplitter::Cell& cell = splitter_[static_cast<size_t>(column)];
      if (cell.text.empty() && !cell.quoted) continue;  // absent: FinishEvent checks required
      if (spec.type == FieldType::kString && !IsAscii(cell.text) &&
          !simdjson::validate_utf8(cell.text.data(), cell.text.size())) {
        FailField(spec, Errc::kBadType,
                  fmt::format("expected UTF-8 text, got {}", Quote(cell.text)), status);
        return status;
      }
      if (SetField(spec, i, Source::kText, cell.text, event, status) == SetResult::kError) {
        return status;
      }
    }
    FinishEvent(pipeline_, event, status);
    return status;
  }

 private:
  const config::Pipeline& pipeline_;
  CsvSplitter splitter_;
  std::vector<int> columns_;  // by field: the cell it comes from, -1 when never present
  bool have_header_;
  DecodeStatus header_error_;  // why ReadHeader failed; repeated by every Decode after it
  std::string error_;          // splitter message buffer, reused
};

}  // namespace

std::unique_ptr<decode::Decoder> MakeCsvDecoder(const config::Pipeline& pipeline) {
  return std::make_unique<CsvDecoder>(pipeline);
}

}  // namespace vigil::decode_internal
