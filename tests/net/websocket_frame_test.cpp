// RFC 6455 server-side framing: the deframer against every cut of the input, each error with
// its close code, the accept key of RFC 6455 §1.3, and the upgrade answer.
#include <tern/net/websocket_frame.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace ws = tern::net::websocket;
using namespace std::literals;

namespace {

/// A masked client frame.
std::vector<std::uint8_t> client_frame(std::uint8_t first_byte, std::string_view payload,
                                       std::uint32_t mask_seed = 0x37fa213d) {
    std::vector<std::uint8_t> out{first_byte};
    const auto n = payload.size();
    if (n < 126) {
        out.push_back(static_cast<std::uint8_t>(0x80 | n));
    } else if (n <= 0xFFFF) {
        out.push_back(0x80 | 126);
        out.push_back(static_cast<std::uint8_t>(n >> 8));
        out.push_back(static_cast<std::uint8_t>(n));
    } else {
        out.push_back(0x80 | 127);
        for (int i = 7; i >= 0; --i) {
            out.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(n) >> (8 * i)));
        }
    }
    const std::uint8_t mask[4] = {
        static_cast<std::uint8_t>(mask_seed >> 24), static_cast<std::uint8_t>(mask_seed >> 16),
        static_cast<std::uint8_t>(mask_seed >> 8), static_cast<std::uint8_t>(mask_seed)};
    out.insert(out.end(), mask, mask + 4);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(static_cast<std::uint8_t>(payload[i]) ^ mask[i % 4]);
    }
    return out;
}

std::vector<std::uint8_t> concat(std::initializer_list<std::vector<std::uint8_t>> parts) {
    std::vector<std::uint8_t> out;
    for (const auto& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

/// Feeds `bytes` in chunks of `cut` bytes; returns the payload stream and the first error.
std::pair<std::string, ws::frame_error>
feed_in_chunks(ws::deframer& d, std::vector<std::uint8_t> bytes, std::size_t cut) {
    std::string payload;
    for (std::size_t at = 0; at < bytes.size(); at += cut) {
        const std::size_t n = std::min(cut, bytes.size() - at);
        const auto r = d.feed(bytes.data() + at, n);
        payload.append(reinterpret_cast<const char*>(bytes.data() + at), r.payload);
        if (r.error != ws::frame_error::none) {
            return {payload, r.error};
        }
    }
    return {payload, ws::frame_error::none};
}

} // namespace

TEST_CASE("deframer: MQTT bytes split across frames, fragments and chunks come out whole",
          "[net][websocket][MQTT-6.0.0-2]") {
    const std::string big(70000, 'b');  // a 64-bit length
    const std::string medium(300, 'm'); // a 16-bit length
    const auto stream = concat({
        client_frame(0x82, "\x10\x0c"sv),           // binary, FIN: start of a CONNECT
        client_frame(0x02, "\x00\x04MQ"sv),         // binary, no FIN: a fragmented message...
        client_frame(0x89, "ping!"),                // ...with a ping inside it (allowed)
        client_frame(0x80, "TT\x04\x02\x00\x3c"sv), // ...continuation, FIN
        client_frame(0x82, medium), client_frame(0x82, big),
        client_frame(0x82, ""), // an empty frame is legal
    });
    const std::string expected =
        std::string("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c", 12) + medium + big;
    for (std::size_t cut : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7},
                            std::size_t{13}, std::size_t{4096}, stream.size()}) {
        CAPTURE(cut);
        ws::deframer d;
        const auto [payload, error] = feed_in_chunks(d, stream, cut);
        CHECK(error == ws::frame_error::none);
        CHECK(payload == expected);
        const auto pings = d.take_pings();
        REQUIRE(pings.size() == 1);
        CHECK(pings[0] == "ping!");
        CHECK_FALSE(d.close_received());
    }
}

