#include "vigil/sink/output_file.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace vigil::sink {
namespace {

std::string Slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(OutputFile, ResumeCutsBackToTheCommittedLength) {
  const std::string path = ::testing::TempDir() + "/vigil_output_file_test.jsonl";
  {
    auto f = OutputFile::Open(path);
    f->Write("line1\nline2\npartial");
    EXPECT_EQ(f->Size(), 19u);
  }
  {
    auto f = OutputFile::Open(path, 12);  // the checkpoint saw two whole lines
    EXPECT_EQ(f->Size(), 12u);
    f->Write("line3\n");
  }
  EXPECT_EQ(Slurp(path), "line1\nline2\nline3\n");
  EXPECT_THROW(OutputFile::Open(path, 1000), std::runtime_error);  // shorter than recorded
}

}  // namespace
}  // namespace vigil::sink
