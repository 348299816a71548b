#pragma once

#include <string>
#include <string_view>

#include "vigil/config/pipeline.h"
#include "vigil/source/record_source.h"

namespace vigil::decode_test {

// A record as a source delivers it: the text followed by kRecordPadding readable bytes. The
// padding is zeros by default; tests also fill it with JSON punctuation, as a file source's
// read-ahead buffer would hold the next record's bytes there.
class Padded {
 public:
  explicit Padded(std::string_view text, char fill = '\0') : size_(text.size()) {
    buffer_.reserve(text.size() + source::kRecordPadding);
    buffer_.append(text);
    buffer_.append(source::kRecordPadding, fill);
  }
  std::string_view view() const { return {buffer_.data(), size_}; }
  operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)

 private:
  std::string buffer_;
  size_t size_;
};

inline config::Pipeline Load(const std::string& yaml) {
  return config::LoadPipelineText(yaml, "test.yaml");
}

}  // namespace vigil::decode_test
