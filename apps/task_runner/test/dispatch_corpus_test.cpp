// The dispatch fuzzer's corpus (every op with good, ill-typed, out-of-range and missing
// arguments, frames that are not requests, and every finding) sent to a running task_runner
// through testing::app_probe on each build — ASan and TSan included.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "canopy/testing/app_probe.hpp"
#include "dispatch_setup.hpp"

TEST(TasksDispatch, EveryCorpusFrameIsAnsweredWellAndTheAppKeepsServing) {
  auto served = canopy::task_app::fuzz::dispatch_app();
  auto probe = canopy::testing::app_probe::start(*served);
  EXPECT_THAT(probe->replay(CANOPY_DISPATCH_CORPUS_DIR), ::testing::IsEmpty());
}
