#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "vigil/source/record_source.h"

namespace vigil::source {
namespace {

struct Got {
  std::string text;
  uint64_t offset;
  uint64_t line;
  bool oversize;
};

class FileSourceTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& content) {
    path_ = ::testing::TempDir() + "/vigil_source_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::ofstream(path_, std::ios::binary) << content;
    return path_;
  }
  std::vector<Got> ReadAll(const std::string& content, FileOptions o = {}, size_t batch = 3) {
    auto src = OpenFile(Write(content), o);
    std::vector<Record> recs;
    std::vector<Got> all;
    while (src->Next(recs, batch)) {
      for (const Record& r : recs) {
        // The padding contract: 64 readable bytes after the text.
        volatile char c = r.text.data()[r.text.size() + kRecordPadding - 1];
        (void)c;
        all.push_back({std::string(r.text), r.offset, r.line, r.oversize});
      }
    }
    last_position_ = src->Position();
    return all;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_;
  uint64_t last_position_ = 0;
};

TEST_F(FileSourceTest, FramesLinesWithOffsetsAndLineNumbers) {
  const auto got = ReadAll("a\nbb\r\n\nccc\n  \n");
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].text, "a");
  EXPECT_EQ(got[1].text, "bb");  // CR stripped
  EXPECT_EQ(got[1].offset, 2u);
  EXPECT_EQ(got[2].text, "ccc");  // blank line 3 skipped, line numbers still count it
  EXPECT_EQ(got[2].line, 4u);
  EXPECT_EQ(got[2].offset, 7u);
  EXPECT_EQ(got[3].text, "  ");  // whitespace is content; the decoder rejects it
  EXPECT_EQ(last_position_, 14u);
}

TEST_F(FileSourceTest, LastLineWithoutNewline) {
  const auto got = ReadAll("x\ny");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].text, "y");
  EXPECT_EQ(last_position_, 3u);
}

TEST_F(FileSourceTest, CsvNewlineInsideQuotesDoesNotEndTheRecord) {
  FileOptions o;
  o.framing = Framing::kCsv;
  const auto got = ReadAll("h1,h2\n\"a\nb\",\"say \"\"hi\"\"\"\nc,d\n", o);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].text, "\"a\nb\",\"say \"\"hi\"\"\"");
  EXPECT_EQ(got[1].line, 2u);
  EXPECT_EQ(got[2].text, "c,d");
  EXPECT_EQ(got[2].line, 4u);
}

TEST_F(FileSourceTest, OversizeRecordsAreReportedOnceAndSkipped) {
  FileOptions o;
  o.max_record_bytes = 16;
  const std::string big(40, 'x');
  const auto got = ReadAll("ok1\n" + big + "\nok2\n" + big, o);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].text, "ok1");
  EXPECT_TRUE(got[1].oversize);
  EXPECT_EQ(got[1].text, std::string(16, 'x'));
  EXPECT_EQ(got[1].line, 2u);
  EXPECT_EQ(got[2].text, "ok2");
  EXPECT_EQ(got[2].line, 3u);
  EXPECT_EQ(got[2].offset, 45u);
  EXPECT_TRUE(got[3].oversize);
  EXPECT_EQ(got[3].line, 4u);
}

TEST_F(FileSourceTest, OversizeLargerThanTheReadChunk) {
  FileOptions o;
  o.max_record_bytes = 16;
  const std::string huge(5 << 20, 'y');  // 5 MiB line: spans several chunk reads
  const auto got = ReadAll("a\n" + huge + "\nb\n", o);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[1].oversize);
  EXPECT_EQ(got[2].text, "b");
  EXPECT_EQ(got[2].line, 3u);
  EXPECT_EQ(got[2].offset, 2u + huge.size() + 1);
}

TEST_F(FileSourceTest, RecordsCrossingChunkBoundariesAreIntact) {
  std::string content;
  std::vector<std::string> want;
  for (int i = 0; i < 60000; ++i) {
    want.push_back("{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(i % 50, 'p') +
                   "\"}");
    content += want.back() + "\n";
  }
  const auto got = ReadAll(content, {}, 1000);
  ASSERT_EQ(got.size(), want.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].text, want[i]) << i;
    ASSERT_EQ(got[i].offset, offset);
    ASSERT_EQ(got[i].line, i + 1);
    offset += want[i].size() + 1;
  }
}

TEST_F(FileSourceTest, ResumesAtAnOffset) {
  FileOptions o;
  o.start_offset = 5;
  o.start_line = 3;
  const auto got = ReadAll("aa\nb\ncc\ndd\n", o);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].text, "cc");
  EXPECT_EQ(got[0].offset, 5u);
  EXPECT_EQ(got[0].line, 3u);
}

TEST(FileSource, MissingFileNamesThePath) {
  try {
    OpenFile("/nonexistent/in.jsonl", {});
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/in.jsonl: cannot open input: No such file or directory");
  }
}

}  // namespace
}  // namespace vigil::source
