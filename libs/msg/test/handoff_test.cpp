// detail::handoff, the queue other threads hand an I/O thread work through: every item
// pushed reaches a consumer that sleeps in poll() between takes, and the eventfd is left
// unreadable once everything is taken (a stale readable fd would make every later poll
// return at once: a busy loop).

#include "handoff.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <thread>
#include <vector>

namespace canopy::msg::detail {
namespace {

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

TEST(Handoff, EveryPushReachesASleepingConsumerAndTheFdEndsQuiet) {
  handoff<int> h;
  constexpr int producers = 4;
  constexpr int per_producer = 20000;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&h, p] {
      for (int i = 0; i < per_producer; ++i) h.push(p * per_producer + i);
    });
  std::vector<int> spare;
  std::size_t received = 0;
  int missed_wakes = 0;
  while (received < static_cast<std::size_t>(producers * per_producer)) {
    h.set_sleeping(true);
    bool fd_readable = false;
    if (!h.pending()) {
      // Asleep: a push must wake us. 10 s without one while items are pending is a
      // missed wake (the producers never pause that long).
      fd_readable = readable(h.fd(), 10000);
      if (!fd_readable && h.pending()) ++missed_wakes;
    }
    h.set_sleeping(false);
    spare = h.take(std::move(spare), fd_readable || readable(h.fd(), 0));
    received += spare.size();
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(missed_wakes, 0);
  EXPECT_EQ(received, static_cast<std::size_t>(producers * per_producer));
  // Drained: nothing left and the fd quiet, so the next poll would sleep.
  spare = h.take(std::move(spare), readable(h.fd(), 0));
  EXPECT_TRUE(spare.empty());
  EXPECT_FALSE(h.pending());
  EXPECT_FALSE(readable(h.fd(), 0));
}

TEST(Handoff, APushWhileTheConsumerIsAwakeWritesNothing) {
  handoff<int> h;
  h.set_sleeping(false);
  h.push(1);
  EXPECT_TRUE(h.pending());
  EXPECT_FALSE(readable(h.fd(), 0));  // no system call for a consumer about to look anyway
  EXPECT_EQ(h.take().size(), 1u);
  h.set_sleeping(true);
  h.push(2);
  h.push(3);  // the fd is written once for both
  EXPECT_TRUE(readable(h.fd(), 0));
  EXPECT_EQ(h.take({}, true).size(), 2u);
  EXPECT_FALSE(readable(h.fd(), 0));
}

}  // namespace
}  // namespace canopy::msg::detail
