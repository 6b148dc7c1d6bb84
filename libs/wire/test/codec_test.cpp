// canopy::wire: requests from untrusted bytes (every refusal of docs/protocol.md with its
// code), replies and events, arguments.
#include "canopy/wire/codec.hpp"
#include "canopy/wire/value.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace canopy::wire {
namespace {

std::string packed(const std::function<void(packer&)>& write) {
  msgpack::sbuffer buf;
  packer p(buf);
  write(p);
  return std::string(buf.data(), buf.size());
}

std::string bytes(std::initializer_list<unsigned> list) {
  std::string s;
  for (unsigned b : list) s.push_back(static_cast<char>(b));
  return s;
}

const decode_limits limits;

TEST(ErrorCode, NamesRoundTripAndUnknownNamesAreRefused) {
  for (int i = 0; i <= static_cast<int>(error_code::internal); ++i) {
    const auto code = static_cast<error_code>(i);
    EXPECT_EQ(error_code_from_string(to_string(code)), code);
  }
  EXPECT_EQ(to_string(error_code::bad_request), "bad_request");
  EXPECT_EQ(to_string(error_code::too_large), "too_large");
  EXPECT_FALSE(error_code_from_string("Bad_Request"));
  EXPECT_FALSE(error_code_from_string(""));
}

TEST(DecodeRequest, AWellFormedRequest) {
  auto d = decode_request(packed([](packer& p) {
                            p.pack_map(5);
                            p.pack("id");
                            p.pack(42u);
                            p.pack("op");
                            p.pack("put");
                            p.pack("args");
                            p.pack_map(2);
                            p.pack("key");
                            p.pack("k");
                            p.pack("ttl_ms");
                            p.pack(1000u);
                            p.pack("deadline_ms");
                            p.pack(250u);
                            p.pack("unknown");  // ignored
                            p.pack(true);
                          }),
                          limits);
  ASSERT_TRUE(d.ok()) << d.failure().message;
  request& r = d.value();
  EXPECT_EQ(r.id, 42u);
  EXPECT_EQ(r.op, "put");
  EXPECT_EQ(r.deadline_ms, 250u);
  ASSERT_NE(r.args, nullptr);
  EXPECT_EQ(std::get<std::string_view>(string_arg(*r.args, "key")), "k");
  EXPECT_EQ(std::get<std::uint64_t>(uint_arg(*r.args, "ttl_ms")), 1000u);
}

TEST(DecodeRequest, AbsentArgsAreAnEmptyMap) {
  auto d = decode_request(packed([](packer& p) {
                            p.pack_map(2);
                            p.pack("op");
                            p.pack("ping");
                            p.pack("id");
                            p.pack(1u);
                          }),
                          limits);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value().args->type, msgpack::type::MAP);
  EXPECT_EQ(d.value().args->via.map.size, 0u);
  EXPECT_FALSE(d.value().deadline_ms);
}

// Each refusal: its code, and the id when one could be read.
struct refusal {
  const char* name;
  std::string frame;
  error_code code;
  std::optional<std::uint64_t> id;
};

class Refusals : public ::testing::TestWithParam<refusal> {};

TEST_P(Refusals, GetTheirCodeAndIdWhenKnown) {
  const refusal& r = GetParam();
  auto d = decode_request(r.frame, limits);
  ASSERT_FALSE(d.ok()) << r.name;
  EXPECT_EQ(d.failure().code, r.code) << r.name << ": " << d.failure().message;
  EXPECT_EQ(d.failure().id, r.id) << r.name;
  EXPECT_FALSE(d.failure().message.empty());
}

std::string request_with(const std::function<void(packer&)>& extra, std::uint32_t extra_pairs, bool with_id = true,
                         bool with_op = true) {
  return packed([&](packer& p) {
    p.pack_map((with_id ? 1 : 0) + (with_op ? 1 : 0) + extra_pairs);
    if (with_id) {
      p.pack("id");
      p.pack(7u);
    }
    if (with_op) {
      p.pack("op");
      p.pack("get");
    }
    extra(p);
  });
}

