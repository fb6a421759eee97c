// Every conformance vector a server can receive (tests/conformance/vectors, STYLE.md §8),
// replayed against one running `tern`, one raw connection per vector:
//  - error vectors close the connection; a v5 DISCONNECT sent first carries the vector's reason;
//  - "ok" vectors leave the connection usable (PINGREQ still gets PINGRESP), unless the packet is
//    well formed but not acceptable in this session's state (see expect_after_connect);
//  - a second CONNECT and the packets only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP)
//    close the connection.
// Every few vectors a libmosquitto publisher/subscriber pair must still exchange a message, and
// broker_process fails the test if tern crashed or logged a sanitizer report.
//
// A v5 DISCONNECT before the close is a SHOULD (MQTT 5 section 4.13.2), so it is checked only when
// it arrives. Today tern sends one for every v5 error after CONNECT (the reason the vector names)
// and for every packet type only a server sends; a bad CONNECT closes without CONNACK, except an
// unsupported protocol level (CONNACK 0x01 in the 3.1.1 layout) and an Authentication Method
// (CONNACK 0x8C). `broker_tests "[conformance]" -s` ends with a count of what it did.

#include "healthy_pair.hpp"
#include "raw_packets.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#ifndef TERN_CONFORMANCE_VECTORS_DIR
#error "TERN_CONFORMANCE_VECTORS_DIR must name tests/conformance/vectors"
#endif

using namespace tern::test;

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using bytes = std::vector<std::uint8_t>;

/// Bound on everything one vector may take; a healthy broker answers in microseconds.
constexpr auto vector_timeout = 2s;
/// Vectors between two checks of the healthy pair.
constexpr std::size_t health_check_every = 25;
/// Bound on the packets read back for one vector.
constexpr std::size_t max_replies = 64;

// Packet types: the high nibble of the first byte.
constexpr std::uint8_t type_connect = 1;
constexpr std::uint8_t type_connack = 2;
constexpr std::uint8_t type_publish = 3;
constexpr std::uint8_t type_puback = 4;
constexpr std::uint8_t type_pubrec = 5;
constexpr std::uint8_t type_pubrel = 6;
constexpr std::uint8_t type_pubcomp = 7;
constexpr std::uint8_t type_subscribe = 8;
constexpr std::uint8_t type_suback = 9;
constexpr std::uint8_t type_unsubscribe = 10;
constexpr std::uint8_t type_unsuback = 11;
constexpr std::uint8_t type_pingresp = 13;
constexpr std::uint8_t type_disconnect = 14;
constexpr std::uint8_t type_auth = 15;

// MQTT 5 reason codes.
constexpr std::uint8_t protocol_error = 0x82;
constexpr std::uint8_t bad_authentication_method = 0x8C;
constexpr std::uint8_t topic_alias_invalid = 0x94;
constexpr std::uint8_t shared_subscriptions_not_supported = 0x9E;
constexpr std::uint8_t subscription_identifiers_not_supported = 0xA1;

std::uint8_t type_of(const bytes& p) {
    return p.empty() ? 0 : static_cast<std::uint8_t>(p[0] >> 4);
}

std::string to_hex(const bytes& b) {
    std::string out;
    char buf[4];
    for (const auto byte : b) {
        std::snprintf(buf, sizeof buf, "%02x ", static_cast<unsigned>(byte));
        out += buf;
    }
    if (!out.empty()) {
        out.pop_back();
    }
    return out;
}

std::string reason_text(std::uint8_t reason) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(reason));
    return buf;
}

clock::duration remaining(clock::time_point deadline) {
    return std::max<clock::duration>(deadline - clock::now(), clock::duration::zero());
}

struct test_vector {
    std::string file;
    std::string name;
    std::string hex_text;
    bytes wire;
    std::uint8_t level = 4;
    std::string role;
    std::string expect;
    std::uint8_t reason = 0; // error vectors: the reason code the codec maps the error to

    bool ok() const { return expect == "ok"; }
    std::uint8_t type() const { return type_of(wire); }
};

