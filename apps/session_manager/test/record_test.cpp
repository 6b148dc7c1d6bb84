// session_app::record: the rules of docs/protocol.md "Sessions" on one record — seqs,
// the bounded message list and its paging, the shallow merge with nil removing, size
// limits, and the cache's copy round-tripping (or refused when it is not one).
#include "canopy/session_app/record.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "../fuzz/record_property.hpp"
#include "canopy/wire/codec.hpp"

namespace canopy::session_app {
namespace {

using namespace std::chrono_literals;

// A msgpack object for a value written by `w` (kept alive by the returned handle).
template <class F>
msgpack::object_handle object_of(F&& w) {
  msgpack::sbuffer b;
  wire::packer p(b);
  w(p);
  return msgpack::unpack(b.data(), b.size());
}

wire::value text(std::string_view s) { return wire::value::of_str(s); }

std::vector<std::uint64_t> seqs(const std::vector<const stored_message*>& ms) {
  std::vector<std::uint64_t> out;
  for (const auto* m : ms) out.push_back(m->seq);
  return out;
}

TEST(SessionRecord, SeqsStartAtOneAndTheListKeepsTheNewest) {
  record r("alice", 1000, 30s);
  const record_limits limits{.max_messages = 3};
  EXPECT_EQ(r.last_seq(), 0u);
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(r.append(text("m" + std::to_string(i)), 1000 + i, limits), static_cast<std::uint64_t>(i));
  EXPECT_EQ(r.message_count(), 3u);
  EXPECT_EQ(seqs(r.messages_after(0, 100)), (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(r.messages_after(0, 100)[0]->message, text("m3"));
  EXPECT_EQ(r.messages_after(0, 100)[0]->ts_ms, 1003u);
}

TEST(SessionRecord, MessagesPageByAfterAndLimit) {
  record r("alice", 0, 30s);
  const record_limits limits{.max_messages = 4};
  for (int i = 0; i < 6; ++i) r.append(text("x"), 0, limits);  // holds 3..6
  EXPECT_EQ(seqs(r.messages_after(0, 2)), (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(seqs(r.messages_after(4, 2)), (std::vector<std::uint64_t>{5, 6}));
  EXPECT_EQ(seqs(r.messages_after(1, 100)), (std::vector<std::uint64_t>{3, 4, 5, 6}));  // 1, 2 dropped
  EXPECT_TRUE(r.messages_after(6, 10).empty());
  EXPECT_TRUE(r.messages_after(600, 10).empty());
}

TEST(SessionRecord, NoMessagesAllocateNothing) {
  record r("a", 0, 1s);
  EXPECT_TRUE(r.messages_after(0, 10).empty());
  EXPECT_EQ(r.message_count(), 0u);
  EXPECT_EQ(r.data(), wire::value::empty_map());
}

TEST(SessionRecord, MergeIsShallowAndNilRemoves) {
  record r("alice", 0, 30s);
  auto first = object_of([](wire::packer& p) {
    p.pack_map(3);
    p.pack("a");
    p.pack(1);
    p.pack("b");
    p.pack_map(1);
    p.pack("deep");
    p.pack(true);
    p.pack(7);  // a non-string key is kept byte-exact too
    p.pack("seven");
  });
  ASSERT_EQ(r.merge(first.get(), {}), refusal::none);
  auto second = object_of([](wire::packer& p) {
    p.pack_map(3);
    p.pack("a");
    p.pack_nil();  // removes a
    p.pack("b");
    p.pack(2);  // replaces the whole nested map
    p.pack("c");
    p.pack("new");
  });
  ASSERT_EQ(r.merge(second.get(), {}), refusal::none);
  auto data = msgpack::unpack(r.data().bytes().data(), r.data().bytes().size());
  const msgpack::object& d = data.get();
  ASSERT_EQ(d.type, msgpack::type::MAP);
  EXPECT_EQ(d.via.map.size, 3u);
  EXPECT_EQ(wire::find(d, "a"), nullptr);
  EXPECT_EQ(wire::find(d, "b")->via.u64, 2u);
  EXPECT_EQ(std::string(wire::find(d, "c")->via.str.ptr, wire::find(d, "c")->via.str.size), "new");
}

TEST(SessionRecord, MergeRefusesNonMapsAndTooMuchDataLeavingItUnchanged) {
  record r("alice", 0, 30s);
  auto not_map = object_of([](wire::packer& p) { p.pack("x"); });
  EXPECT_EQ(r.merge(not_map.get(), {}), refusal::not_a_map);
  auto big = object_of([](wire::packer& p) {
    p.pack_map(1);
    p.pack("k");
    p.pack(std::string(200, 'v'));
  });
  EXPECT_EQ(r.merge(big.get(), {.max_data_bytes = 100}), refusal::too_large);
  EXPECT_EQ(r.data(), wire::value::empty_map());
}

TEST(SessionRecord, TheCachesCopyRoundTrips) {
  record r("bob", 111, 45s);
  const record_limits limits{.max_messages = 10};
  auto data = object_of([](wire::packer& p) {
    p.pack_map(1);
    p.pack("bin");
    p.pack_bin(2);
    p.pack_bin_body("\x00\x01", 2);
  });
  ASSERT_EQ(r.merge(data.get(), limits), refusal::none);
  r.append(text("one"), 200, limits);
  r.append(wire::value::of_int(-5), 300, limits);
  r.touch(400);

  std::string why;
  auto back = record::decode(r.encode().bytes(), limits, &why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->user(), "bob");
  EXPECT_EQ(back->created_ms(), 111u);
  EXPECT_EQ(back->last_active_ms(), 400u);
  EXPECT_EQ(back->idle_timeout(), 45s);
  EXPECT_EQ(back->last_seq(), 2u);
  EXPECT_EQ(back->data(), r.data());
  ASSERT_EQ(back->message_count(), 2u);
  EXPECT_EQ(back->messages_after(0, 10)[1]->message, wire::value::of_int(-5));
  EXPECT_EQ(back->messages_after(0, 10)[1]->ts_ms, 300u);
  // Seqs go on where they were.
  EXPECT_EQ(back->append(text("three"), 500, limits), 3u);
}

TEST(SessionRecord, DecodingKeepsTheNewestWhenTheBoundShrank) {
  record r("c", 0, 1s);
  for (int i = 0; i < 5; ++i) r.append(text("m"), 0, {.max_messages = 5});
  auto back = record::decode(r.encode().bytes(), {.max_messages = 2});
  ASSERT_TRUE(back);
  EXPECT_EQ(seqs(back->messages_after(0, 10)), (std::vector<std::uint64_t>{4, 5}));
}

TEST(SessionRecord, DecodingRefusesWhatIsNotARecord) {
  std::string why;
  EXPECT_FALSE(record::decode("\xc1", {}, &why));  // never used in msgpack
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(record::decode(wire::value::of_str("hello").bytes(), {}, &why));
  EXPECT_EQ(why, "not a map");
  msgpack::sbuffer b;
  wire::packer p(b);
  p.pack_map(1);
  p.pack("v");
  p.pack(1);
  EXPECT_FALSE(record::decode(std::string_view(b.data(), b.size()), {}, &why));
  EXPECT_EQ(why, "a field is missing or has the wrong type");

  // A message list out of sequence is corruption, not a record.
  record r("d", 0, 1s);
  r.append(text("a"), 0, {});
  std::string bytes(r.encode().bytes());
  const auto at = bytes.rfind('\x93');  // the message's [seq, ts, message] array
  ASSERT_NE(at, std::string::npos);
  bytes[at + 1] = '\x07';  // seq 7 where 1 belongs
  EXPECT_FALSE(record::decode(bytes, {}, &why));
  EXPECT_NE(why.find("out of sequence"), std::string::npos) << why;
}

TEST(SessionRecord, TheWorstCaseBoundsTheEncodedSize) {
  const record_limits limits{.max_messages = 3, .max_message_value_bytes = 50, .max_data_bytes = 100};
  record r(std::string(10, 'u'), ~0ull >> 1, 1s);
  auto data = object_of([](wire::packer& p) {
    p.pack_map(1);
    p.pack("k");
    p.pack(std::string(90, 'v'));
  });
  ASSERT_EQ(r.merge(data.get(), limits), refusal::none);
  for (int i = 0; i < 3; ++i) r.append(wire::value::of_str(std::string(45, 'm')), ~0ull >> 1, limits);
  EXPECT_LE(r.encode().bytes().size(), record::max_encoded_bytes(limits, 10));
}

TEST(SessionRecord, AContainerClaimingMoreThanItHoldsIsRefusedBeforeAllocating) {
  std::string why;
  EXPECT_FALSE(record::decode(std::string("\xdd\xff\xff\xff\xff", 5), {}, &why));
  EXPECT_FALSE(why.empty());
}

// The fuzzer's corpus (seeds and every finding) through the same property on each build.
TEST(SessionRecordFuzzCorpus, EveryFileHoldsTheProperty) {
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CANOPY_RECORD_CORPUS_DIR)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++files;
    EXPECT_EQ(fuzz::check_record_bytes(bytes), "") << entry.path();
  }
  EXPECT_GE(files, 5u);
}

}  // namespace
}  // namespace canopy::session_app
