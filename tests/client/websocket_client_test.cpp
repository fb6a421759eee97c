// The pure pieces of the WebSocket client (net/websocket_client.hpp): the upgrade request and
// the check of the server's answer, masked frames, and the deframer of server frames.

#include <tern/net/websocket_client.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace ws = tern::net::websocket;

TEST_CASE("websocket client: the upgrade request and the server's answer", "[client][ws]") {
    const auto key = ws::make_client_key();
    CHECK(key.size() == 24); // base64 of 16 bytes [RFC 6455 4.1]
    CHECK(ws::make_client_key() != key);
    const auto request = ws::make_upgrade_request("h:1", "/mqtt", "mqtt", key);
    CHECK(request.starts_with("GET /mqtt HTTP/1.1\r\n"));
    CHECK(request.find("Sec-WebSocket-Key: " + key + "\r\n") != std::string::npos);
    CHECK(request.find("Sec-WebSocket-Protocol: mqtt\r\n") != std::string::npos);
    CHECK(request.ends_with("\r\n\r\n"));
    // The server side's own answer is accepted.
    const auto answer = ws::answer_upgrade(request);
    REQUIRE(answer.accepted);
    const auto ok = ws::check_upgrade_response(answer.response, key, "mqtt");
    CHECK(ok.accepted);
    CHECK(ok.protocol == "mqtt");
    // A wrong accept key, a wrong status, a foreign subprotocol are refused.
    // Another key: its first character changed (a fixed "x" was the same key 1 time in 64).
    const std::string other_key = (key[0] == 'x' ? "y" : "x") + key.substr(1);
    const auto other = ws::answer_upgrade(ws::make_upgrade_request("h", "/", "mqtt", other_key));
    CHECK_FALSE(ws::check_upgrade_response(other.response, key, "mqtt").accepted);
    const auto not_found = ws::check_upgrade_response(
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", key, "mqtt");
    CHECK_FALSE(not_found.accepted);
    CHECK(not_found.error.find("404") != std::string::npos);
    std::string foreign = answer.response;
    foreign.replace(foreign.find("Protocol: mqtt"), 14, "Protocol: chat");
    CHECK_FALSE(ws::check_upgrade_response(foreign, key, "mqtt").accepted);
}

TEST_CASE("websocket client: masked frames decode with the server's deframer", "[client][ws]") {
    const std::array<std::uint8_t, 4> mask{0x12, 0x34, 0x56, 0x78};
    for (const std::size_t size : {0U, 5U, 125U, 126U, 65535U, 65536U}) {
        const auto h = ws::encode_masked_header(ws::opcode::binary, size, mask);
        std::vector<std::uint8_t> frame(h.bytes.begin(),
                                        h.bytes.begin() + static_cast<long>(h.size));
        for (std::size_t i = 0; i < size; ++i) {
            frame.push_back(static_cast<std::uint8_t>((i & 0xFF) ^ mask[i & 3]));
        }
        ws::deframer server;
        const auto r = server.feed(frame.data(), frame.size());
        REQUIRE(r.error == ws::frame_error::none);
        REQUIRE(r.payload == size);
        for (std::size_t i = 0; i < size; ++i) {
            REQUIRE(frame[i] == static_cast<std::uint8_t>(i & 0xFF));
        }
    }
    auto pong = ws::masked_control_frame(ws::opcode::pong, "hi", mask);
    ws::deframer server;
    CHECK(server.feed(reinterpret_cast<std::uint8_t*>(pong.data()), pong.size()).error ==
          ws::frame_error::none);
}

TEST_CASE("websocket client: server frames, cut anywhere", "[client][ws]") {
    // Two binary frames (one 300 bytes), a ping between them, then a close.
    std::string stream;
    std::string payload(300, 'p');
    auto h = ws::encode_header(ws::opcode::binary, 3);
    stream.append(reinterpret_cast<const char*>(h.bytes.data()), h.size).append("abc");
    stream += ws::control_frame(ws::opcode::ping, "x");
    h = ws::encode_header(ws::opcode::binary, payload.size());
    stream.append(reinterpret_cast<const char*>(h.bytes.data()), h.size).append(payload);
    stream += ws::close_frame(ws::close_code::normal);
    for (std::size_t cut = 1; cut <= stream.size(); cut += 7) {
        ws::deframer d(268'435'460U, ws::deframer::from::server);
        std::string out;
        std::string data = stream;
        for (std::size_t at = 0; at < data.size(); at += cut) {
            const auto n = std::min(cut, data.size() - at);
            auto* p = reinterpret_cast<std::uint8_t*>(data.data() + at);
            const auto r = d.feed(p, n);
            REQUIRE(r.error == ws::frame_error::none);
            out.append(reinterpret_cast<const char*>(p), r.payload);
        }
        REQUIRE(out == "abc" + payload);
        CHECK(d.take_pings() == std::vector<std::string>{"x"});
        CHECK(d.close_received() == std::uint16_t{1000});
    }
    // A masked server frame, or a text frame, is a protocol error.
    auto masked = ws::masked_control_frame(ws::opcode::ping, "", {1, 2, 3, 4});
    ws::deframer d(268'435'460U, ws::deframer::from::server);
    CHECK(d.feed(reinterpret_cast<std::uint8_t*>(masked.data()), masked.size()).error ==
          ws::frame_error::masked_frame);
    auto text = ws::control_frame(ws::opcode::text, "x");
    ws::deframer d2(268'435'460U, ws::deframer::from::server);
    CHECK(d2.feed(reinterpret_cast<std::uint8_t*>(text.data()), text.size()).error ==
          ws::frame_error::text_frame);
}
