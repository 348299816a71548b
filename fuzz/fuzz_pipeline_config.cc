// Feeds arbitrary bytes to the pipeline file loader. Loading may only fail with ConfigError
// (every diagnostic naming the file); any other exception escaping is a bug. A pipeline that
// loads must yield a decoder that can decode a record.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "vigil/config/pipeline.h"
#include "vigil/decode/decoder.h"
#include "vigil/source/record_source.h"

namespace {

[[noreturn]] void Bug(const char* what, const char* detail) {
  std::fprintf(stderr, "pipeline config bug: %s: %s\n", what, detail);
  std::abort();
}

void CheckPipeline(const vigil::config::Pipeline& p) {
  const size_t n = p.input.fields.size();
  if (n == 0) Bug("loaded without fields", p.name.c_str());
  if (p.id_field >= n || p.time_field >= n || p.key_field >= n) Bug("event field index", "");
  auto decoder = vigil::decode::MakeDecoder(p);
  const std::string line =
      std::string("{\"a\":1}") + std::string(vigil::source::kRecordPadding, '\0');
  vigil::Event event;
  if (decoder->WantsHeader()) (void)decoder->ReadHeader(std::string_view(line.data(), 7));
  (void)decoder->Decode(std::string_view(line.data(), 7), event);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    CheckPipeline(vigil::config::LoadPipelineText(text, "fuzz.yaml"));
  } catch (const vigil::config::ConfigError& e) {
    if (e.diagnostics().empty()) Bug("ConfigError without diagnostics", "");
    for (const std::string& d : e.diagnostics()) {
      if (d.rfind("fuzz.yaml", 0) != 0) Bug("diagnostic does not name the file", d.c_str());
    }
  } catch (const std::exception& e) {
    Bug("exception other than ConfigError escaped", e.what());
  } catch (...) {
    Bug("non-standard exception escaped", "");
  }
  return 0;
}