TEST_CASE("deframer: random cuts give the same stream as one feed", "[net][websocket]") {
    std::mt19937 rng(42);
    std::vector<std::uint8_t> stream;
    std::string expected;
    for (int i = 0; i < 200; ++i) {
        std::string payload(rng() % 400, '\0');
        for (auto& c : payload) {
            c = static_cast<char>(rng());
        }
        expected += payload;
        const auto f = client_frame(0x82, payload, static_cast<std::uint32_t>(rng()));
        stream.insert(stream.end(), f.begin(), f.end());
    }
    for (int round = 0; round < 20; ++round) {
        auto bytes = stream; // the deframer works in place
        ws::deframer d;
        std::string payload;
        for (std::size_t at = 0; at < stream.size();) {
            const std::size_t n = std::min<std::size_t>(1 + rng() % 700, bytes.size() - at);
            const auto r = d.feed(bytes.data() + at, n);
            REQUIRE(r.error == ws::frame_error::none);
            payload.append(reinterpret_cast<const char*>(bytes.data() + at), r.payload);
            at += n;
        }
        CHECK(payload == expected);
    }
}

TEST_CASE("deframer: close frames carry their status", "[net][websocket]") {
    ws::deframer d;
    auto bytes = concat({client_frame(0x82, "ab"), client_frame(0x88, "\x03\xe9going"sv)});
    const auto [payload, error] = feed_in_chunks(d, bytes, 3);
    CHECK(error == ws::frame_error::none);
    CHECK(payload == "ab");
    CHECK(d.close_received() == std::uint16_t{1001});
    ws::deframer empty;
    auto bare = client_frame(0x88, "");
    empty.feed(bare.data(), bare.size());
    CHECK(empty.close_received() == std::uint16_t{1005});
}

TEST_CASE("deframer: each violation is an error with its RFC 6455 close code",
          "[net][websocket][MQTT-6.0.0-1]") {
    struct bad {
        const char* name;
        std::vector<std::uint8_t> bytes;
        ws::frame_error error;
        ws::close_code code;
    };
    auto unmasked = std::vector<std::uint8_t>{0x82, 0x02, 'a', 'b'};
    const std::vector<bad> cases{
        {"text frame", client_frame(0x81, "hi"), ws::frame_error::text_frame,
         ws::close_code::unsupported_data},
        {"unmasked", unmasked, ws::frame_error::unmasked_frame, ws::close_code::protocol_error},
        {"rsv1", client_frame(0xC2, "x"), ws::frame_error::reserved_bits,
         ws::close_code::protocol_error},
        {"opcode 3", client_frame(0x83, "x"), ws::frame_error::reserved_opcode,
         ws::close_code::protocol_error},
        {"opcode 0xB", client_frame(0x8B, "x"), ws::frame_error::reserved_opcode,
         ws::close_code::protocol_error},
        {"fragmented ping", client_frame(0x09, "x"), ws::frame_error::fragmented_control,
         ws::close_code::protocol_error},
        {"long ping", client_frame(0x89, std::string(126, 'p')), ws::frame_error::control_too_long,
         ws::close_code::protocol_error},
        {"lone continuation", client_frame(0x80, "x"), ws::frame_error::unexpected_continuation,
         ws::close_code::protocol_error},
        {"binary inside a fragmented message",
         concat({client_frame(0x02, "a"), client_frame(0x82, "b")}),
         ws::frame_error::data_interleaved, ws::close_code::protocol_error},
        {"close with a 1-byte payload", client_frame(0x88, "x"), ws::frame_error::invalid_close,
         ws::close_code::protocol_error},
        {"close with status 1005", client_frame(0x88, "\x03\xed"sv), ws::frame_error::invalid_close,
         ws::close_code::protocol_error},
        {"close with status 999", client_frame(0x88, "\x03\xe7"sv), ws::frame_error::invalid_close,
         ws::close_code::protocol_error},
        {"close with reserved status 2000", client_frame(0x88, "\x07\xd0"sv),
         ws::frame_error::invalid_close, ws::close_code::protocol_error},
        {"64-bit length with the top bit",
         {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4},
         ws::frame_error::length_not_minimal,
         ws::close_code::protocol_error},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        for (std::size_t cut : {std::size_t{1}, c.bytes.size()}) {
            ws::deframer d;
            const auto [payload, error] = feed_in_chunks(d, c.bytes, cut);
            CHECK(error == c.error);
            CHECK(ws::close_code_for(error) == c.code);
            // A failed deframer refuses everything after.
            auto more = client_frame(0x82, "more");
            CHECK(d.feed(more.data(), more.size()).error == c.error);
        }
    }
    ws::deframer small(10);
    auto too_big = client_frame(0x82, std::string(11, 'x'));
    CHECK(small.feed(too_big.data(), too_big.size()).error == ws::frame_error::frame_too_large);
    CHECK(ws::close_code_for(ws::frame_error::frame_too_large) == ws::close_code::message_too_big);
}

