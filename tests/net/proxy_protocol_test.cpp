// The PROXY protocol parser (HAProxy's proxy-protocol.txt, versions 1 and 2).
#include <tern/net/proxy_protocol.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using tern::net::parse_proxy_header;
using tern::net::proxy_parse_status;

namespace {

std::vector<std::uint8_t> bytes(std::string_view s) {
    return {s.begin(), s.end()};
}

const std::string v2_sig("\r\n\r\n\0\r\nQUIT\n", 12);

std::vector<std::uint8_t> v2(std::uint8_t ver_cmd, std::uint8_t family, std::string body,
                             std::size_t claimed) {
    std::string h = v2_sig;
    h.push_back(static_cast<char>(ver_cmd));
    h.push_back(static_cast<char>(family));
    h.push_back(static_cast<char>(claimed >> 8));
    h.push_back(static_cast<char>(claimed & 0xFF));
    return bytes(h + body);
}

} // namespace

TEST_CASE("PROXY v1: TCP4, TCP6 and UNKNOWN, and the bytes after it are not consumed",
          "[net][proxy]") {
    const std::string line = "PROXY TCP4 203.0.113.7 10.0.0.1 5555 1883\r\n";
    const auto r = parse_proxy_header(bytes(line + "\x10\x0c"));
    REQUIRE(r.status == proxy_parse_status::complete);
    CHECK(r.header.version == 1);
    CHECK(r.header.size == line.size());
    CHECK(r.header.has_address);
    CHECK(r.header.source == "203.0.113.7:5555");
    CHECK(r.header.destination == "10.0.0.1:1883");
    const auto r6 = parse_proxy_header(bytes("PROXY TCP6 2001:db8::7 2001:db8::1 6000 8883\r\n"));
    REQUIRE(r6.status == proxy_parse_status::complete);
    CHECK(r6.header.source == "[2001:db8::7]:6000");
    const auto unknown = parse_proxy_header(bytes("PROXY UNKNOWN ignored stuff\r\n"));
    REQUIRE(unknown.status == proxy_parse_status::complete);
    CHECK_FALSE(unknown.header.has_address);
    // Every proper prefix waits for more.
    for (std::size_t k = 0; k < line.size(); ++k) {
        CAPTURE(k);
        CHECK(parse_proxy_header(bytes(line.substr(0, k))).status == proxy_parse_status::need_more);
    }
}

TEST_CASE("PROXY v2: PROXY and LOCAL, IPv4 and IPv6, TLVs skipped", "[net][proxy]") {
    const std::string v4("\xc6\x33\x64\x09\x0a\x00\x00\x01\x10\x92\x07\x5b", 12);
    const auto r = parse_proxy_header(v2(0x21, 0x11, v4, 12));
    REQUIRE(r.status == proxy_parse_status::complete);
    CHECK(r.header.version == 2);
    CHECK(r.header.size == 28);
    CHECK(r.header.source == "198.51.100.9:4242");
    CHECK(r.header.destination == "10.0.0.1:1883");
    const auto with_tlv =
        parse_proxy_header(v2(0x21, 0x11, v4 + std::string("\x01\x00\x04mqtt", 7), 19));
    REQUIRE(with_tlv.status == proxy_parse_status::complete);
    CHECK(with_tlv.header.size == 16 + 19);
    CHECK(with_tlv.header.source == "198.51.100.9:4242");
    std::string v6(36, '\0');
    v6[15] = 1;  // ::1
    v6[31] = 2;  // ::2
    v6[33] = 80; // source port 80
    const auto r6 = parse_proxy_header(v2(0x21, 0x21, v6, 36));
    REQUIRE(r6.status == proxy_parse_status::complete);
    CHECK(r6.header.source == "[::1]:80");
    const auto local = parse_proxy_header(v2(0x20, 0x00, "", 0));
    REQUIRE(local.status == proxy_parse_status::complete);
    CHECK_FALSE(local.header.has_address);
}

TEST_CASE("PROXY: what is not a header is refused at once, with a reason", "[net][proxy]") {
    struct bad {
        std::vector<std::uint8_t> input;
        std::string error;
    };
    const std::vector<bad> cases{
        {bytes("\x10\x0c\x00\x04MQTT"), "no PROXY protocol header"},
        {bytes("GET / HTTP/1.1\r\n"), "no PROXY protocol header"},
        {bytes("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), "malformed PROXY v1 header"},
        {bytes("PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n"),
         "PROXY v1 header with an invalid address or port"},
        {bytes("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"),
         "PROXY v1 header with an invalid address or port"},
        {bytes("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"),
         "PROXY v1 header with an invalid address or port"},
        {bytes("PROXY TCP4 " + std::string(120, '1')), "PROXY v1 header longer than 107 bytes"},
        {bytes(std::string("PROXY \x01", 7)), "PROXY v1 header with a non-printable byte"},
        // Found by fuzz_proxy: a NUL inside an address passed inet_pton, which stops at it.
        {bytes(std::string("PROXY TCP6 2001:db8::\0\0"
                           "7 2001:db8::1 6000 8883\r\n",
                           48)),
         "PROXY v1 header with a non-printable byte"},
        {v2(0x31, 0x11, "", 0), "PROXY v2 header with version 3"},
        {v2(0x22, 0x11, "", 0), "PROXY v2 header with command 2"},
        {v2(0x21, 0x11, "", 60000),
         "PROXY v2 header claims 60000 bytes of addresses (at most 1024)"},
        {v2(0x21, 0x11, std::string(4, '\0'), 4),
         "PROXY v2 IPv4 header shorter than its addresses"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.error);
        const auto r = parse_proxy_header(c.input);
        CHECK(r.status == proxy_parse_status::invalid);
        CHECK(r.error == c.error);
    }
    // A v2 header whose length says more than has arrived waits (the reader's deadline ends it).
    CHECK(parse_proxy_header(v2(0x21, 0x11, "abc", 12)).status == proxy_parse_status::need_more);
}
