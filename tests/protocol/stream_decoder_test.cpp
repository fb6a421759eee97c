// stream_decoder over a byte stream cut at arbitrary points: one byte at a time and random chunks
// must give exactly what decoding the whole stream gives (STYLE.md §6).

#include "test_support.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
#include <string>

namespace tern::protocol::test {
namespace {

constexpr auto v3 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

struct mixed_stream {
    std::vector<packet> packets;
    std::vector<protocol_version> versions; // version to decode packets[i] with
    bytes wire;
    std::string big; // backing store of generated payloads and topics
    std::vector<std::string> topics;
};

/// Hundreds of packets of every type in MQTT 3.1, 3.1.1 and 5, PUBLISH sizes across every
/// Remaining Length width, and ~100 KiB PUBLISHes.
void build(mixed_stream& s) {
    s.big.resize(100 * 1024 + 7);
    for (std::size_t i = 0; i < s.big.size(); ++i) {
        s.big[i] = static_cast<char>('a' + (i * 7919) % 26);
    }
    s.topics.reserve(64);
    for (int i = 0; i < 64; ++i) {
        s.topics.push_back("t/" + std::to_string(i) +
                           std::string(static_cast<std::size_t>(i * 3), 'x'));
    }
    auto add = [&](const packet& p, protocol_version v) {
        s.packets.push_back(p);
        s.versions.push_back(v);
    };
    const auto samples5 = sample_packets(v5);
    const auto samples4 = sample_packets(v3);
    const auto samples3 = sample_packets(protocol_version::v3_1);
    for (int round = 0; round < 5; ++round) {
        for (const auto& p : samples5) {
            add(p, v5);
        }
        // A large PUBLISH in each version.
        if (round == 1) {
            publish big{"big/v5", s.big, qos::at_least_once, false, false, 77, {}};
            big.props.user_properties = {{"size", "100KiB"}};
            add(big, v5);
        }
        for (const auto& p : samples4) {
            add(p, v3);
        }
        if (round == 3) {
            add(publish{"big/v3",
                        std::string_view(s.big).substr(3),
                        qos::exactly_once,
                        true,
                        false,
                        65535,
                        {}},
                v3);
        }
        for (const auto& p : samples3) {
            add(p, protocol_version::v3_1);
        }
        // PUBLISHes whose Remaining Length crosses 127/128 and 16383/16384.
        for (int i = 0; i < 20; ++i) {
            const auto n = static_cast<std::size_t>(100 + i * 3 + round * 4000);
            const auto& topic = s.topics[static_cast<std::size_t>(i + round * 7) % s.topics.size()];
            publish p{topic,
                      std::string_view(s.big).substr(static_cast<std::size_t>(i), n),
                      static_cast<qos>(i % 3),
                      i % 2 == 0,
                      false,
                      static_cast<std::uint16_t>(i % 3 == 0 ? 0 : 1000 + i),
                      {}};
            add(p, (i % 2) ? v3 : v5);
        }
    }
    for (std::size_t i = 0; i < s.packets.size(); ++i) {
        auto b = encode_ok(s.packets[i], s.versions[i]);
        s.wire.insert(s.wire.end(), b.begin(), b.end());
    }
}

const mixed_stream& stream() {
    static mixed_stream s;
    static bool built = false;
    if (!built) {
        build(s);
        built = true;
    }
    return s;
}

/// Feeds the stream in chunks whose sizes come from `next_size`, switching the decoder's
/// version after each packet as a connection does once CONNECT is accepted. Each chunk lives in
/// a scratch buffer that is overwritten afterwards, so the packets must not point into it.
/// `in_place` uses the read-loop overload next(chunk, packet) with one reused received_packet.
std::vector<received_packet> feed(const mixed_stream& s,
                                  const std::function<std::size_t()>& next_size,
                                  std::string& failure, bool in_place = false) {
    stream_decoder dec(opts(s.versions.front()));
    std::vector<received_packet> out;
    received_packet reused;
    bytes scratch;
    std::size_t pos = 0;
    while (pos < s.wire.size() && failure.empty()) {
        const std::size_t n = std::min(next_size(), s.wire.size() - pos);
        scratch.assign(s.wire.begin() + static_cast<std::ptrdiff_t>(pos),
                       s.wire.begin() + static_cast<std::ptrdiff_t>(pos + n));
        pos += n;
        std::span<const std::uint8_t> chunk(scratch);
        for (;;) {
            auto step = [&]() -> boost::system::result<received_packet> {
                if (!in_place) {
                    return dec.next(chunk);
                }
                if (auto ec = dec.next(chunk, reused)) {
                    return ec;
                }
                return reused; // a copy shares the frame storage, so it outlives `reused`
            };
            auto r = step();
            if (!r) {
                if (r.error() != codec_error::need_more) {
                    failure = "error " + r.error().message() + " after packet " +
                              std::to_string(out.size());
                } else if (!chunk.empty()) {
                    failure = "need_more with bytes left in the chunk";
                }
                break;
            }
            out.push_back(std::move(*r));
            if (out.size() < s.versions.size()) {
                dec.options().version = s.versions[out.size()];
            }
        }
        std::fill(scratch.begin(), scratch.end(), std::uint8_t{0xEE});
    }
    if (failure.empty() && dec.mid_packet()) {
        failure = "stream ended mid-packet";
    }
    return out;
}

std::vector<received_packet> decode_whole(const mixed_stream& s) {
    std::vector<received_packet> out;
    std::span<const std::uint8_t> rest(s.wire);
    while (!rest.empty()) {
        auto r = decode(rest, opts(s.versions[out.size()]));
        REQUIRE(r.has_value());
        REQUIRE(r->consumed > 0);
        rest = rest.subspan(r->consumed);
        out.push_back(std::move(r->packet));
    }
    return out;
}

void check_same(const std::vector<received_packet>& got, const mixed_stream& s) {
    REQUIRE(got.size() == s.packets.size());
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (!(got[i].packet == s.packets[i])) {
            if (mismatches++ == 0) {
                INFO("first mismatch at packet " << i);
                CHECK(got[i].packet == s.packets[i]);
            }
        }
    }
    CHECK(mismatches == 0);
}

TEST_CASE("the mixed test stream is large and covers every packet type", "[protocol][stream]") {
    const auto& s = stream();
    CHECK(s.packets.size() >= 300);
    CHECK(s.wire.size() > 200 * 1024);
    std::vector<bool> seen(16, false);
    for (const auto& p : s.packets) {
        seen[static_cast<std::size_t>(type_of(p))] = true;
    }
    for (int t = 1; t <= 15; ++t) {
        INFO("packet type " << t);
        CHECK(seen[static_cast<std::size_t>(t)]);
    }
}

TEST_CASE("decoding the whole stream at once yields every packet", "[protocol][stream]") {
    const auto& s = stream();
    check_same(decode_whole(s), s);
}

TEST_CASE("stream_decoder fed one byte at a time yields the same packets", "[protocol][stream]") {
    const auto& s = stream();
    std::string failure;
    auto got = feed(
        s, [] { return std::size_t{1}; }, failure);
    INFO(failure);
    REQUIRE(failure.empty());
    check_same(got, s);
    check_same(decode_whole(s), s);
}

TEST_CASE("the in-place next(chunk, packet) form yields the same packets, byte by byte and "
          "in random chunks",
          "[protocol][stream]") {
    const auto& s = stream();
    std::string failure;
    auto one_byte = feed(
        s, [] { return std::size_t{1}; }, failure, true);
    INFO(failure);
    REQUIRE(failure.empty());
    check_same(one_byte, s);
    std::mt19937 rng(7);
    std::uniform_int_distribution<std::size_t> size(1, 3000);
    auto chunks = feed(
        s, [&] { return size(rng); }, failure, true);
    REQUIRE(failure.empty());
    check_same(chunks, s);
}

TEST_CASE("stream_decoder fed random chunk sizes yields the same packets", "[protocol][stream]") {
    const auto& s = stream();
    for (std::uint32_t seed : {1u, 42u, 20240601u}) {
        INFO("seed " << seed);
        std::mt19937 rng(seed);
        // Mostly small chunks, sometimes large ones that hold several packets.
        auto next = [&rng]() -> std::size_t {
            const auto r = rng();
            if (r % 10 == 0) {
                return 1 + (rng() % 70000);
            }
            return 1 + (rng() % 300);
        };
        std::string failure;
        auto got = feed(s, next, failure);
        INFO(failure);
        REQUIRE(failure.empty());
        check_same(got, s);
    }
    // And the whole stream as one chunk.
    std::string failure;
    auto got = feed(
        s, [&s] { return s.wire.size(); }, failure);
    INFO(failure);
    REQUIRE(failure.empty());
    check_same(got, s);
}

TEST_CASE("stream_decoder returns several packets from one chunk and stops at the boundary",
          "[protocol][stream]") {
    const bytes wire = hex("c0 00 d0 00 40 02 00 01 30 03 00 01 61 30");
    stream_decoder dec(opts(v3));
    std::span<const std::uint8_t> in(wire);
    auto a = dec.next(in);
    REQUIRE(a.has_value());
    CHECK(a->packet == packet{pingreq{}});
    CHECK(in.size() == wire.size() - 2);
    auto b = dec.next(in);
    REQUIRE(b.has_value());
    CHECK(b->packet == packet{pingresp{}});
    auto c = dec.next(in);
    REQUIRE(c.has_value());
    CHECK(c->packet == packet{puback{1, reason_code::success, {}}});
    auto d = dec.next(in);
    REQUIRE(d.has_value());
    CHECK(d->packet == packet{publish{"a", "", qos::at_most_once, false, false, 0, {}}});
    CHECK(in.size() == 1);
    CHECK_FALSE(dec.mid_packet());
    auto e = dec.next(in);
    REQUIRE(e.has_error());
    CHECK(e.error() == codec_error::need_more);
    CHECK(in.empty());
    CHECK(dec.mid_packet());
}

TEST_CASE("mid_packet and buffered_bytes track a partial packet", "[protocol][stream]") {
    stream_decoder dec(opts(v3));
    CHECK_FALSE(dec.mid_packet());
    CHECK(dec.buffered_bytes() == 0);
    std::span<const std::uint8_t> empty;
    auto r0 = dec.next(empty);
    REQUIRE(r0.has_error());
    CHECK(r0.error() == codec_error::need_more);
    CHECK_FALSE(dec.mid_packet());

    const bytes wire = hex("30 05 00 03 61 2f 62");
    auto feed_bytes = [&](std::size_t from, std::size_t to) {
        std::span<const std::uint8_t> in(wire.data() + from, to - from);
        auto r = dec.next(in);
        CHECK(in.empty());
        return r;
    };
    auto r1 = feed_bytes(0, 1); // first header byte
    REQUIRE(r1.has_error());
    CHECK(r1.error() == codec_error::need_more);
    CHECK(dec.mid_packet());
    CHECK(dec.buffered_bytes() == 1);
    auto r2 = feed_bytes(1, 2); // Remaining Length
    REQUIRE(r2.has_error());
    CHECK(r2.error() == codec_error::need_more);
    CHECK(dec.mid_packet());
    CHECK(dec.buffered_bytes() == 2);
    auto r3 = feed_bytes(2, 5); // part of the body
    REQUIRE(r3.has_error());
    CHECK(r3.error() == codec_error::need_more);
    CHECK(dec.mid_packet());
    CHECK(dec.buffered_bytes() == 5);
    auto r4 = feed_bytes(5, 7);
    REQUIRE(r4.has_value());
    CHECK(r4->packet == packet{publish{"a/b", "", qos::at_most_once, false, false, 0, {}}});
    CHECK_FALSE(dec.mid_packet());
    CHECK(dec.buffered_bytes() == 0);

    // reset() forgets a partial packet.
    auto r5 = feed_bytes(0, 4);
    REQUIRE(r5.has_error());
    CHECK(dec.mid_packet());
    dec.reset();
    CHECK_FALSE(dec.mid_packet());
    CHECK(dec.buffered_bytes() == 0);
    const bytes ping = hex("c0 00");
    std::span<const std::uint8_t> in(ping);
    auto r6 = dec.next(in);
    REQUIRE(r6.has_value());
    CHECK(r6->packet == packet{pingreq{}});
}

TEST_CASE("after an error the stream_decoder keeps failing until reset()", "[protocol][stream]") {
    const bytes good = hex("c0 00");
    struct failing {
        const char* wire;
        codec_error error;
    };
    const failing cases[] = {
        {"00 00", codec_error::reserved_packet_type},
        {"c1 00", codec_error::invalid_fixed_header_flags},
        {"30 05 00 03 61 2f 2b", codec_error::topic_name_invalid}, // error found in the body
        {"30 ff ff ff ff 7f", codec_error::malformed_variable_byte_integer},
    };
    for (const auto& c : cases) {
        INFO(c.wire);
        stream_decoder dec(opts(v3));
        const bytes bad = hex(c.wire);
        std::span<const std::uint8_t> in(bad);
        auto r = dec.next(in);
        REQUIRE(r.has_error());
        CHECK(r.error() == c.error);
        for (int i = 0; i < 3; ++i) {
            std::span<const std::uint8_t> g(good);
            auto again = dec.next(g);
            REQUIRE(again.has_error());
            CHECK(again.error() == c.error);
        }
        std::span<const std::uint8_t> none;
        auto still = dec.next(none);
        REQUIRE(still.has_error());
        CHECK(still.error() == c.error);
        dec.reset();
        std::span<const std::uint8_t> g(good);
        auto ok = dec.next(g);
        REQUIRE(ok.has_value());
        CHECK(ok->packet == packet{pingreq{}});
    }
}

TEST_CASE("stream_decoder applies option changes to the next packet", "[protocol][stream]") {
    // A broker caps packets before CONNECT and raises the cap afterwards.
    decode_options o = opts(v5, receiver_role::server);
    o.maximum_packet_size = 64;
    stream_decoder dec(o);
    connect c;
    c.client_id = "c";
    publish p{"a/b",
              std::string_view("0123456789012345678901234567890123456789"
                               "0123456789012345678901234567890123456789"),
              qos::at_most_once,
              false,
              false,
              0,
              {}};
    bytes wire = encode_ok(c, v5);
    const bytes pub = encode_ok(p, v5);
    wire.insert(wire.end(), pub.begin(), pub.end());
    std::span<const std::uint8_t> in(wire);
    auto first = dec.next(in);
    REQUIRE(first.has_value());
    CHECK(first->packet == packet{c});
    dec.options().maximum_packet_size = 1024;
    auto second = dec.next(in);
    REQUIRE(second.has_value());
    CHECK(second->packet == packet{p});

    // The same PUBLISH under the small cap fails.
    stream_decoder capped(o);
    std::span<const std::uint8_t> pin(pub);
    auto r = capped.next(pin);
    REQUIRE(r.has_error());
    CHECK(r.error() == codec_error::packet_too_large);

    // AUTH is reserved once the version is switched to 3.1.1.
    stream_decoder switching(opts(v5));
    const bytes auth_wire = hex("f0 00");
    std::span<const std::uint8_t> a1(auth_wire);
    CHECK(switching.next(a1).has_value());
    switching.options().version = v3;
    std::span<const std::uint8_t> a2(auth_wire);
    auto r2 = switching.next(a2);
    REQUIRE(r2.has_error());
    CHECK(r2.error() == codec_error::reserved_packet_type);
}

} // namespace
} // namespace tern::protocol::test
