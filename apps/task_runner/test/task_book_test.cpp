// task_book: every state transition with time passed in — queue limit, concurrency, delay,
// retries with bounded jittered backoff, timeouts, cancel, idempotency keys, listing,
// counts, retention — and the journal records it emits rebuilding an equal book.
#include "canopy/task_app/task_book.hpp"

#include <gtest/gtest.h>

namespace canopy::task_app {
namespace {

using ending = task_book::ending;

struct recorder {
  std::vector<std::string> records;
  task_book::sink sink() {
    return [this](std::string r) { records.push_back(std::move(r)); };
  }
};

task_spec kind(const std::string& k) {
  task_spec s;
  s.kind = k;
  return s;
}

std::vector<std::uint64_t> numbers(const std::vector<const task*>& ts) {
  std::vector<std::uint64_t> out;
  for (const task* t : ts) out.push_back(t->number);
  return out;
}

TEST(TaskBook, ATaskRunsOnceAndSucceeds) {
  task_book book({});
  auto s = book.submit(kind("echo"), 1000);
  ASSERT_TRUE(s.t);
  EXPECT_FALSE(s.existing);
  EXPECT_EQ(s.t->id(), "t-1");
  EXPECT_EQ(s.t->state, task_state::queued);
  EXPECT_EQ(s.t->attempts, 0u);
  auto started = book.start_due(1001);
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0]->state, task_state::running);
  EXPECT_EQ(started[0]->attempts, 1u);
  EXPECT_EQ(started[0]->started_ms, 1001u);
  const task* done = book.attempt_ended(1, 1, ending::succeeded, wire::value::of_int(7), std::nullopt, 1005);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state, task_state::succeeded);
  EXPECT_EQ(*done->result, wire::value::of_int(7));
  EXPECT_EQ(done->finished_ms, 1005u);
  EXPECT_EQ(book.counts().succeeded, 1u);
  // A second report of the same attempt is stale.
  EXPECT_EQ(book.attempt_ended(1, 1, ending::failed, std::nullopt, task_error{"late", ""}, 1006), nullptr);
  EXPECT_EQ(book.find(1)->state, task_state::succeeded);
}

TEST(TaskBook, TheQueueIsBoundedAndConcurrencyIsTooButAKeyIsNotCountedTwice) {
  task_book book({.queue_limit = 3, .max_concurrency = 2});
  for (int i = 0; i < 3; ++i) ASSERT_EQ(book.submit(kind("x"), 0).refused, task_book::refusal::none);
  EXPECT_EQ(book.submit(kind("x"), 0).refused, task_book::refusal::overloaded);
  EXPECT_EQ(numbers(book.start_due(0)), (std::vector<std::uint64_t>{1, 2}));  // two at a time
  EXPECT_TRUE(book.start_due(0).empty());
  EXPECT_EQ(book.counts().queued, 1u);
  EXPECT_EQ(book.counts().running, 2u);
  ASSERT_TRUE(book.submit(kind("x"), 0).t);  // room in the queue again
  book.attempt_ended(1, 1, ending::succeeded, std::nullopt, std::nullopt, 1);
  EXPECT_EQ(numbers(book.start_due(1)), (std::vector<std::uint64_t>{3}));  // oldest first
}

TEST(TaskBook, ADelayedTaskWaitsForItsTime) {
  task_book book({});
  task_spec s = kind("x");
  s.delay_ms = 500;
  book.submit(s, 1000);
  EXPECT_EQ(book.next_due_ms(), 1500u);
  EXPECT_TRUE(book.start_due(1499).empty());
  EXPECT_EQ(book.start_due(1500).size(), 1u);
}

TEST(TaskBook, FailedAttemptsRetryWithJitteredExponentialBackoffThenFail) {
  task_book book({.max_backoff_ms = 3000}, 42);
  task_spec s = kind("x");
  s.max_attempts = 4;
  s.backoff_ms = 1000;
  book.submit(s, 0);
  std::uint64_t now = 0;
  const std::uint64_t bases[] = {1000, 2000, 3000};  // the third is capped at max_backoff_ms
  for (std::uint64_t base : bases) {
    ASSERT_EQ(book.start_due(now).size(), 1u);
    const task* t = book.attempt_ended(1, book.find(1)->attempts, ending::failed, std::nullopt, task_error{"boom", "exception"}, now);
    ASSERT_EQ(t->state, task_state::queued);
    EXPECT_EQ(t->error->message, "boom");
    const std::uint64_t wait = t->run_at_ms - now;
    EXPECT_GE(wait, base / 2);  // equal jitter: at least half of it ...
    EXPECT_LE(wait, base);      // ... at most all of it
    EXPECT_TRUE(book.start_due(now + base / 2 - 1).empty());
    now = t->run_at_ms;
  }
  ASSERT_EQ(book.start_due(now).size(), 1u);
  const task* last = book.attempt_ended(1, 4, ending::failed, std::nullopt, task_error{"boom", "exception"}, now);
  EXPECT_EQ(last->state, task_state::failed);
  EXPECT_EQ(last->attempts, 4u);
  EXPECT_EQ(book.counts().failed, 1u);
}