std::vector<test_vector> load_vectors() {
    const fs::path dir{TERN_CONFORMANCE_VECTORS_DIR};
    REQUIRE(fs::is_directory(dir));
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() == ".json") {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    std::vector<test_vector> out;
    for (const auto& path : files) {
        INFO(path.string());
        std::ifstream in(path);
        REQUIRE(in.good());
        const auto content = json::parse(in);
        for (const auto& v : content.at("vectors")) {
            test_vector t;
            t.file = path.stem().string();
            t.name = v.at("name").get<std::string>();
            t.hex_text = v.at("hex").get<std::string>();
            t.wire = hex(t.hex_text);
            t.level = static_cast<std::uint8_t>(v.at("level").get<int>());
            t.role = v.at("role").get<std::string>();
            t.expect = v.at("expect").get<std::string>();
            if (!t.ok()) {
                t.reason = static_cast<std::uint8_t>(
                    std::stoul(v.at("reason").get<std::string>(), nullptr, 16));
            }
            REQUIRE_FALSE(t.wire.empty());
            out.push_back(std::move(t));
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Just enough parsing of the "ok" vectors (well formed by definition) to know what they ask for.

struct reader {
    const bytes& b;
    std::size_t i;
    bool good = true;

    bool need(std::size_t n) {
        good = good && i + n <= b.size();
        return good;
    }
    std::uint8_t u8() { return need(1) ? b[i++] : 0; }
    std::uint16_t u16() {
        if (!need(2)) {
            return 0;
        }
        const auto v = static_cast<std::uint16_t>(b[i] << 8 | b[i + 1]);
        i += 2;
        return v;
    }
    std::uint32_t u32() {
        const std::uint32_t hi = u16();
        return hi << 16 | u16();
    }
    std::uint32_t varint() {
        std::uint32_t v = 0;
        for (int shift = 0; shift < 28 && need(1); shift += 7) {
            const std::uint8_t byte = b[i++];
            v |= static_cast<std::uint32_t>(byte & 0x7F) << shift;
            if ((byte & 0x80) == 0) {
                break;
            }
        }
        return v;
    }
    void skip(std::size_t n) {
        if (need(n)) {
            i += n;
        }
    }
    std::string str() {
        const std::size_t n = u16();
        if (!need(n)) {
            return {};
        }
        std::string s(b.begin() + static_cast<std::ptrdiff_t>(i),
                      b.begin() + static_cast<std::ptrdiff_t>(i + n));
        i += n;
        return s;
    }
};

/// A reader positioned after the fixed header.
reader body_of(const bytes& p) {
    std::size_t i = 1;
    while (i < p.size() && (p[i] & 0x80) != 0) {
        ++i;
    }
    return reader{p, i + 1};
}

/// The identifiers of a v5 property block, with integer values (0 for strings and binaries).
std::map<std::uint8_t, std::uint32_t> read_properties(reader& r) {
    std::map<std::uint8_t, std::uint32_t> out;
    const std::size_t end = r.varint() + r.i;
    while (r.good && r.i < end) {
        const std::uint8_t id = r.u8();
        std::uint32_t value = 0;
        switch (property_width(id)) {
        case 1:
            value = r.u8();
            break;
        case 2:
            value = r.u16();
            break;
        case 4:
            value = r.u32();
            break;
        case 0:
            value = r.varint();
            break;
        default: // strings and binary data; a User Property is a pair of them
            r.skip(r.u16());
            if (id == 0x26) {
                r.skip(r.u16());
            }
            break;
        }
        out[id] = value;
    }
    return out;
}

/// A CONNACK property the broker sent, or `absent` when it left it out.
std::uint32_t connack_property(const connack_view& ack, std::uint8_t id, std::uint32_t absent) {
    const auto it = ack.props.find(id);
    if (it == ack.props.end()) {
        return absent;
    }
    std::uint32_t v = 0;
    for (const auto byte : it->second) {
        v = v << 8 | byte;
    }
    return v;
}

/// A valid CONNECT at `level`: 3 is MQTT 3.1 ("MQIsdp"), 4 is 3.1.1, 5 is MQTT 5.
bytes connect_at(std::uint8_t level, std::string_view client_id) {
    if (level != 3) {
        return connect_packet(level, client_id);
    }
    bytes body;
    put_string(body, "MQIsdp");
    body.push_back(3);
    body.push_back(0x02); // clean session
    body.push_back(0);
    body.push_back(30); // keep alive
    put_string(body, client_id);
    return frame(0x10, body);
}

// ---------------------------------------------------------------------------------------------
// What the broker may do with a vector, and the checks of what it did.

enum class outcome { stays_open, closes, either };

struct expectation {
    outcome what = outcome::stays_open;
    /// Reason codes a v5 DISCONNECT may carry before the close; empty: any error (>= 0x80).
    std::set<std::uint8_t> reasons;
    /// Packet types the broker may send while the connection stays open.
    std::set<std::uint8_t> replies;
    /// A packet type that must arrive (before PINGRESP), with packet identifier `reply_id`.
    std::optional<std::uint8_t> required_reply;
    std::uint16_t reply_id = 0;
    /// Why, for the failure message.
    std::string why;
};

/// Adds a reason to the failure message of `e`.
void because(expectation& e, std::string_view why) {
    e.why += e.why.empty() ? std::string(why) : "; " + std::string(why);
}

/// An error vector, or a packet no server accepts: the connection closes.
expectation closes_with(std::set<std::uint8_t> reasons, std::string why) {
    expectation e;
    e.what = outcome::closes;
    e.reasons = std::move(reasons);
    e.why = std::move(why);
    return e;
}

/// What a server does with an "ok" vector on a fresh session opened with a minimal CONNECT at the
/// vector's level (no Authentication Method, no subscriptions, no messages in flight). Well formed
/// is not always acceptable: some packets end or refuse the session by the spec's rules. Only
/// where the spec leaves the choice to the server is the outcome `either`.
expectation expect_after_connect(const test_vector& v, const connack_view& ack) {
    expectation e;
    reader r = body_of(v.wire);
    const bool v5 = v.level == 5;
    switch (v.type()) {
    case type_publish: {
        const auto qos = (v.wire[0] >> 1) & 0x03;
        const std::string topic = r.str();
        const std::uint16_t id = qos > 0 ? r.u16() : 0;
        const auto props = v5 ? read_properties(r) : std::map<std::uint8_t, std::uint32_t>{};
        if (qos > 0) {
            e.required_reply = qos == 1 ? type_puback : type_pubrec;
            e.reply_id = id;
            e.replies.insert(*e.required_reply);
        }
        const auto alias = props.find(0x23);
        if (props.contains(0x0B)) {
            // [MQTT-3.3.4-6]: a client's PUBLISH carries no Subscription Identifier; a Protocol
            // Error closes the connection (section 4.13).
            e.what = outcome::closes;
            e.reasons.insert(protocol_error);
            because(e, "PUBLISH from a client with a Subscription Identifier");
        }
        if (alias != props.end() && alias->second > connack_property(ack, 0x22, 0)) {
            // Over the Topic Alias Maximum of the CONNACK (absent: 0, none allowed; section
            // 3.2.2.3.8): a Protocol Error, DISCONNECT 0x94 Topic Alias invalid (3.3.2.3.4).
            e.what = outcome::closes;
            e.reasons.insert(topic_alias_invalid);
            because(e, "Topic Alias over the CONNACK's Topic Alias Maximum");
        } else if (alias != props.end() && e.what == outcome::stays_open) {
            // Within the maximum, acceptance depends on the alias mapping (none yet).
            e.what = outcome::either;
            because(e, "Topic Alias within the maximum, without a mapping");
        }
        if (e.what == outcome::stays_open && topic.starts_with('$')) {
            // Topics beginning with '$' are the server's (section 4.7.2); what it does with a
            // client's PUBLISH to one is left to the implementation.
            e.what = outcome::either;
            because(e, "PUBLISH to a $ topic");
        }
        break;
    }
    case type_puback:
    case type_pubcomp:
        // An unknown packet identifier: nothing to acknowledge, nothing to close for.
        break;
    case type_pubrec:
        // Unknown packet identifier: the broker may answer PUBREL (v5: 0x92 Packet Identifier
        // not found) or ignore it.
        e.replies.insert(type_pubrel);
        break;
    case type_pubrel:
        // Every PUBREL gets a PUBCOMP with its packet identifier (v5: 0x92 when unknown).
        e.required_reply = type_pubcomp;
        e.reply_id = r.u16();
        e.replies.insert(type_pubcomp);
        break;
    case type_subscribe: {
        e.required_reply = type_suback;
        e.reply_id = r.u16();
        e.replies = {type_suback, type_publish}; // retained messages follow the SUBACK
        if (!v5) {
            break;
        }
        const auto props = read_properties(r);
        bool shared = false;
        while (r.good && r.i < v.wire.size()) {
            shared = shared || r.str().starts_with("$share/");
            r.skip(1); // options
        }
        // Announced as unsupported in the CONNACK, Subscription Identifiers and shared
        // subscriptions are refused either per filter in the SUBACK (0xA1 / 0x9E) or by
        // DISCONNECT with the same codes (section 3.2.2.3.12 / 3.2.2.3.13): both are allowed.
        if (props.contains(0x0B) && connack_property(ack, 0x29, 1) == 0) {
            e.what = outcome::either;
            e.reasons.insert(subscription_identifiers_not_supported);
            because(e, "Subscription Identifier, announced as unsupported");
        }
        if (shared && connack_property(ack, 0x2A, 1) == 0) {
            e.what = outcome::either;
            e.reasons.insert(shared_subscriptions_not_supported);
            because(e, "shared subscription, announced as unsupported");
        }
        break;
    }
    case type_unsubscribe:
        e.required_reply = type_unsuback;
        e.reply_id = r.u16();
        e.replies.insert(type_unsuback);
        break;
    case type_disconnect:
        // The client ends the session; the server SHOULD close (3.1.1 section 3.14.4, v5
        // section 3.14.4), so staying open until the client closes is allowed too. Any
        // DISCONNECT back must carry an error reason (e.g. for the server-only 0x8B).
        e.what = outcome::either;
        e.why = "DISCONNECT ends the session";
        break;
    case type_auth:
        // Our CONNECT had no Authentication Method, so AUTH is out of place (section 4.12); a
        // server may refuse it as a Protocol Error or Bad Authentication Method, or ignore it.
        e.what = outcome::either;
        e.reasons = {protocol_error, bad_authentication_method};
        e.why = "AUTH without an Authentication Method in CONNECT";
        break;
    default: // PINGREQ
        break;
    }
    return e;
}

/// What the broker sent on a connection, read until PINGRESP or the close (bounded).
struct session_result {
    std::vector<bytes> packets; // before PINGRESP / the close
    bool pingresp = false;
    bool closed = false;
};

session_result read_until_closed(raw_socket& s, clock::time_point deadline) {
    session_result r;
    while (r.packets.size() < max_replies) {
        auto p = s.read_packet(remaining(deadline));
        if (!p) {
            break;
        }
        r.packets.push_back(std::move(*p));
    }
    // read_packet returns nothing on EOF too; wait_closed tells EOF from a timeout.
    r.closed = s.wait_closed(std::max<clock::duration>(remaining(deadline), 50ms));
    return r;
}

session_result ping(raw_socket& s, clock::time_point deadline) {
    session_result r;
    s.send(hex("c0 00")); // may fail when the broker already closed
    while (r.packets.size() < max_replies) {
        auto p = s.read_packet(remaining(deadline));
        if (!p) {
            r.closed = s.wait_closed(std::max<clock::duration>(remaining(deadline), 50ms));
            return r;
        }
        if (type_of(*p) == type_pingresp) {
            r.pingresp = true;
            return r;
        }
        r.packets.push_back(std::move(*p));
    }
    return r;
}

/// What the broker did with a vector.
enum class observed { stayed_open, closed, closed_after_disconnect, failed };

/// After a close: nothing before it but, in v5, one DISCONNECT whose reason is allowed.
observed check_close_packets(const std::vector<bytes>& packets, std::uint8_t level,
                             const std::set<std::uint8_t>& reasons) {
    observed result = observed::closed;
    for (std::size_t i = 0; i < packets.size(); ++i) {
        const auto& p = packets[i];
        INFO("broker sent " << to_hex(p));
        const bool last = i + 1 == packets.size();
        const auto reason = disconnect_reason(p);
        if (level != 5 || !last || !reason) {
            FAIL_CHECK("unexpected packet before the close");
            continue;
        }
        result = observed::closed_after_disconnect;
        if (reasons.empty()) {
            CHECK(*reason >= 0x80);
        } else {
            INFO("DISCONNECT reason " << reason_text(*reason));
            CHECK(reasons.contains(*reason));
        }
    }
    return result;
}

/// Checks what the broker did after a vector on an open session, against `e`.
observed check_session(raw_socket& s, const expectation& e, std::uint8_t level,
                       clock::time_point deadline) {
    INFO("expected: " << (e.what == outcome::closes       ? "close"
                          : e.what == outcome::stays_open ? "stay open"
                                                          : "stay open or close")
                      << (e.why.empty() ? "" : " (" + e.why + ")"));
    if (e.what == outcome::closes) {
        const auto r = read_until_closed(s, deadline);
        CHECK(r.closed);
        const auto o = check_close_packets(r.packets, level, e.reasons);
        return r.closed ? o : observed::failed;
    }
    const auto r = ping(s, deadline);
    if (!r.pingresp) {
        if (e.what == outcome::stays_open) {
            std::string sent;
            for (const auto& p : r.packets) {
                sent += "[" + to_hex(p) + "] ";
            }
            FAIL_CHECK("no PINGRESP: " << (r.closed ? "the broker closed" : "timed out")
                                       << "; it sent " << sent);
            return observed::failed;
        }
        CHECK(r.closed);
        const auto o = check_close_packets(r.packets, level, e.reasons);
        return r.closed ? o : observed::failed;
    }
    bool required_seen = false;
    for (const auto& p : r.packets) {
        INFO("broker sent " << to_hex(p));
        CHECK(e.replies.contains(type_of(p)));
        if (e.required_reply && type_of(p) == *e.required_reply) {
            reader rr = body_of(p);
            required_seen = required_seen || rr.u16() == e.reply_id;
        }
    }
    if (e.required_reply) {
        INFO("required reply: type " << int{*e.required_reply} << ", packet id " << e.reply_id);
        CHECK(required_seen);
    }
    return observed::stayed_open;
}

/// Counts of what ran and what the broker did, for the summary.
struct tally {
    std::size_t runs = 0;
    std::size_t skipped_client_role = 0;
    std::map<std::string, std::size_t> counts;

    void add(const std::string& category, observed o) {
        ++runs;
        ++counts[category];
        switch (o) {
        case observed::stayed_open:
            ++counts[category + " / stayed open"];
            break;
        case observed::closed:
            ++counts[category + " / closed"];
            break;
        case observed::closed_after_disconnect:
            ++counts[category + " / closed after DISCONNECT"];
            break;
        case observed::failed:
            ++counts[category + " / FAILED"];
            break;
        }
    }
};

/// A CONNECT vector as the first packet of a connection.
void run_first_connect(int port, const test_vector& v, tally& t) {
    raw_socket s(port);
    const auto deadline = clock::now() + vector_timeout;
    s.send(v.wire);
    if (!v.ok()) {
        // Closed. v5 (section 4.13.1) lets the server send a CONNACK with the reason first; in
        // 3.1.1 a non-conforming CONNECT closes without CONNACK [MQTT-3.1.4-1], except a bad
        // protocol name (which may get return code 1 [MQTT-3.1.2-1]) or level [MQTT-3.1.2-2].
        const auto r = read_until_closed(s, deadline);
        CHECK(r.closed);
        const bool connack_allowed = v.level == 5 || v.expect == "invalid_protocol_name" ||
                                     v.expect == "unsupported_protocol_version";
        CHECK(r.packets.size() <= 1);
        for (const auto& p : r.packets) {
            INFO("broker sent " << to_hex(p));
            CHECK(connack_allowed);
            CHECK(type_of(p) == type_connack);
            if (p.size() < 4) {
                FAIL_CHECK("CONNACK too short");
            } else if (p[1] >= 3) { // v5 layout: the reason code is the vector's
                INFO("CONNACK reason " << reason_text(p[3]));
                CHECK(p[3] == v.reason);
            } else { // 3.1.1 layout, which a server uses when the level is unknown
                CHECK(p[3] >= 1);
                CHECK(p[3] <= 5);
            }
        }
        t.add("CONNECT error as first packet", r.closed ? observed::closed : observed::failed);
        return;
    }

    reader r = body_of(v.wire);
    r.str(); // protocol name
    r.skip(1);
    const std::uint8_t flags = r.u8();
    r.skip(2);
    const auto props = v.level == 5 ? read_properties(r) : std::map<std::uint8_t, std::uint32_t>{};
    const bool empty_id_without_clean = r.str().empty() && (flags & 0x02) == 0;

    const std::string category = "CONNECT ok as first packet";
    const auto first = s.read_packet(remaining(deadline));
    if (!first) {
        FAIL_CHECK("no CONNACK");
        t.add(category, observed::failed);
        return;
    }
    INFO("broker sent " << to_hex(*first));
    if (type_of(*first) == type_auth && props.contains(0x15)) {
        // Enhanced authentication in progress: nothing more a raw test can check.
        t.add(category, observed::stayed_open);
        return;
    }
    const auto ack =
        type_of(*first) == type_connack ? parse_connack(*first, v.level == 5) : std::nullopt;
    if (!ack) {
        FAIL_CHECK("the first reply is not a CONNACK");
        t.add(category, observed::failed);
        return;
    }
    if (v.level != 5 && empty_id_without_clean) {
        // [MQTT-3.1.3-8]: a zero-byte ClientId with CleanSession 0 gets return code 0x02.
        CHECK(ack->reason == 0x02);
    }
    expectation e;
    if (ack->reason != 0) {
        // Refused (credentials, client id, authentication method): the server closes
        // (section 3.2.2.3 in 3.1.1, 3.2.2.2 in v5).
        e = closes_with({}, "CONNACK refused the session");
    }
    t.add(category, check_session(s, e, v.level, deadline));
}

/// Any other vector (or, with `second_connect`, an "ok" CONNECT vector), after a valid CONNECT
/// at the vector's level.
void run_after_connect(int port, const test_vector& v, std::size_t index, bool second_connect,
                       tally& t) {
    raw_socket s(port);
    const auto deadline = clock::now() + vector_timeout;
    s.send(connect_at(v.level, "vec-" + std::to_string(index)));
    const auto first = s.read_packet(remaining(deadline));
    REQUIRE(first); // a broker that cannot take a valid CONNECT is beyond per-vector checks
    const auto ack = parse_connack(*first, v.level == 5);
    REQUIRE(ack);
    REQUIRE(ack->reason == 0);
    s.send(v.wire);

    const auto type = v.type();
    std::string category;
    expectation e;
    if (second_connect) {
        // [MQTT-3.1.0-2]: a second CONNECT is a Protocol Error and closes the connection.
        category = "CONNECT ok after CONNECT";
        e = closes_with({protocol_error}, "second CONNECT");
    } else if (type == type_connack || type == type_suback || type == type_unsuback ||
               type == type_pingresp) {
        // Only a server sends these: a Protocol Error from a client, unless the packet is
        // malformed in the first place (then the vector's own reason fits too).
        category = "server-only packet type after CONNECT";
        std::set<std::uint8_t> reasons{protocol_error};
        if (!v.ok()) {
            reasons.insert(v.reason);
        }
        e = closes_with(reasons, "a packet type only a server sends");
    } else if (!v.ok()) {
        category = "error after CONNECT (level " + std::to_string(v.level) + ")";
        e = closes_with({v.reason}, "error vector " + v.expect + " " + reason_text(v.reason));
    } else {
        e = expect_after_connect(v, *ack);
        category = e.what == outcome::stays_open ? "ok after CONNECT, must stay open"
                   : e.what == outcome::closes   ? "ok after CONNECT, must close"
                                                 : "ok after CONNECT, open or close";
    }
    t.add(category, check_session(s, e, v.level, deadline));
}

} // namespace

TEST_CASE("every conformance vector a server receives, against one broker",
          "[broker][malformed][conformance]") {
    const auto vectors = load_vectors();
    broker_process broker;
    healthy_pair healthy(broker.port(), "vectors-healthy");
    tally t;
    std::size_t since_check = 0;
    std::string batch; // the vectors since the last health check, for its failure message

    const auto health_check = [&] {
        INFO("after vectors: " << batch);
        REQUIRE(broker.alive());
        healthy.check("after " + std::to_string(t.runs) + " runs");
        batch.clear();
        since_check = 0;
    };

    for (std::size_t i = 0; i < vectors.size(); ++i) {
        const auto& v = vectors[i];
        if (v.role == "client") {
            ++t.skipped_client_role; // what only a client receives
            continue;
        }
        INFO(v.file << ".json: " << v.name << " (level " << int{v.level} << ", expect " << v.expect
                    << "): " << v.hex_text);
        batch += v.name + "; ";
        if (v.type() == type_connect) {
            run_first_connect(broker.port(), v, t);
            if (v.ok()) {
                run_after_connect(broker.port(), v, i, true, t);
            }
        } else {
            run_after_connect(broker.port(), v, i, false, t);
        }
        if (++since_check >= health_check_every) {
            health_check();
        }
    }
    health_check();

    std::string summary = std::to_string(t.runs) + " runs, " +
                          std::to_string(t.skipped_client_role) + " client-role vectors skipped";
    for (const auto& [name, n] : t.counts) {
        summary += "\n  " + name + ": " + std::to_string(n);
    }
    INFO(summary); // shown with -s
    CHECK(t.runs >= 250);
}
