// The store's record formats (store/src/records.cpp) as pure functions: every value decodes
// back to what was encoded, keys sort numerically under RocksDB's bytewise order (the prefix
// scans per session rely on it), and a value cut short, corrupted or written by a newer format
// is refused rather than misread.

#include <tern/store/records.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

using namespace tern;
using namespace std::chrono_literals;
using store::decode_delivery;
using store::decode_message;
using store::decode_session;
using store::decode_subscription;
using store::decode_u64;

namespace {

// Fixed clocks, whole milliseconds (the store keeps milliseconds): round trips are exact.
const auto wall_now = std::chrono::system_clock::time_point(1'796'282'000'123ms);
const auto now = std::chrono::steady_clock::time_point(10h);

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

/// A QoS 2 retained message with every property a server forwards, plus the two it must not
/// keep (Topic Alias, Subscription Identifier), and a payload with NUL bytes.
broker::message_ptr full_message(std::string_view payload = std::string_view("p\0y\xff", 4)) {
    auto m = std::const_pointer_cast<broker::message>(broker::make_owned_message(
        "plant/7/temp", payload, protocol::qos::exactly_once, true, now));
    auto& p = m->publish.props;
    p.payload_format_indicator = 1;
    p.message_expiry_interval = 3600;
    p.content_type = "application/json";
    p.response_topic = "reply/7";
    p.correlation_data = std::string_view("c\0rr", 4);
    p.user_properties = {{"trace", "abc"}, {"trace", "def"}, {"region", "eu"}};
    p.topic_alias = 3;
    p.subscription_identifiers = {42};
    return m;
}

void check_same_message(const broker::message& got, const broker::message& want) {
    CHECK(got.publish.topic == want.publish.topic);
    CHECK(got.publish.payload == want.publish.payload);
    CHECK(got.publish.qos == want.publish.qos);
    CHECK(got.publish.retain == want.publish.retain);
    CHECK_FALSE(got.publish.dup);
    CHECK(got.publish.packet_id == 0);
    auto expected = want.publish.props;
    // Not the message's own: a server sets them per subscriber [MQTT-3.3.2-4 ff.].
    expected.topic_alias.reset();
    expected.subscription_identifiers.clear();
    CHECK(got.publish.props == expected);
}

/// The lengths below value.size() at which `accepts` still takes a prefix of `value`.
template <class Accepts>
std::vector<std::size_t> accepted_truncations(const std::string& value, Accepts accepts) {
    std::vector<std::size_t> out;
    for (std::size_t n = 0; n < value.size(); ++n) {
        if (accepts(std::string_view(value).substr(0, n))) {
            out.push_back(n);
        }
    }
    return out;
}

std::string with_format(std::string value, std::uint8_t format) {
    value[0] = static_cast<char>(format);
    return value;
}

bool same_delivery(const broker::stored_delivery& a, const broker::stored_delivery& b) {
    return std::tie(a.qos, a.retain, a.packet_id, a.released, a.subscription_ids) ==
           std::tie(b.qos, b.retain, b.packet_id, b.released, b.subscription_ids);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// keys

TEST_CASE("records: keys are big-endian and their parts parse back", "[store][records]") {
    const std::uint64_t session = 0x0102030405060708ULL;
    CHECK(store::session_prefix(session) == std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
    CHECK(store::body_key(1) == std::string("\0\0\0\0\0\0\0\x01", 8));

    const auto sub = store::subscription_key(session, "a/+/#");
    CHECK(sub == store::session_prefix(session) + "a/+/#");
    CHECK(store::key_session(sub) == session);
    CHECK(store::subscription_key_filter(sub) == "a/+/#");

    const auto delivery = store::delivery_key(session, 0xA1B2C3D4E5F60718ULL);
    CHECK(delivery.size() == 16);
    CHECK(store::key_session(delivery) == session);
    CHECK(store::delivery_key_message(delivery) == 0xA1B2C3D4E5F60718ULL);

    const auto inbound = store::inbound_key(session, 0xBEEF);
    CHECK(inbound == store::session_prefix(session) + std::string("\xBE\xEF", 2));
    CHECK(store::key_session(inbound) == session);
    CHECK(store::inbound_key_packet(inbound) == 0xBEEF);

    const auto body = store::body_key(max_u64);
    CHECK(body == std::string(8, '\xFF'));
    CHECK(store::body_key_message(body) == max_u64);

    // A ref is the delivery key turned around: message id first.
    const auto ref = store::ref_key(77, session);
    CHECK(ref == store::body_key(77) + store::session_prefix(session));
    CHECK(store::ref_key_message(ref) == 77);
    CHECK(store::ref_key_session(ref) == session);
}

TEST_CASE("records: key parsers refuse keys of the wrong length", "[store][records]") {
    const auto delivery = store::delivery_key(1, 2);
    const auto inbound = store::inbound_key(1, 2);
    const auto ref = store::ref_key(1, 2);
    for (std::size_t n = 0; n < 8; ++n) {
        INFO("length " << n);
        CHECK_FALSE(store::key_session(delivery.substr(0, n)));
        CHECK(store::subscription_key_filter(delivery.substr(0, n)).empty());
        CHECK_FALSE(store::body_key_message(delivery.substr(0, n)));
    }
    CHECK_FALSE(store::body_key_message(delivery.substr(0, 9)));
    CHECK_FALSE(store::delivery_key_message(delivery.substr(0, 15)));
    CHECK_FALSE(store::delivery_key_message(delivery + "x"));
    CHECK_FALSE(store::inbound_key_packet(inbound.substr(0, 9)));
    CHECK_FALSE(store::inbound_key_packet(inbound + "x"));
    CHECK_FALSE(store::inbound_key_packet(delivery));
    CHECK_FALSE(store::ref_key_message(ref.substr(0, 15)));
    CHECK_FALSE(store::ref_key_session(ref.substr(0, 15)));
    CHECK_FALSE(store::ref_key_message(ref + "x"));
    CHECK_FALSE(store::ref_key_session(ref + "x"));
    // A subscription key with an empty filter has no filter (recovery drops it as corrupt).
    CHECK(store::subscription_key_filter(store::session_prefix(5)).empty());
}

TEST_CASE("records: bytewise key order is numeric order, so each session's records are one "
          "contiguous range in message-id / packet-id order",
          "[store][records]") {
    // Values around byte boundaries, where a little-endian or text encoding would misorder.
    const std::vector<std::uint64_t> values{
        0,          1, 2, 0xFF, 0x100, 0x101, 0xFFFF, 0x10000, 1ULL << 32, 0x0100000000000000ULL,
        max_u64 - 1};
    for (const auto a : values) {
        for (const auto b : values) {
            INFO(a << " vs " << b);
            CHECK((store::session_prefix(a) < store::session_prefix(b)) == (a < b));
            CHECK((store::delivery_key(7, a) < store::delivery_key(7, b)) == (a < b));
            CHECK((store::body_key(a) < store::body_key(b)) == (a < b));
            CHECK((store::ref_key(a, 9) < store::ref_key(b, 9)) == (a < b));
            const auto pa = static_cast<std::uint16_t>(a & 0xFFFF);
            const auto pb = static_cast<std::uint16_t>(b & 0xFFFF);
            CHECK((store::inbound_key(7, pa) < store::inbound_key(7, pb)) == (pa < pb));
        }
    }

    // Every key of session k lies in [prefix(k), prefix(k + 1)), whatever follows the prefix:
    // the store's DeleteRange and Seek/starts_with scans per session depend on it.
    std::mt19937_64 rng(2024);
    for (int i = 0; i < 200; ++i) {
        const std::uint64_t k = rng() % (max_u64 - 1) + 1;
        const auto lo = store::session_prefix(k);
        const auto hi = store::session_prefix(k + 1);
        const std::string keys[] = {
            store::delivery_key(k, rng()),
            store::delivery_key(k, max_u64),
            store::inbound_key(k, static_cast<std::uint16_t>(rng())),
            store::subscription_key(k, std::string(40, '\xFF')),
            store::subscription_key(k, ""),
        };
        for (const auto& key : keys) {
            CHECK(lo <= key);
            CHECK(key < hi);
            CHECK(key.starts_with(lo));
        }
    }

    // Sorting delivery keys as bytes gives (session, message id) order.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> pairs;
    for (int i = 0; i < 500; ++i) {
        pairs.emplace_back(rng() % 4 + 1, rng() >> (rng() % 64));
    }
    std::vector<std::string> keys;
    for (const auto& [s, m] : pairs) {
        keys.push_back(store::delivery_key(s, m));
    }
    std::sort(pairs.begin(), pairs.end());
    std::sort(keys.begin(), keys.end());
    for (std::size_t i = 0; i < keys.size(); ++i) {
        CHECK(store::key_session(keys[i]) == pairs[i].first);
        CHECK(store::delivery_key_message(keys[i]) == pairs[i].second);
    }
}

// ---------------------------------------------------------------------------------------------
// u64 (meta values)

TEST_CASE("records: u64 meta values round trip and refuse any other length", "[store][records]") {
    for (const auto v : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{store::store_format},
                         std::uint64_t{0x0102030405060708ULL}, max_u64}) {
        const auto e = store::encode_u64(v);
        CHECK(e.size() == 8);
        CHECK(decode_u64(e) == v);
    }
    CHECK(store::encode_u64(0x0102030405060708ULL) ==
          std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
    const auto e = store::encode_u64(5);
    CHECK(accepted_truncations(e, [](std::string_view v) {
              return decode_u64(v).has_value();
          }).empty());
    CHECK_FALSE(decode_u64(e + '\0'));
}

// ---------------------------------------------------------------------------------------------
// messages

TEST_CASE("records: a v5 message round trips with every forwarded property, in order, and "
          "without Topic Alias and Subscription Identifier [MQTT-3.3.2-4]",
          "[store][records][v5]") {
    const auto m = full_message();
    const auto value = store::encode_message(*m, wall_now - 5s);
    CHECK(static_cast<std::uint8_t>(value[0]) == store::record_format);
    const auto d = decode_message(value, wall_now, now);
    REQUIRE(d);
    REQUIRE(*d);
    check_same_message(**d, *m);
    CHECK((*d)->publish.props.user_properties.size() == 3);
    CHECK((*d)->publish.props.user_properties[1].value == "def");
    CHECK((*d)->stored == nullptr);
}

TEST_CASE("records: a decoded message owns its bytes (its views outlive the value)",
          "[store][records]") {
    auto value = store::encode_message(*full_message(), wall_now);
    auto d = decode_message(value, wall_now, now);
    REQUIRE(d);
    std::fill(value.begin(), value.end(), 'X');
    value = std::string();
    check_same_message(**d, *full_message());
}

TEST_CASE("records: a message's age counts across the downtime, so Message Expiry does "
          "[MQTT-3.3.2-5]",
          "[store][records][v5]") {
    const auto m = full_message();
    SECTION("received 5 s before the encode, decoded 1 h later: 1 h 5 s old") {
        const auto value = store::encode_message(*m, wall_now - 5s);
        const auto d = decode_message(value, wall_now + 1h, now);
        REQUIRE(d);
        CHECK(now - (*d)->received_at == std::chrono::steady_clock::duration(1h + 5s));
    }
    SECTION("milliseconds survive") {
        const auto value = store::encode_message(*m, wall_now - 1234ms);
        const auto d = decode_message(value, wall_now, now);
        REQUIRE(d);
        CHECK(now - (*d)->received_at == std::chrono::steady_clock::duration(1234ms));
    }
    SECTION("a clock that went back: never received in the future") {
        const auto value = store::encode_message(*m, wall_now + 10min);
        const auto d = decode_message(value, wall_now, now);
        REQUIRE(d);
        CHECK((*d)->received_at == now);
    }
}

TEST_CASE("records: a time no clock can hold, a Topic Alias or a Subscription Identifier in a "
          "record is refused (found by fuzz_store_records: the time overflowed)",
          "[store][records]") {
    const auto m = broker::make_owned_message("a/b", "x", protocol::qos::at_least_once, false, now);
    auto value = store::encode_message(*m, wall_now);
    REQUIRE(decode_message(value, wall_now, now));
    SECTION("received in the year 10^7") {
        value.replace(1, 8, std::string(8, '\x7f'));
        CHECK_FALSE(decode_message(value, wall_now, now));
    }
    SECTION("a session offline since a time past the clock's range") {
        broker::stored_session st;
        st.client_id = "c";
        st.key = 1;
        st.offline_since = wall_now;
        auto session = store::encode_session(st, wall_now);
        REQUIRE(decode_session(session));
        session.replace(14, 8, std::string(8, '\xff'));
        CHECK_FALSE(decode_session(session));
    }
    SECTION("a PUBLISH with a Topic Alias and no topic") {
        auto aliased = std::const_pointer_cast<broker::message>(
            broker::make_owned_message("", "x", protocol::qos::at_least_once, false, now));
        aliased->publish.props.topic_alias = 1;
        // encode_message drops the alias, leaving no topic: not a message the broker keeps.
        CHECK_FALSE(decode_message(store::encode_message(*aliased, wall_now), wall_now, now));
    }
}

TEST_CASE("records: QoS 0, 1 and 2 messages, with empty, large and 3.1.1-style payloads",
          "[store][records]") {
    const std::string large(70000, '\x5A'); // over 65535: the remaining length takes 3 bytes
    for (const auto qos :
         {protocol::qos::at_most_once, protocol::qos::at_least_once, protocol::qos::exactly_once}) {
        for (const bool retain : {false, true}) {
            for (const std::string_view payload :
                 {std::string_view(), std::string_view(large), std::string_view("21.5")}) {
                const auto m = broker::make_owned_message("a/b", payload, qos, retain, now);
                const auto d = decode_message(store::encode_message(*m, wall_now), wall_now, now);
                INFO("qos " << static_cast<int>(qos) << " retain " << retain << " payload "
                            << payload.size());
                REQUIRE(d);
                check_same_message(**d, *m);
                CHECK((*d)->publish.props.empty());
            }
        }
    }
}

TEST_CASE("records: a message value cut short at any length, with trailing bytes, of a newer "
          "format or not a PUBLISH is refused",
          "[store][records]") {
    const auto decodes = [](std::string_view v) {
        return decode_message(v, wall_now, now).has_value();
    };
    const auto value = store::encode_message(*full_message(), wall_now);
    REQUIRE(decodes(value));
    CHECK(accepted_truncations(value, decodes).empty());
    CHECK_FALSE(decodes(value + '\0'));
    CHECK_FALSE(decodes(with_format(value, store::record_format + 1)));
    CHECK_FALSE(decodes(with_format(value, 0)));
    // A PUBACK where the PUBLISH should be.
    CHECK_FALSE(decodes(value.substr(0, 9) + std::string("\x40\x02\x00\x01", 4)));
    // A PUBLISH whose QoS bits say 3 (malformed [MQTT-3.3.1-4]).
    auto bad_qos = value;
    bad_qos[9] = static_cast<char>(static_cast<std::uint8_t>(bad_qos[9]) | 0x06U);
    CHECK_FALSE(decodes(bad_qos));
    // A PUBLISH whose topic length points past the end.
    auto bad_topic = value;
    bad_topic[bad_topic.find("plant") - 2] = '\x7F';
    CHECK_FALSE(decodes(bad_topic));
}

// ---------------------------------------------------------------------------------------------
// sessions

TEST_CASE("records: a session with a will round trips (key, expiry, version, offline since, "
          "will delay, the will and its properties)",
          "[store][records][v5]") {
    const auto will = full_message("gone");
    broker::stored_session s;
    s.client_id = "device-7";
    s.key = 0x1122334455667788ULL;
    s.expiry_interval = 0xFFFFFFFF;
    s.version = protocol::protocol_version::v5;
    s.will = will.get();
    s.will_delay = 30;
    s.offline_since = wall_now - 2h;
    const auto value = store::encode_session(s, wall_now - 10s);
    const auto r = decode_session(value);
    REQUIRE(r);
    CHECK(r->key == s.key);
    CHECK(r->expiry_interval == 0xFFFFFFFF);
    CHECK(r->version == protocol::protocol_version::v5);
    CHECK(r->offline_since == s.offline_since);
    CHECK(r->will_delay == 30);
    REQUIRE_FALSE(r->will.empty());
    const auto w = decode_message(r->will, wall_now, now);
    REQUIRE(w);
    check_same_message(**w, *will);
    // The will's age counts from the encode (its publication), not from the CONNECT
    // [MQTT-3.1.3-15].
    CHECK(now - (*w)->received_at == std::chrono::steady_clock::duration(10s));
}

TEST_CASE("records: sessions without a will, connected (no offline time), of each protocol "
          "version",
          "[store][records]") {
    for (const auto version : {protocol::protocol_version::v3_1, protocol::protocol_version::v3_1_1,
                               protocol::protocol_version::v5}) {
        broker::stored_session s;
        s.client_id = "c";
        s.key = 1;
        s.expiry_interval = 0;
        s.version = version;
        const auto r = decode_session(store::encode_session(s, wall_now));
        REQUIRE(r);
        CHECK(r->key == 1);
        CHECK(r->expiry_interval == 0);
        CHECK(r->version == version);
        CHECK(r->offline_since.time_since_epoch().count() == 0);
        CHECK(r->will_delay == 0);
        CHECK(r->will.empty());
    }
}

TEST_CASE("records: a session value cut short, of a newer format or an unknown protocol "
          "version is refused",
          "[store][records]") {
    broker::stored_session s;
    s.client_id = "c";
    s.key = 9;
    s.expiry_interval = 60;
    s.version = protocol::protocol_version::v3_1_1;
    s.offline_since = wall_now;
    const auto value = store::encode_session(s, wall_now);
    REQUIRE(decode_session(value));
    CHECK(accepted_truncations(value, [](std::string_view v) {
              return decode_session(v).has_value();
          }).empty());
    CHECK_FALSE(decode_session(with_format(value, store::record_format + 1)));
    CHECK_FALSE(decode_session(with_format(value, 0)));
    auto bad_version = value;
    bad_version[13] = '\x06'; // format 1 + key 8 + expiry 4: the version byte
    CHECK_FALSE(decode_session(bad_version));
    bad_version[13] = '\x02';
    CHECK_FALSE(decode_session(bad_version));
}

TEST_CASE("records: a session value with a will cut short at any length is refused",
          "[store][records][v5]") {
    // Cut inside the will, the session record itself may still parse (the will is the rest
    // of the value); its will must not, or the broker would publish half a will.
    const auto will = full_message("gone");
    broker::stored_session s;
    s.client_id = "c";
    s.key = 9;
    s.version = protocol::protocol_version::v5;
    s.will = will.get();
    const auto value = store::encode_session(s, wall_now);
    const auto whole = [](std::string_view v) {
        const auto r = decode_session(v);
        return r && !r->will.empty() && decode_message(r->will, wall_now, now).has_value();
    };
    REQUIRE(whole(value));
    CHECK(accepted_truncations(value, whole).empty());
}

TEST_CASE("records: a session value with a will cut exactly where the will starts is refused",
          "[store][records][v5][!shouldfail]") {
    // KNOWN BUG (reported, not fixed here): the will is the unframed rest of a session value,
    // so a value cut at the end of its fixed part reads back as a valid session without a
    // will; the will is lost silently instead of the record being refused as corrupt.
    // Remove [!shouldfail] once the format frames the will (a length or a flag).
    const auto will = full_message("gone");
    broker::stored_session s;
    s.client_id = "c";
    s.key = 9;
    s.version = protocol::protocol_version::v5;
    s.will = will.get();
    const auto value = store::encode_session(s, wall_now);
    const auto fixed = value.size() - store::encode_message(*will, wall_now).size();
    CHECK_FALSE(decode_session(std::string_view(value).substr(0, fixed)));
}

// ---------------------------------------------------------------------------------------------
// subscriptions

TEST_CASE("records: a subscription round trips with every option combination, identifier and "
          "share weight [MQTT-3.8.3.1]",
          "[store][records][v5]") {
    std::size_t combinations = 0;
    for (const auto qos :
         {protocol::qos::at_most_once, protocol::qos::at_least_once, protocol::qos::exactly_once}) {
        for (const bool no_local : {false, true}) {
            for (const bool rap : {false, true}) {
                for (const auto rh : {protocol::retain_handling::send_on_subscribe,
                                      protocol::retain_handling::send_if_new_subscription,
                                      protocol::retain_handling::do_not_send}) {
                    for (const std::uint32_t id : {0U, 1U, 268435455U}) {
                        for (const std::uint32_t weight : {1U, 7U, 0xFFFFFFFFU}) {
                            broker::subscription s;
                            s.hash_skips_parent = weight == 7U; // bit 4 of the flags
                            s.options.qos = qos;
                            s.options.no_local = no_local;
                            s.options.retain_as_published = rap;
                            s.options.retain_handling = rh;
                            s.identifier = id;
                            s.weight = weight;
                            const auto value = store::encode_subscription(s);
                            const auto d = decode_subscription(value);
                            REQUIRE(d);
                            CHECK(*d == s);
                            ++combinations;
                        }
                    }
                }
            }
        }
    }
    CHECK(combinations == 3 * 2 * 2 * 3 * 3 * 3);
}

TEST_CASE("records: a subscription value cut short, too long, of a newer format or with "
          "impossible options is refused",
          "[store][records]") {
    broker::subscription s;
    s.options.qos = protocol::qos::exactly_once;
    s.options.retain_handling = protocol::retain_handling::do_not_send;
    s.identifier = 5;
    const auto value = store::encode_subscription(s);
    REQUIRE(decode_subscription(value));
    CHECK(accepted_truncations(value, [](std::string_view v) {
              return decode_subscription(v).has_value();
          }).empty());
    CHECK_FALSE(decode_subscription(value + '\0'));
    CHECK_FALSE(decode_subscription(with_format(value, store::record_format + 1)));
    auto v = value;
    v[1] = '\x03'; // QoS 3 [MQTT-3.8.3-4]
    CHECK_FALSE(decode_subscription(v));
    v = value;
    v[2] = '\x0C'; // Retain Handling 3 [MQTT-3.8.3-4]
    CHECK_FALSE(decode_subscription(v));
    v = value;
    v[2] = static_cast<char>(v[2] | 0x20); // a flag bit no format-2 writer sets
    CHECK_FALSE(decode_subscription(v));
    v = value;
    v[2] = '\x40'; // a reserved bit
    CHECK_FALSE(decode_subscription(v));
    v = value;
    std::fill(v.end() - 4, v.end(), '\0'); // weight 0: a member that never receives
    CHECK_FALSE(decode_subscription(v));
}

// ---------------------------------------------------------------------------------------------
// deliveries

TEST_CASE("records: a delivery round trips (QoS, RETAIN, packet id, released, subscription "
          "identifiers in order)",
          "[store][records][v5]") {
    std::vector<broker::stored_delivery> cases;
    for (const auto qos : {protocol::qos::at_least_once, protocol::qos::exactly_once}) {
        for (const bool retain : {false, true}) {
            for (const std::uint16_t pid : {std::uint16_t{0}, std::uint16_t{1},
                                            std::uint16_t{0x1234}, std::uint16_t{65535}}) {
                for (const auto& ids : {std::vector<std::uint32_t>{}, std::vector<std::uint32_t>{1},
                                        std::vector<std::uint32_t>{268435455, 1, 42, 42}}) {
                    broker::stored_delivery d;
                    d.qos = qos;
                    d.retain = retain;
                    d.packet_id = pid;
                    d.subscription_ids = ids;
                    cases.push_back(d);
                    if (qos == protocol::qos::exactly_once && pid != 0) {
                        d.released = true; // PUBREC received: PUBREL is what a resume resends
                        cases.push_back(d);
                    }
                }
            }
        }
    }
    for (const auto& d : cases) {
        const auto got = decode_delivery(store::encode_delivery(d));
        REQUIRE(got);
        CHECK(same_delivery(*got, d));
    }
}

TEST_CASE("records: a delivery keeps at most 255 subscription identifiers", "[store][records]") {
    broker::stored_delivery d;
    for (std::uint32_t i = 1; i <= 300; ++i) {
        d.subscription_ids.push_back(i);
    }
    const auto got = decode_delivery(store::encode_delivery(d));
    REQUIRE(got);
    REQUIRE(got->subscription_ids.size() == 255);
    CHECK(got->subscription_ids.front() == 1);
    CHECK(got->subscription_ids.back() == 255);
}

TEST_CASE("records: a delivery value cut short, too long, of a newer format or in an "
          "impossible state is refused",
          "[store][records]") {
    broker::stored_delivery d;
    d.qos = protocol::qos::exactly_once;
    d.packet_id = 7;
    d.released = true;
    d.subscription_ids = {3, 4};
    const auto value = store::encode_delivery(d);
    REQUIRE(decode_delivery(value));
    CHECK(accepted_truncations(value, [](std::string_view v) {
              return decode_delivery(v).has_value();
          }).empty());
    CHECK_FALSE(decode_delivery(value + '\0'));
    CHECK_FALSE(decode_delivery(with_format(value, store::record_format + 1)));
    auto v = value;
    v[1] = '\x00'; // QoS 0 is never stored
    CHECK_FALSE(decode_delivery(v));
    v[1] = '\x03';
    CHECK_FALSE(decode_delivery(v));
    v = value;
    v[1] = '\x01'; // released is a QoS 2 state [MQTT-4.3.3]
    CHECK_FALSE(decode_delivery(v));
    v = value;
    v[3] = '\0';
    v[4] = '\0'; // released, but never sent under a packet id
    CHECK_FALSE(decode_delivery(v));
    v = value;
    v[5] = '\x03'; // three identifiers announced, two present
    CHECK_FALSE(decode_delivery(v));
}