TEST(TaskBook, ATimedOutAttemptRetriesAndTheLastEndsTimedOut) {
  task_book book({});
  task_spec s = kind("x");
  s.max_attempts = 2;
  s.timeout_ms = 10;
  book.submit(s, 0);
  book.start_due(0);
  EXPECT_EQ(book.attempt_ended(1, 1, ending::timed_out, std::nullopt, task_error{"slow", "timeout"}, 10)->state,
            task_state::queued);
  book.start_due(10);
  const task* t = book.attempt_ended(1, 2, ending::timed_out, std::nullopt, task_error{"slow", "timeout"}, 20);
  EXPECT_EQ(t->state, task_state::timed_out);
  EXPECT_EQ(t->error->kind, "timeout");
  EXPECT_EQ(book.counts().timed_out, 1u);
}

TEST(TaskBook, CancelStopsQueuedAndRunningTasksButNotFinishedOnes) {
  task_book book({});
  book.submit(kind("a"), 0);
  book.submit(kind("b"), 0);
  book.start_due(0);  // both running
  book.submit(kind("c"), 0);
  const auto queued = book.cancel(3, 1);
  EXPECT_TRUE(queued.done);
  EXPECT_FALSE(queued.was_running);
  const auto running = book.cancel(1, 1);
  EXPECT_TRUE(running.done);
  EXPECT_TRUE(running.was_running);
  EXPECT_EQ(book.find(1)->state, task_state::cancelled);
  EXPECT_EQ(book.attempt_ended(1, 1, ending::succeeded, std::nullopt, std::nullopt, 2), nullptr);  // its worker's late word
  book.attempt_ended(2, 1, ending::succeeded, std::nullopt, std::nullopt, 2);
  EXPECT_FALSE(book.cancel(2, 3).done);   // finished
  EXPECT_FALSE(book.cancel(99, 3).done);  // unknown
  EXPECT_EQ(book.counts().cancelled, 2u);
  EXPECT_EQ(book.counts().running, 0u);
}

TEST(TaskBook, AKeyUsedAgainAnswersTheSameTask) {
  task_book book({});
  task_spec s = kind("x");
  s.key = "invoice-7";
  auto first = book.submit(s, 0);
  auto again = book.submit(s, 5);
  EXPECT_FALSE(first.existing);
  EXPECT_TRUE(again.existing);
  EXPECT_EQ(again.t, first.t);
  EXPECT_EQ(book.size(), 1u);
}

TEST(TaskBook, ListIsNewestFirstAndFiltersByState) {
  task_book book({});
  for (int i = 0; i < 4; ++i) book.submit(kind("x"), static_cast<std::uint64_t>(i));
  book.start_due(10);  // all running
  book.attempt_ended(2, 1, ending::succeeded, std::nullopt, std::nullopt, 11);
  EXPECT_EQ(numbers(book.list(std::nullopt, 10)), (std::vector<std::uint64_t>{4, 3, 2, 1}));
  EXPECT_EQ(numbers(book.list(std::nullopt, 2)), (std::vector<std::uint64_t>{4, 3}));
  EXPECT_EQ(numbers(book.list(task_state::succeeded, 10)), (std::vector<std::uint64_t>{2}));
}

TEST(TaskBook, FinishedTasksAreForgottenAfterRetentionOrPastTheCap) {
  task_book book({.retention_ms = 100, .max_retained = 2});
  task_spec keyed = kind("x");
  keyed.key = "k";
  book.submit(keyed, 0);
  for (int i = 0; i < 3; ++i) book.submit(kind("x"), 0);
  book.start_due(0);
  for (std::uint64_t n = 1; n <= 3; ++n) book.attempt_ended(n, 1, ending::succeeded, std::nullopt, std::nullopt, n);
  EXPECT_EQ(book.forget_expired(3), 1u);  // three finished, two may stay: the oldest goes
  EXPECT_EQ(book.find(1), nullptr);
  EXPECT_FALSE(book.submit(keyed, 4).existing);  // its key went with it
  EXPECT_EQ(book.next_forget_ms(), 102u);
  EXPECT_EQ(book.forget_expired(101), 0u);
  EXPECT_EQ(book.forget_expired(103), 2u);  // past retention
  EXPECT_NE(book.find(4), nullptr);         // still running: never forgotten
  EXPECT_EQ(book.counts().succeeded, 3u);   // counts stay
}

