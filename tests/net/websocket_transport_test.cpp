// net::websocket_transport over the in-memory transport: the upgrade, deframing, gathered
// writes under every write limit (partial writes of header and payload), pongs, close answers,
// error answers, and failures of the inner transport.
#include <tern/net/memory_transport.hpp>
#include <tern/net/websocket_transport.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include <string>
#include <vector>

namespace net = tern::net;
namespace asio = boost::asio;
using namespace std::literals;

namespace {

const std::string upgrade_request =
    "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\n\r\n";

std::string masked(std::uint8_t first, std::string_view payload) {
    std::string out;
    out.push_back(static_cast<char>(first));
    out.push_back(static_cast<char>(0x80 | payload.size())); // tests stay under 126 bytes
    const char mask[4] = {1, 2, 3, 4};
    out.append(mask, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
    }
    return out;
}

bool write_all(net::transport& t, std::string_view bytes) {
    const asio::const_buffer b(bytes.data(), bytes.size());
    boost::system::error_code ec;
    return t.try_write(std::span<const asio::const_buffer>(&b, 1), ec) == bytes.size() && !ec;
}

std::string read_all(net::transport& t) {
    std::string out;
    std::vector<std::uint8_t> buf(4096);
    for (;;) {
        boost::system::error_code ec;
        const auto n = t.try_read(buf, ec);
        if (ec) {
            return out;
        }
        out.append(reinterpret_cast<const char*>(buf.data()), n);
    }
}

/// Server frames (unmasked) → {opcode, payload} list; `rest` keeps an incomplete tail.
struct parsed_frame {
    int opcode;
    std::string payload;
};
std::vector<parsed_frame> parse_server_frames(std::string bytes) {
    std::vector<parsed_frame> frames;
    std::size_t at = 0;
    while (at + 2 <= bytes.size()) {
        const auto b0 = static_cast<std::uint8_t>(bytes[at]);
        const auto b1 = static_cast<std::uint8_t>(bytes[at + 1]);
        REQUIRE((b1 & 0x80) == 0); // a server never masks
        std::uint64_t len = b1 & 0x7F;
        std::size_t head = 2;
        if (len == 126) {
            len = (std::uint64_t{static_cast<std::uint8_t>(bytes[at + 2])} << 8) |
                  std::uint64_t{static_cast<std::uint8_t>(bytes[at + 3])};
            head = 4;
        } else if (len == 127) {
            len = 0;
            for (int i = 0; i < 8; ++i) {
                len = (len << 8) | static_cast<std::uint64_t>(static_cast<std::uint8_t>(
                                       bytes[at + 2 + static_cast<std::size_t>(i)]));
            }
            head = 10;
        }
        REQUIRE(at + head + len <= bytes.size());
        frames.push_back({b0 & 0x0F, bytes.substr(at + head, len)});
        at += head + len;
    }
    REQUIRE(at == bytes.size());
    return frames;
}

struct fixture {
    asio::io_context ctx;
    std::unique_ptr<net::memory_transport> client;
    net::memory_transport* server_inner = nullptr;
    std::unique_ptr<net::websocket_transport> server;

    explicit fixture(net::websocket_options options = {}) {
        auto [a, b] = net::memory_transport::make_pair(ctx);
        client = std::move(a);
        server_inner = b.get();
        server = std::make_unique<net::websocket_transport>(std::move(b), options);
    }

    /// Reads on the server side until it yields payload or an error.
    std::string server_read(boost::system::error_code& ec) {
        std::vector<std::uint8_t> buf(64 * 1024);
        const auto n = server->try_read(buf, ec);
        return std::string(reinterpret_cast<const char*>(buf.data()), n);
    }
};

} // namespace

TEST_CASE("websocket transport: upgrade, then MQTT bytes from frames that followed it",
          "[net][websocket]") {
    fixture f;
    REQUIRE(write_all(*f.client, upgrade_request + masked(0x82, "\x10\x0c"sv) +
                                     masked(0x82, "rest-of-connect")));
    boost::system::error_code ec;
    CHECK(f.server_read(ec) == std::string("\x10\x0c", 2) + "rest-of-connect");
    CHECK_FALSE(ec);
    CHECK(f.server->upgraded());
    CHECK(f.server->peer().transport == "ws");
    CHECK(f.server->peer().websocket_path == "/mqtt");
    CHECK(f.server->peer().websocket_protocol == "mqtt");
    const auto answer = read_all(*f.client);
    CHECK(answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    // Nothing more: the next read would block.
    f.server_read(ec);
    CHECK(net::is_would_block(ec));
}

TEST_CASE("websocket transport: an upgrade request cut into single bytes still works",
          "[net][websocket]") {
    fixture f;
    boost::system::error_code ec;
    const std::string bytes = upgrade_request + masked(0x82, "hello");
    std::string payload;
    for (char c : bytes) {
        REQUIRE(write_all(*f.client, std::string(1, c)));
        payload += f.server_read(ec);
        REQUIRE((!ec || net::is_would_block(ec)));
    }
    CHECK(payload == "hello");
}

TEST_CASE("websocket transport: gathered writes become one binary frame under any write limit",
          "[net][websocket]") {
    const std::string a(3, 'a');
    const std::string b(200, 'b'); // pushes the frame past 125: a 16-bit length
    const std::string c(1, 'c');
    for (std::size_t limit : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{3},
                              std::size_t{5}, std::size_t{64}}) {
        CAPTURE(limit);
        fixture f;
        REQUIRE(write_all(*f.client, upgrade_request));
        boost::system::error_code ec;
        f.server_read(ec);
        std::string received = read_all(*f.client);
        REQUIRE(received.starts_with("HTTP/1.1 101"));
        received.erase(0, received.find("\r\n\r\n") + 4);
        f.server_inner->set_write_limit(limit);

        const std::string all = a + b + c;
        std::size_t taken = 0;
        for (int guard = 0; taken < all.size() && guard < 10000; ++guard) {
            // The caller passes the untaken rest, as the connection does.
            std::vector<asio::const_buffer> rest;
            std::size_t skip = taken;
            for (const std::string* s : {&a, &b, &c}) {
                if (skip >= s->size()) {
                    skip -= s->size();
                    continue;
                }
                rest.emplace_back(s->data() + skip, s->size() - skip);
                skip = 0;
            }
            const auto n = f.server->try_write(rest, ec);
            REQUIRE((!ec || net::is_would_block(ec)));
            taken += n;
            received += read_all(*f.client);
        }
        REQUIRE(taken == all.size());
        received += read_all(*f.client);
        const auto frames = parse_server_frames(received);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].opcode == 2);
        CHECK(frames[0].payload == all);
    }
}

