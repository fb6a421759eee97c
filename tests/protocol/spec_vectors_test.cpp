// Byte-exact vectors written by hand from the MQTT 3.1.1 and 5.0 specifications (never produced
// by our encoder). Each must decode to the expected struct and the struct must encode to exactly
// these bytes. Properties are written in ascending identifier order, the canonical order.

#include "test_support.hpp"

namespace tern::protocol::test {
namespace {

using namespace std::literals;

void check_exact(const bytes& wire, protocol_version v, const packet& expected) {
    INFO("expected: " << describe(expected));
    INFO("wire:     " << to_hex(wire));
    auto decoded = decode_one(wire, opts(v));
    REQUIRE(decoded.has_value());
    CHECK(decoded->packet == expected);

    auto encoded = encode_to_vector(expected, v);
    REQUIRE(encoded.has_value());
    INFO("encoded:  " << to_hex(*encoded));
    CHECK(*encoded == wire);
    auto size = encoded_size(expected, v);
    REQUIRE(size.has_value());
    CHECK(*size == wire.size());
}

TEST_CASE("3.1.1 CONNECT with will, user name and password [MQTT-3.1.2-3] [MQTT-3.1.2-9] "
          "[MQTT-3.1.2-14] [MQTT-3.1.2-18] [MQTT-3.1.2-20]",
          "[protocol][vectors][MQTT-3.1.2-3][MQTT-3.1.3-1]") {
    // MQTT 3.1.1 section 3.1: Protocol Name, Level 4, Connect Flags, Keep Alive; payload in the
    // order Client Identifier, Will Topic, Will Message, User Name, Password [MQTT-3.1.3-1].
    const bytes wire = hex("10 38"             // CONNECT, RL 56
                           "00 04 4d 51 54 54" // "MQTT" [3.1.2.1]
                           "04"                // level 4 [3.1.2.2]
                           "ee"    // user, password, will retain, will QoS 1, will, clean
                           "00 1e" // keep alive 30 [3.1.2.10]
                           "00 06 74 65 72 6e 2d 31"                   // client id "tern-1"
                           "00 0c 64 65 76 2f 31 2f 73 74 61 74 75 73" // will topic "dev/1/status"
                           "00 07 6f 66 66 6c 69 6e 65"                // will message "offline"
                           "00 05 61 6c 69 63 65"                      // user name "alice"
                           "00 06 73 33 63 72 65 74");                 // password "s3cret"
    connect c;
    c.version = protocol_version::v3_1_1;
    c.clean_start = true;
    c.keep_alive = 30;
    c.client_id = "tern-1";
    c.will = will_message{"dev/1/status", "offline", qos::at_least_once, true, {}};
    c.username = "alice";
    c.password = "s3cret";
    check_exact(wire, protocol_version::v3_1_1, c);
}

TEST_CASE("3.1.1 CONNECT minimal: clean session, empty client id [MQTT-3.1.3-6]",
          "[protocol][vectors][MQTT-3.1.3-6]") {
    const bytes wire = hex("10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00");
    connect c;
    c.version = protocol_version::v3_1_1;
    c.clean_start = true;
    c.keep_alive = 60;
    c.client_id = "";
    check_exact(wire, protocol_version::v3_1_1, c);
}

TEST_CASE("5.0 CONNECT with properties, will properties, user name and password "
          "[MQTT-3.1.2.11] [MQTT-3.1.3.2]",
          "[protocol][vectors][v5][MQTT-3.1.2-3][MQTT-3.1.3-1]") {
    // MQTT 5 section 3.1: variable header = Protocol Name, Level 5, Connect Flags, Keep Alive,
    // Properties; payload = Client Identifier, Will Properties, Will Topic, Will Payload,
    // User Name, Password.
    const bytes wire = hex("10 4e"                // CONNECT, RL 78
                           "00 04 4d 51 54 54"    // "MQTT"
                           "05"                   // level 5
                           "d6"                   // user, password, will QoS 2, will, clean start
                           "00 3c"                // keep alive 60
                           "12"                   // property length 18
                           "11 00 00 00 78"       //   Session Expiry Interval 120
                           "21 00 14"             //   Receive Maximum 20
                           "22 00 0a"             //   Topic Alias Maximum 10
                           "26 00 01 6b 00 01 76" //   User Property "k" = "v"
                           "00 04 63 6c 69 31"    // client id "cli1"
                           "14"                   // will property length 20
                           "01 01"                //   Payload Format Indicator 1
                           "03 00 0a 74 65 78 74 2f 70 6c 61 69 6e" // Content Type "text/plain"
                           "18 00 00 00 05"                         //   Will Delay Interval 5
                           "00 03 6c 77 74"                         // will topic "lwt"
                           "00 04 67 6f 6e 65"                      // will payload "gone"
                           "00 04 75 73 65 72"                      // user name "user"
                           "00 03 01 02 03");                       // password 01 02 03
    connect c;
    c.version = protocol_version::v5;
    c.clean_start = true;
    c.keep_alive = 60;
    c.client_id = "cli1";
    c.props.session_expiry_interval = 120;
    c.props.receive_maximum = 20;
    c.props.topic_alias_maximum = 10;
    c.props.user_properties = {{"k", "v"}};
    will_message w;
    w.topic = "lwt";
    w.payload = "gone";
    w.qos = qos::exactly_once;
    w.retain = false;
    w.props.payload_format_indicator = 1;
    w.props.content_type = "text/plain";
    w.props.will_delay_interval = 5;
    c.will = w;
    c.username = "user";
    c.password = "\x01\x02\x03"sv;
    check_exact(wire, protocol_version::v5, c);
}

TEST_CASE("5.0 CONNECT variable header example of section 3.1.2.12", "[protocol][vectors][v5]") {
    // Figure 3-6 of MQTT 5: flags C2 (user name, password, clean start), keep alive 10,
    // properties 05 11 00 00 00 0A (Session Expiry Interval 10).
    const bytes wire = hex("10 19 00 04 4d 51 54 54 05 c2 00 0a 05 11 00 00 00 0a"
                           "00 01 63 00 01 75 00 01 70");
    connect c;
    c.version = protocol_version::v5;
    c.clean_start = true;
    c.keep_alive = 10;
    c.client_id = "c";
    c.props.session_expiry_interval = 10;
    c.username = "u";
    c.password = "p";
    check_exact(wire, protocol_version::v5, c);
}

TEST_CASE("3.1.1 and 5.0 CONNACK [MQTT-3.2.2-1]", "[protocol][vectors][MQTT-3.2.2-1]") {
    // 3.1.1: acknowledge flags (bit 0 = session present) + return code.
    check_exact(hex("20 02 01 00"), protocol_version::v3_1_1,
                connack{true, reason_code::success, {}});
    check_exact(hex("20 02 00 05"), protocol_version::v3_1_1,
                connack{false, reason_code::not_authorized, {}});
    // 5.0: flags, reason code, properties (Receive Maximum 10, Maximum QoS 1).
    connack a{false, reason_code::success, {}};
    a.props.receive_maximum = 10;
    a.props.maximum_qos = 1;
    check_exact(hex("20 08 00 00 05 21 00 0a 24 01"), protocol_version::v5, a);
}

TEST_CASE("PUBLISH QoS 0 [MQTT-3.3.1-1] [MQTT-3.3.2-1]", "[protocol][vectors][MQTT-3.3.2-1]") {
    // No packet identifier at QoS 0 [MQTT-2.2.1-2]; the payload is the rest of the packet.
    const publish p{"a/b", "hi", qos::at_most_once, false, false, 0, {}};
    check_exact(hex("30 07 00 03 61 2f 62 68 69"), protocol_version::v3_1_1, p);
    // 5.0 adds a property length, here 0 [MQTT-3.3.2.3].
    check_exact(hex("30 08 00 03 61 2f 62 00 68 69"), protocol_version::v5, p);
    // Retained, empty payload.
    const publish r{"a/b", "", qos::at_most_once, true, false, 0, {}};
    check_exact(hex("31 05 00 03 61 2f 62"), protocol_version::v3_1_1, r);
}

TEST_CASE("PUBLISH QoS 1 [MQTT-2.2.1-3]", "[protocol][vectors][MQTT-2.2.1-3]") {
    const publish p{"a/b", "hi", qos::at_least_once, false, false, 10, {}};
    check_exact(hex("32 09 00 03 61 2f 62 00 0a 68 69"), protocol_version::v3_1_1, p);
}

TEST_CASE("5.0 PUBLISH QoS 1, DUP, retain, with every kind of property [MQTT-3.3.2.3]",
          "[protocol][vectors][v5][MQTT-3.3.1-1]") {
    const bytes wire = hex("3b 3d"                   // PUBLISH DUP QoS 1 RETAIN, RL 61
                           "00 03 61 2f 62"          // topic "a/b"
                           "00 0a"                   // packet identifier 10
                           "31"                      // property length 49
                           "01 01"                   //   Payload Format Indicator 1
                           "02 00 00 0e 10"          //   Message Expiry Interval 3600
                           "03 00 04 74 65 78 74"    //   Content Type "text"
                           "08 00 05 72 65 70 6c 79" //   Response Topic "reply"
                           "09 00 02 be ef"          //   Correlation Data BE EF
                           "0b 05"                   //   Subscription Identifier 5
                           "0b 80 01"                //   Subscription Identifier 128
                           "23 00 07"                //   Topic Alias 7
                           "26 00 01 61 00 01 62"    //   User Property "a" = "b"
                           "26 00 01 61 00 01 63"    //   User Property "a" = "c"
                           "32 31 2e 35");           // payload "21.5"
    publish p;
    p.topic = "a/b";
    p.payload = "21.5";
    p.qos = qos::at_least_once;
    p.dup = true;
    p.retain = true;
    p.packet_id = 10;
    p.props.payload_format_indicator = 1;
    p.props.message_expiry_interval = 3600;
    p.props.content_type = "text";
    p.props.response_topic = "reply";
    p.props.correlation_data = "\xbe\xef"sv;
    p.props.subscription_identifiers = {5, 128};
    p.props.topic_alias = 7;
    p.props.user_properties = {{"a", "b"}, {"a", "c"}};
    check_exact(wire, protocol_version::v5, p);
}

TEST_CASE("3.1.1 SUBSCRIBE with two filters, example of section 3.8.3 [MQTT-3.8.1-1]",
          "[protocol][vectors][MQTT-3.8.1-1]") {
    // Fixed header flags 0b0010 [MQTT-3.8.1-1]; packet identifier 10; "a/b" QoS 1, "c/d" QoS 2.
    const bytes wire = hex("82 0e 00 0a 00 03 61 2f 62 01 00 03 63 2f 64 02");
    subscribe s;
    s.packet_id = 10;
    s.subscriptions = {{"a/b", {qos::at_least_once}}, {"c/d", {qos::exactly_once}}};
    check_exact(wire, protocol_version::v3_1_1, s);
}

TEST_CASE("5.0 SUBSCRIBE with subscription options and a shared filter [MQTT-3.8.3.1]",
          "[protocol][vectors][v5][MQTT-3.8.1-1]") {
    const bytes wire = hex("82 27"                // SUBSCRIBE, RL 39
                           "00 0b"                // packet identifier 11
                           "09"                   // property length 9
                           "0b 2a"                //   Subscription Identifier 42
                           "26 00 01 6b 00 01 76" //   User Property "k" = "v"
                           "00 03 61 2f 62"       // "a/b"
                           "1d"                   //   QoS 1, No Local, RAP, Retain Handling 1
                           "00 0c 24 73 68 61 72 65 2f 67 2f 63 2f 23" // "$share/g/c/#"
                           "22"                                        //   QoS 2, Retain Handling 2
                           "00 03 2b 2f 78"                            // "+/x"
                           "00");                                      //   QoS 0, all options off
    subscribe s;
    s.packet_id = 11;
    s.props.subscription_identifiers = {42};
    s.props.user_properties = {{"k", "v"}};
    s.subscriptions = {
        {"a/b", {qos::at_least_once, true, true, retain_handling::send_if_new_subscription}},
        {"$share/g/c/#", {qos::exactly_once, false, false, retain_handling::do_not_send}},
        {"+/x", {qos::at_most_once, false, false, retain_handling::send_on_subscribe}},
    };
    check_exact(wire, protocol_version::v5, s);
}

TEST_CASE("3.1.1 SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT",
          "[protocol][vectors][MQTT-3.10.1-1]") {
    check_exact(hex("90 06 00 0a 00 01 02 80"), protocol_version::v3_1_1,
                suback{10,
                       {reason_code::granted_qos_0, reason_code::granted_qos_1,
                        reason_code::granted_qos_2, reason_code::unspecified_error},
                       {}});
    check_exact(hex("a2 0c 00 0a 00 03 61 2f 62 00 03 63 2f 64"), protocol_version::v3_1_1,
                unsubscribe{10, {"a/b", "c/d"}, {}});
    check_exact(hex("b0 02 00 0a"), protocol_version::v3_1_1, unsuback{10, {}, {}});
    check_exact(hex("40 02 00 0a"), protocol_version::v3_1_1, puback{10, reason_code::success, {}});
    check_exact(hex("50 02 00 0a"), protocol_version::v3_1_1, pubrec{10, reason_code::success, {}});
    check_exact(hex("62 02 00 0a"), protocol_version::v3_1_1, pubrel{10, reason_code::success, {}});
    check_exact(hex("70 02 00 0a"), protocol_version::v3_1_1,
                pubcomp{10, reason_code::success, {}});
    check_exact(hex("c0 00"), protocol_version::v3_1_1, pingreq{});
    check_exact(hex("d0 00"), protocol_version::v3_1_1, pingresp{});
    check_exact(hex("e0 00"), protocol_version::v3_1_1, disconnect{});
}

TEST_CASE("5.0 SUBACK, UNSUBACK, DISCONNECT and AUTH with reason codes and properties",
          "[protocol][vectors][v5]") {
    check_exact(hex("90 07 00 0a 00 01 02 87 00"), protocol_version::v5,
                suback{10,
                       {reason_code::granted_qos_1, reason_code::granted_qos_2,
                        reason_code::not_authorized, reason_code::granted_qos_0},
                       {}});
    check_exact(hex("b0 05 00 0a 00 00 11"), protocol_version::v5,
                unsuback{10, {reason_code::success, reason_code::no_subscription_existed}, {}});
    disconnect d{reason_code::server_shutting_down, {}};
    d.props.reason_string = "ok";
    check_exact(hex("e0 07 8b 05 1f 00 02 6f 6b"), protocol_version::v5, d);
    auth a{reason_code::continue_authentication, {}};
    a.props.authentication_method = "m";
    a.props.authentication_data = "\x01"sv;
    check_exact(hex("f0 0a 18 08 15 00 01 6d 16 00 01 01"), protocol_version::v5, a);
    puback pa{10, reason_code::unspecified_error, {}};
    pa.props.reason_string = "x";
    check_exact(hex("40 08 00 0a 80 04 1f 00 01 78"), protocol_version::v5, pa);
}

} // namespace
} // namespace tern::protocol::test