INSTANTIATE_TEST_SUITE_P(
    Wire, Refusals,
    ::testing::Values(
        refusal{"empty payload", "", error_code::bad_request, std::nullopt},
        refusal{"not msgpack (a reserved byte)", bytes({0xc1}), error_code::bad_request, std::nullopt},
        refusal{"truncated", bytes({0x82, 0xa2, 'i'}), error_code::bad_request, std::nullopt},
        refusal{"not a map", packed([](packer& p) { p.pack("hello"); }), error_code::bad_request, std::nullopt},
        refusal{"an array", packed([](packer& p) { p.pack_array(0); }), error_code::bad_request, std::nullopt},
        refusal{"no id", request_with([](packer&) {}, 0, false), error_code::bad_request, std::nullopt},
        refusal{"id a string", packed([](packer& p) {
                  p.pack_map(2);
                  p.pack("id");
                  p.pack("7");
                  p.pack("op");
                  p.pack("get");
                }),
                error_code::bad_request, std::nullopt},
        refusal{"negative id", packed([](packer& p) {
                  p.pack_map(2);
                  p.pack("id");
                  p.pack(-7);
                  p.pack("op");
                  p.pack("get");
                }),
                error_code::bad_request, std::nullopt},
        refusal{"no op", request_with([](packer&) {}, 0, true, false), error_code::bad_request, 7},
        refusal{"op an integer", packed([](packer& p) {
                  p.pack_map(2);
                  p.pack("id");
                  p.pack(7u);
                  p.pack("op");
                  p.pack(3);
                }),
                error_code::bad_request, 7},
        refusal{"op a binary", packed([](packer& p) {
                  p.pack_map(2);
                  p.pack("id");
                  p.pack(7u);
                  p.pack("op");
                  p.pack_bin(3);
                  p.pack_bin_body("get", 3);
                }),
                error_code::bad_request, 7},
        refusal{"args an array", request_with(
                                     [](packer& p) {
                                       p.pack("args");
                                       p.pack_array(0);
                                     },
                                     1),
                error_code::bad_request, 7},
        refusal{"deadline negative", request_with(
                                         [](packer& p) {
                                           p.pack("deadline_ms");
                                           p.pack(-1);
                                         },
                                         1),
                error_code::bad_request, 7},
        refusal{"trailing bytes", request_with([](packer&) {}, 0) + bytes({0xc0}), error_code::bad_request,
                std::nullopt},
        // The allocation bomb: an array32 header declaring 2^32-1 elements in 5 bytes.
        refusal{"array bomb", bytes({0xdd, 0xff, 0xff, 0xff, 0xff}), error_code::bad_request, std::nullopt},
        refusal{"map bomb", bytes({0xdf, 0xff, 0xff, 0xff, 0xff}), error_code::bad_request, std::nullopt},
        refusal{"nested bomb", bytes({0x81, 0xa1, 'a', 0xdd, 0x00, 0x10, 0x00, 0x00}), error_code::bad_request,
                std::nullopt},
        refusal{"str32 longer than the frame (truncated)", bytes({0xdb, 0xff, 0xff, 0xff, 0xff, 'x'}),
                error_code::bad_request, std::nullopt}));

