#include <cstdio>
#include <string>

#include "vigil/app/commands.h"
#include "vigil/sink/case_store.h"
#include "vigil/sink/output_file.h"

namespace vigil::app {

int Labels(const LabelsArgs& a) {
  auto cases = sink::CaseStore::Open(a.db);
  const auto labels = cases->Labels();
  auto out = sink::OutputFile::Open(a.out);
  out->Write("event_id,label\n");
  size_t fraud = 0;
  for (const auto& [id, label] : labels) {
    fraud += label == 1;
    // Event ids with a comma or quote are quoted as CSV wants.
    if (id.find_first_of(",\"\n") == std::string::npos) {
      out->Write(id);
    } else {
      std::string q = "\"";
      for (char c : id) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      out->Write(q + "\"");
    }
    out->Write(label ? ",1\n" : ",0\n");
  }
  out->Flush();
  std::fprintf(stderr,
               "vigil labels: %zu labelled alerts from closed cases in %s (%zu fraud, %zu "
               "not_fraud; inconclusive cases give none) -> %s\n",
               labels.size(), a.db.c_str(), fraud, labels.size() - fraud,
               a.out == "-" ? "stdout" : a.out.c_str());
  return 0;
}

}  // namespace vigil::app