TEST_CASE("server frames: minimal length encodings, unmasked, FIN set", "[net][websocket]") {
    const auto h0 = ws::encode_header(ws::opcode::binary, 125);
    CHECK(h0.size == 2);
    CHECK(h0.bytes[0] == 0x82);
    CHECK(h0.bytes[1] == 125);
    const auto h1 = ws::encode_header(ws::opcode::binary, 126);
    CHECK(h1.size == 4);
    CHECK(h1.bytes[1] == 126);
    CHECK(h1.bytes[2] == 0);
    CHECK(h1.bytes[3] == 126);
    const auto h2 = ws::encode_header(ws::opcode::binary, 0x10000);
    CHECK(h2.size == 10);
    CHECK(h2.bytes[1] == 127);
    CHECK(h2.bytes[7] == 1);
    CHECK(h2.bytes[8] == 0);
    CHECK(ws::close_frame(ws::close_code::protocol_error) == std::string("\x88\x02\x03\xea", 4));
    CHECK(ws::control_frame(ws::opcode::pong, "hi") == std::string("\x8a\x02hi", 4));
}

TEST_CASE("accept key: the example of RFC 6455 section 1.3", "[net][websocket]") {
    CHECK(ws::accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("upgrade answer: MQTT subprotocols accepted on any path, the rest refused clearly",
          "[net][websocket][MQTT-6.0.0-3]") {
    auto request = [](std::string extra, std::string path = "/mqtt", std::string method = "GET") {
        return method + " " + path +
               " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: keep-alive, "
               "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n" +
               extra + "\r\n";
    };
    SECTION("mqtt") {
        const auto a = ws::answer_upgrade(request("Sec-WebSocket-Protocol: mqtt\r\n"));
        REQUIRE(a.accepted);
        CHECK(a.protocol == "mqtt");
        CHECK(a.path == "/mqtt");
        CHECK(a.response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        CHECK(a.response.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") !=
              std::string::npos);
        CHECK(a.response.find("Sec-WebSocket-Protocol: mqtt\r\n") != std::string::npos);
        CHECK(a.response.ends_with("\r\n\r\n"));
    }
    SECTION("mqttv3.1 among others, on another path") {
        const auto a = ws::answer_upgrade(
            request("Sec-WebSocket-Protocol: chat, MQTTv3.1\r\n", "/anything?x=1"));
        REQUIRE(a.accepted);
        CHECK(a.protocol == "mqttv3.1");
        CHECK(a.path == "/anything?x=1");
    }
    SECTION("no MQTT subprotocol: 400 with the reason") {
        const auto a = ws::answer_upgrade(request("Sec-WebSocket-Protocol: chat\r\n"));
        CHECK_FALSE(a.accepted);
        CHECK(a.response.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        CHECK(a.response.find("mqtt or mqttv3.1") != std::string::npos);
        CHECK(ws::answer_upgrade(request("")).response.starts_with("HTTP/1.1 400"));
    }
    SECTION("not an upgrade: 426") {
        const auto a = ws::answer_upgrade("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK_FALSE(a.accepted);
        CHECK(a.response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    }
    SECTION("POST, old HTTP, bad version or key, garbage") {
        CHECK(ws::answer_upgrade(request("Sec-WebSocket-Protocol: mqtt\r\n", "/", "POST"))
                  .response.starts_with("HTTP/1.1 405"));
        CHECK_FALSE(ws::answer_upgrade("GET / HTTP/1.0\r\n\r\n").accepted);
        CHECK_FALSE(ws::answer_upgrade("\x16\x03\x01\x00\xa5\r\n\r\n").accepted);
        auto bad_key = request("Sec-WebSocket-Protocol: mqtt\r\n");
        bad_key.replace(bad_key.find("dGhl"), 4, "");
        CHECK_FALSE(ws::answer_upgrade(bad_key).accepted);
    }
}