TEST(DecodeRequest, LimitsAreConfigurable) {
  decode_limits tight;
  tight.max_message_bytes = 64;
  tight.max_depth = 3;
  tight.max_str = 8;
  tight.max_array = 4;
  auto too_big = decode_request(std::string(65, '\x90'), tight);
  EXPECT_EQ(too_big.failure().code, error_code::too_large);

  auto deep = decode_request(request_with(
                                 [](packer& p) {
                                   p.pack("args");
                                   p.pack_map(1);
                                   p.pack("a");
                                   p.pack_array(1);
                                   p.pack_array(1);
                                   p.pack_array(0);
                                 },
                                 1),
                             tight);
  EXPECT_EQ(deep.failure().code, error_code::too_large);
  EXPECT_NE(deep.failure().message.find("nesting"), std::string::npos);
  EXPECT_EQ(deep.failure().id, 7u);  // read before the limit was passed: the reply carries it

  auto long_str = decode_request(request_with(
                                     [](packer& p) {
                                       p.pack("args");
                                       p.pack_map(1);
                                       p.pack("a");
                                       p.pack("123456789");
                                     },
                                     1),
                                 tight);
  EXPECT_EQ(long_str.failure().code, error_code::too_large);

  auto long_array = decode_request(request_with(
                                       [](packer& p) {
                                         p.pack("args");
                                         p.pack_map(1);
                                         p.pack("a");
                                         p.pack_array(5);
                                         for (int i = 0; i < 5; ++i) p.pack(i);
                                       },
                                       1),
                                   tight);
  EXPECT_EQ(long_array.failure().code, error_code::too_large);
  EXPECT_EQ(long_array.failure().id, 7u);
  EXPECT_EQ(too_big.failure().id, std::nullopt);  // past max_message_bytes: never read

  // A nested "id" is not the request's; a duplicated one is nobody's.
  auto nested_id = decode_request(packed([](packer& p) {
                                    p.pack_map(2);
                                    p.pack("args");
                                    p.pack_map(1);
                                    p.pack("id");
                                    p.pack(9u);
                                    p.pack("x");
                                    p.pack("123456789");
                                  }),
                                  tight);
  EXPECT_EQ(nested_id.failure().code, error_code::too_large);
  EXPECT_EQ(nested_id.failure().id, std::nullopt);
  auto twice = decode_request(packed([](packer& p) {
                                p.pack_map(3);
                                p.pack("id");
                                p.pack(1u);
                                p.pack("id");
                                p.pack(2u);
                                p.pack("x");
                                p.pack("123456789");
                              }),
                              tight);
  EXPECT_EQ(twice.failure().code, error_code::too_large);
  EXPECT_EQ(twice.failure().id, std::nullopt);
}

TEST(DecodeRequest, ValuesKeepTheirMsgpackTypes) {
  auto d = decode_request(request_with(
                              [](packer& p) {
                                p.pack("args");
                                p.pack_map(4);
                                p.pack("s");
                                p.pack("text");
                                p.pack("b");
                                p.pack_bin(4);
                                p.pack_bin_body("\x00\x01\x02\x03", 4);
                                p.pack("f");
                                p.pack(1.5);
                                p.pack("n");
                                p.pack(-3);
                              },
                              1),
                          limits);
  ASSERT_TRUE(d.ok());
  const msgpack::object& args = *d.value().args;
  EXPECT_EQ(find(args, "s")->type, msgpack::type::STR);
  EXPECT_EQ(find(args, "b")->type, msgpack::type::BIN);
  EXPECT_EQ(std::string(find(args, "b")->via.bin.ptr, 4), std::string("\x00\x01\x02\x03", 4));
  EXPECT_EQ(find(args, "f")->type, msgpack::type::FLOAT64);
  EXPECT_EQ(std::get<std::int64_t>(int_arg(args, "n")), -3);
  // Wrong types and missing arguments name the argument.
  EXPECT_EQ(std::get<arg_error>(uint_arg(args, "s")).message, "argument 's' must be an unsigned integer");
  EXPECT_EQ(std::get<arg_error>(string_arg(args, "nope")).message, "missing argument 'nope'");
  EXPECT_EQ(std::get<std::optional<std::uint64_t>>(optional_uint_arg(args, "nope")), std::nullopt);
  EXPECT_TRUE(std::holds_alternative<arg_error>(optional_string_arg(args, "n")));
  EXPECT_TRUE(std::holds_alternative<arg_error>(bool_arg(args, "s")));
  EXPECT_EQ(std::get<const msgpack::object*>(value_arg(args, "f"))->via.f64, 1.5);
}

