// canopyctl's values: command-line words to msgpack (JSON when it parses, else a string),
// durations, and replies to JSON and to indented text.
#include "canopy/ctl/values.hpp"

#include <gtest/gtest.h>

namespace canopy::ctl {
namespace {

using namespace std::chrono_literals;

msgpack::object_handle literal(std::string_view word) {
  msgpack::sbuffer b;
  wire::packer p(b);
  pack_literal(p, word);
  return msgpack::unpack(b.data(), b.size());
}

TEST(CtlValues, WordsBecomeTheValuesTheyLookLike) {
  EXPECT_EQ(literal("42").get().type, msgpack::type::POSITIVE_INTEGER);
  EXPECT_EQ(literal("-7").get().via.i64, -7);
  EXPECT_DOUBLE_EQ(literal("2.5").get().via.f64, 2.5);
  EXPECT_TRUE(literal("true").get().via.boolean);
  EXPECT_EQ(literal("null").get().type, msgpack::type::NIL);
  EXPECT_EQ(literal("hello").get().as<std::string>(), "hello");
  EXPECT_EQ(literal("\"42\"").get().as<std::string>(), "42");  // quoted: a string
  EXPECT_EQ(literal("12abc").get().as<std::string>(), "12abc");
  EXPECT_EQ(literal("").get().as<std::string>(), "");
  auto m = literal(R"({"a": [1, "x", {"b": null}], "u": "\u00e9\n"})");
  ASSERT_EQ(m.get().type, msgpack::type::MAP);
  EXPECT_EQ(to_json(m.get()), R"({"a":[1,"x",{"b":null}],"u":"é\n"})");
}

TEST(CtlValues, StrictJsonIsRefusedWithWhereItStopped) {
  msgpack::sbuffer b;
  wire::packer p(b);
  auto bad = pack_json(p, R"({"a": })");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().to_string().find("character"), std::string::npos);
  EXPECT_FALSE(pack_json(p, "hello"));
  EXPECT_FALSE(pack_json(p, "[1,]"));
  EXPECT_TRUE(pack_json(p, " [ ] "));
}

TEST(CtlValues, DurationsHaveUnits) {
  EXPECT_EQ(*parse_duration("250"), 250ms);
  EXPECT_EQ(*parse_duration("250ms"), 250ms);
  EXPECT_EQ(*parse_duration("5s"), 5s);
  EXPECT_EQ(*parse_duration("2m"), 2min);
  EXPECT_EQ(*parse_duration("1h"), 1h);
  EXPECT_EQ(*parse_duration("1d"), 24h);
  EXPECT_FALSE(parse_duration("soon"));
  EXPECT_FALSE(parse_duration("5 s"));
  EXPECT_FALSE(parse_duration("5y"));
}

TEST(CtlValues, RepliesAsJsonKeepBinAndOddKeysAndAsText) {
  msgpack::sbuffer b;
  wire::packer p(b);
  p.pack_map(4);
  p.pack("name");
  p.pack("a\"b");
  p.pack("bin");
  p.pack_bin(3);
  p.pack_bin_body("\x00\x01\x02", 3);
  p.pack(7);
  p.pack("seven");
  p.pack("list");
  p.pack_array(2);
  p.pack(1);
  p.pack_map(1);
  p.pack("x");
  p.pack(false);
  auto h = msgpack::unpack(b.data(), b.size());
  EXPECT_EQ(to_json(h.get()), R"({"name":"a\"b","bin":{"$bin":"AAEC"},"7":"seven","list":[1,{"x":false}]})");
  EXPECT_EQ(to_text(h.get()), "name: a\"b\nbin: {\"$bin\":\"AAEC\"}\n7: seven\nlist:\n  - 1\n  -\n    x: false\n");
}

}  // namespace
}  // namespace canopy::ctl