TEST(TaskBook, FinishedTasksAreForgottenPastTheMemoryBudgetOldestFirst) {
  task_spec big = kind("x");
  big.args = wire::value::of_str(std::string(10000, 'a'));
  task t;
  t.spec = big;
  t.result = wire::value::of_str(std::string(5000, 'r'));
  const std::size_t one = task_book::memory_of(t);
  EXPECT_GT(one, 15000u);  // the args and result on the heap count
  EXPECT_LT(one, 16000u);
  EXPECT_GT(task_book::memory_of(t), task_book::memory_of(task{}));

  // Room for two such tasks, not three.
  task_book book({.max_retained_bytes = 2 * one + one / 2});
  for (int i = 0; i < 4; ++i) book.submit(big, 0);
  book.start_due(0);
  for (std::uint64_t n = 1; n <= 3; ++n)
    book.attempt_ended(n, 1, ending::succeeded, wire::value::of_str(std::string(5000, 'r')), std::nullopt, n);
  EXPECT_EQ(book.retained_bytes(), 3 * one);
  EXPECT_EQ(book.forget_expired(3), 1u);
  EXPECT_EQ(book.find(1), nullptr);  // the oldest
  EXPECT_NE(book.find(2), nullptr);
  EXPECT_EQ(book.retained_bytes(), 2 * one);
  EXPECT_NE(book.find(4), nullptr);  // running tasks do not count and are never forgotten
  book.attempt_ended(4, 1, ending::succeeded, wire::value::of_str(std::string(5000, 'r')), std::nullopt, 10);
  EXPECT_EQ(book.forget_expired(10), 1u);
  EXPECT_EQ(book.find(2), nullptr);
  EXPECT_EQ(book.retained_bytes(), 2 * one);
}

TEST(TaskBook, ItsJournalRecordsRebuildTheSameBook) {
  recorder rec;
  task_book book({}, 7, rec.sink());
  task_spec a = kind("echo");
  a.args = wire::value::of_str("hello");
  a.key = "ka";
  book.submit(a, 1);
  task_spec b = kind("fail");
  b.max_attempts = 2;
  b.backoff_ms = 100;
  b.timeout_ms = 50;
  book.submit(b, 2);
  book.submit(kind("sleep"), 3);
  book.start_due(3);
  book.attempt_ended(1, 1, ending::succeeded, wire::value::of_str("hello"), std::nullopt, 4);
  book.attempt_ended(2, 1, ending::failed, std::nullopt, task_error{"no", "exception"}, 5);  // queued to retry
  book.cancel(3, 6);
  task_spec d = kind("later");
  d.delay_ms = 1000;
  book.submit(d, 7);

  task_book again({}, 7);
  for (const std::string& r : rec.records) ASSERT_TRUE(again.apply(r)) << again.apply(r).error().to_string();
  std::vector<std::string> a_snap, b_snap;
  book.snapshot([&](std::string r) { a_snap.push_back(std::move(r)); });
  again.snapshot([&](std::string r) { b_snap.push_back(std::move(r)); });
  EXPECT_EQ(a_snap, b_snap);
  EXPECT_TRUE(again.submit(a, 8).existing);  // keys come back too
  EXPECT_EQ(again.submit(kind("next"), 8).t->number, 5u);  // numbers go on

  // And a snapshot rebuilds it as well (compaction).
  task_book third({}, 7);
  for (const std::string& r : a_snap) ASSERT_TRUE(third.apply(r));
  std::vector<std::string> c_snap;
  third.snapshot([&](std::string r) { c_snap.push_back(std::move(r)); });
  EXPECT_EQ(c_snap, a_snap);
}

TEST(TaskBook, AnInterruptedAttemptRunsAgainAndStillCounts) {
  recorder rec;
  task_book book({}, 1, rec.sink());
  book.submit(kind("x"), 0);
  book.start_due(0);  // running when the app "dies"
  task_book after({}, 1);
  for (const std::string& r : rec.records) ASSERT_TRUE(after.apply(r));
  EXPECT_EQ(after.find(1)->state, task_state::running);
  EXPECT_EQ(after.requeue_interrupted(100), 1u);
  auto again = after.start_due(100);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0]->attempts, 2u);  // max_attempts 1, yet it runs: at least once
}

TEST(TaskBook, ARecordItCannotApplyIsRefused) {
  task_book book({});
  EXPECT_FALSE(book.apply("\xc1"));
  EXPECT_FALSE(book.apply(wire::value::of_str("x").bytes()));
  msgpack::sbuffer b;
  wire::packer p(b);
  p.pack_map(2);
  p.pack("r");
  p.pack("z");
  p.pack("n");
  p.pack(1);
  EXPECT_FALSE(book.apply(std::string_view(b.data(), b.size())));
}

TEST(TaskBook, TaskIdsParse) {
  EXPECT_EQ(task_number("t-12"), 12u);
  EXPECT_FALSE(task_number("t-"));
  EXPECT_FALSE(task_number("t-0"));
  EXPECT_FALSE(task_number("x-1"));
  EXPECT_FALSE(task_number("t-1a"));
}

}  // namespace
}  // namespace canopy::task_app