// A small request's frame and zone go back to the releasing thread's pool and serve the
// next request: the values must be the new request's, whatever the last one left behind.
std::string small_request(std::uint64_t id, std::uint32_t ints) {
  return packed([&](packer& p) {
    p.pack_map(3);
    p.pack("id");
    p.pack(id);
    p.pack("op");
    p.pack("put");
    p.pack("args");
    p.pack_map(1);
    p.pack("v");
    p.pack_array(ints);
    for (std::uint32_t i = 0; i < ints; ++i) p.pack(static_cast<int>(i % 100));
  });
}

void expect_request(const request& r, std::uint64_t id, std::uint32_t ints) {
  EXPECT_EQ(r.id, id);
  EXPECT_EQ(r.op, "put");
  const msgpack::object* v = find(*r.args, "v");
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->type, msgpack::type::ARRAY);
  ASSERT_EQ(v->via.array.size, ints);
  for (std::uint32_t i = 0; i < ints; ++i) EXPECT_EQ(v->via.array.ptr[i].as<int>(), static_cast<int>(i % 100));
}

TEST(DecodeRequest, ASmallRequestsStorageIsReusedWithTheNextRequestsValues) {
  const msgpack::object* first_args = nullptr;
  {
    auto d = decode_request(small_request(1, 3), limits);
    ASSERT_TRUE(d.ok());
    expect_request(d.value(), 1, 3);
    first_args = d.value().args;
  }
  // Released: the next small request on this thread gets the same storage (its zone's
  // first chunk), and its own values.
  auto again = decode_request(small_request(2, 5), limits);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value().args, first_args);
  expect_request(again.value(), 2, 5);
  // 100 elements in a frame of about 120 bytes: more objects than a pooled zone's first
  // chunk holds, so it grows; cleared on release, the storage serves a small request again.
  {
    auto dense = decode_request(small_request(3, 100), limits);
    ASSERT_TRUE(dense.ok());
    expect_request(dense.value(), 3, 100);
  }
  auto after = decode_request(small_request(4, 2), limits);
  ASSERT_TRUE(after.ok());
  expect_request(after.value(), 4, 2);
}

TEST(DecodeRequest, RequestsReleasedOnOtherThreadsAndPastThePoolsSizeAreFreedOrKept) {
  // 300 decoded here and released on another thread (its pool keeps 256, frees the rest,
  // and frees those it kept when it exits); ASan checks that nothing leaks or is freed twice.
  std::vector<request> held;
  for (std::uint64_t i = 0; i < 300; ++i) {
    auto d = decode_request(small_request(i, 4), limits);
    ASSERT_TRUE(d.ok());
    held.push_back(std::move(d.value()));
  }
  std::thread releaser([&] {
    for (std::uint64_t i = 0; i < held.size(); ++i) expect_request(held[i], i, 4);
    held.clear();
    auto d = decode_request(small_request(7, 1), limits);  // from this thread's pool
    ASSERT_TRUE(d.ok());
    expect_request(d.value(), 7, 1);
  });
  releaser.join();
  // A frame past 1 KiB is never pooled; it decodes and is freed as before, whether copied
  // or taken over.
  const std::string big_frame = small_request(9, 1500);
  auto copied = decode_request(std::string_view(big_frame), limits);
  ASSERT_TRUE(copied.ok());
  expect_request(copied.value(), 9, 1500);
  auto taken = decode_request(std::string(big_frame), limits);
  ASSERT_TRUE(taken.ok());
  expect_request(taken.value(), 9, 1500);
}