TEST_CASE("websocket transport: pings get pongs, a close is echoed and ends the stream",
          "[net][websocket]") {
    fixture f;
    REQUIRE(write_all(*f.client, upgrade_request + masked(0x89, "are you there")));
    boost::system::error_code ec;
    CHECK(f.server_read(ec).empty());
    CHECK(net::is_would_block(ec));
    read_all(*f.client); // the 101 went out at once
    REQUIRE(f.server->wants_write());
    f.server->try_write({}, ec);
    CHECK_FALSE(ec);
    CHECK_FALSE(f.server->wants_write());
    auto frames = parse_server_frames(read_all(*f.client));
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].opcode == 0xA);
    CHECK(frames[0].payload == "are you there");

    REQUIRE(write_all(*f.client, masked(0x82, "last") + masked(0x88, "\x03\xe8"sv)));
    CHECK(f.server_read(ec) == "last");
    f.server_read(ec);
    CHECK(ec == asio::error::eof);
    frames = parse_server_frames(read_all(*f.client));
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].opcode == 0x8);
    CHECK(frames[0].payload == std::string("\x03\xe8", 2));
}

TEST_CASE("websocket transport: violations are answered, named and final", "[net][websocket]") {
    SECTION("a text frame gets close 1003") {
        fixture f;
        REQUIRE(write_all(*f.client, upgrade_request + masked(0x81, "{\"json\":1}")));
        boost::system::error_code ec;
        f.server_read(ec);
        CHECK(ec);
        CHECK_FALSE(net::is_would_block(ec));
        CHECK(f.server->describe_error() ==
              "WebSocket protocol error: text frame (MQTT needs binary frames)");
        auto bytes = read_all(*f.client);
        bytes.erase(0, bytes.find("\r\n\r\n") + 4);
        const auto frames = parse_server_frames(bytes);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].opcode == 0x8);
        CHECK(frames[0].payload.substr(0, 2) == "\x03\xeb");
    }
    SECTION("no MQTT subprotocol gets 400 and no upgrade") {
        fixture f;
        std::string request = upgrade_request;
        request.replace(request.find("Protocol: mqtt"), 14, "Protocol: chat");
        REQUIRE(write_all(*f.client, request));
        boost::system::error_code ec;
        f.server_read(ec);
        CHECK(ec);
        CHECK(f.server->describe_error().starts_with("WebSocket upgrade refused: no MQTT"));
        CHECK(read_all(*f.client).starts_with("HTTP/1.1 400 Bad Request\r\n"));
        CHECK_FALSE(f.server->upgraded());
    }
    SECTION("headers over the limit get 431 before the blank line arrives") {
        fixture f(net::websocket_options{512});
        REQUIRE(write_all(*f.client, "GET / HTTP/1.1\r\nX-Big: " + std::string(600, 'x')));
        boost::system::error_code ec;
        f.server_read(ec);
        CHECK(ec);
        CHECK(f.server->describe_error() ==
              "WebSocket upgrade refused: request headers over 512 bytes");
        CHECK(read_all(*f.client).starts_with("HTTP/1.1 431"));
    }
}

TEST_CASE("websocket transport: a failing inner transport fails the caller, at every point",
          "[net][websocket]") {
    for (std::size_t fail_at = 1; fail_at <= 4; ++fail_at) {
        CAPTURE(fail_at);
        fixture f;
        REQUIRE(write_all(*f.client, upgrade_request + masked(0x82, "abc")));
        f.server_inner->fail_after(fail_at);
        boost::system::error_code ec;
        bool failed = false;
        for (int i = 0; i < 6 && !failed; ++i) {
            f.server_read(ec);
            const std::string out = "x";
            const asio::const_buffer b(out.data(), out.size());
            boost::system::error_code wec;
            f.server->try_write(std::span<const asio::const_buffer>(&b, 1), wec);
            failed = (ec && !net::is_would_block(ec)) || (wec && !net::is_would_block(wec));
        }
        CHECK(failed);
    }
}
