#include "vigil/sink/write_turns.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace vigil::sink {
namespace {

using std::chrono::milliseconds;

TEST(WriteTurns, OneFileOneInstanceWhateverItsSpelling) {
  const std::string dir = ::testing::TempDir();
  const auto a = WriteTurns::For(dir + "/turns.db");
  EXPECT_EQ(WriteTurns::For(dir + "/./turns.db"), a);
  EXPECT_NE(WriteTurns::For(dir + "/other.db"), a);
}

TEST(WriteTurns, AShortWriterWaitsForTheTurnOrTimesOut) {
  WriteTurns turns;
  ASSERT_TRUE(turns.EnterAfterOthers(milliseconds(5000)));
  EXPECT_FALSE(turns.Enter(milliseconds(20)));  // held: not within the timeout
  std::thread leave([&] {
    std::this_thread::sleep_for(milliseconds(50));
    turns.Leave();
  });
  EXPECT_TRUE(turns.Enter(milliseconds(5000)));  // given when the holder leaves
  leave.join();
  turns.Leave();
}

// When a turn ends with a short writer and a long one (the engine's alert store, which
// begins its next transaction as soon as it commits) both waiting, the short one goes first.
TEST(WriteTurns, AShortWriterWaitingGoesBeforeALongOne) {
  for (int round = 0; round < 20; ++round) {
    WriteTurns turns;
    ASSERT_TRUE(turns.EnterAfterOthers(milliseconds(5000)));
    std::string order;
    std::mutex order_mu;
    const auto went = [&](char who) {
      const std::lock_guard lock(order_mu);
      order += who;
    };
    std::thread short_writer([&] {
      ASSERT_TRUE(turns.Enter(milliseconds(5000)));
      went('s');
      turns.Leave();
    });
    while (turns.Waiting() == 0) std::this_thread::yield();
    std::thread long_writer([&] {
      ASSERT_TRUE(turns.EnterAfterOthers(milliseconds(5000)));
      went('l');
      turns.Leave();
    });
    std::this_thread::sleep_for(milliseconds(5));  // the long writer waiting too
    turns.Leave();
    short_writer.join();
    long_writer.join();
    EXPECT_EQ(order, "sl") << "round " << round;
  }
}

}  // namespace
}  // namespace vigil::sink