TEST(Encode, OkErrorAndEventReplies) {
  msgpack::sbuffer ok;
  encode_ok(ok, 9, [](packer& p) { p.pack("pong"); });
  auto h = msgpack::unpack(ok.data(), ok.size());
  EXPECT_EQ(find(h.get(), "id")->via.u64, 9u);
  EXPECT_TRUE(find(h.get(), "ok")->via.boolean);
  EXPECT_EQ(find(h.get(), "result")->as<std::string>(), "pong");

  msgpack::sbuffer err;
  encode_error(err, std::nullopt, error_code::bad_request, "the payload is not a map");
  auto e = msgpack::unpack(err.data(), err.size());
  EXPECT_EQ(find(e.get(), "id")->type, msgpack::type::NIL);
  EXPECT_FALSE(find(e.get(), "ok")->via.boolean);
  const msgpack::object* detail = find(e.get(), "error");
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(find(*detail, "code")->as<std::string>(), "bad_request");
  EXPECT_EQ(find(*detail, "message")->as<std::string>(), "the payload is not a map");

  msgpack::sbuffer ev;
  encode_event(ev, 1700000000000, 1, [](packer& p) {
    p.pack("name");
    p.pack("cache");
  });
  auto v = msgpack::unpack(ev.data(), ev.size());
  EXPECT_EQ(find(v.get(), "ts_ms")->via.i64 + 0, 1700000000000);
  EXPECT_EQ(find(v.get(), "name")->as<std::string>(), "cache");
}

}  // namespace
}  // namespace canopy::wire

namespace canopy::wire {
namespace {

TEST(Value, KeepsTheExactBytesOfWhatArrived) {
  // A float32, a bin and a str keep their types; a map keeps its order.
  const std::string sent = packed([](packer& p) {
    p.pack_map(3);
    p.pack("z");
    p.pack(1.5f);
    p.pack("a");
    p.pack_bin(2);
    p.pack_bin_body("\xff\x00", 2);
    p.pack("m");
    p.pack("text");
  });
  auto h = msgpack::unpack(sent.data(), sent.size());
  value v = value::from_object(h.get());
  EXPECT_EQ(v.bytes(), sent);
  EXPECT_EQ(v.type(), msgpack::type::MAP);
  EXPECT_FALSE(v.as_int());
  msgpack::sbuffer out;
  encode_ok(out, 1, [&](packer&) { v.write_to(out); });
  auto reply = msgpack::unpack(out.data(), out.size());
  EXPECT_EQ(value::from_object(*find(reply.get(), "result")).bytes(), sent);
  msgpack::sbuffer through_packer;  // the same, written through the reply's packer
  encode_ok(through_packer, 1, [&](packer& p) {
    p.pack_map(2);
    p.pack("v");
    v.write_to(p);
    p.pack("empty");
    value::empty_map().write_to(p);
  });
  auto again = msgpack::unpack(through_packer.data(), through_packer.size());
  EXPECT_EQ(value::from_object(*find(*find(again.get(), "result"), "v")).bytes(), sent);
  EXPECT_EQ(find(*find(again.get(), "result"), "empty")->via.map.size, 0u);
}

TEST(Value, IntegersAndBoundedAdoption) {
  EXPECT_EQ(value::of_int(-5).as_int(), -5);
  EXPECT_EQ(value::of_int(1LL << 40).as_int(), 1LL << 40);
  EXPECT_EQ(value::of_str("abc").bytes(), std::string("\xa3" "abc"));
  EXPECT_EQ(value::of_str("abc").type(), msgpack::type::STR);
  EXPECT_EQ(value().type(), msgpack::type::NIL);
  decode_failure why;
  EXPECT_FALSE(value::from_bytes(bytes({0xdd, 0xff, 0xff, 0xff, 0xff}), decode_limits{}, &why));
  EXPECT_EQ(why.code, error_code::bad_request);
  EXPECT_FALSE(value::from_bytes(bytes({0x01, 0x02}), decode_limits{}));  // trailing byte
  auto ok = value::from_bytes(bytes({0x2a}), decode_limits{});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->as_int(), 42);
  EXPECT_GE(ok->memory_bytes(), sizeof(value));
}

}  // namespace
}  // namespace canopy::wire
