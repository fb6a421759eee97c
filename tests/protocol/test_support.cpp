#include "test_support.hpp"

#include <sstream>
#include <stdexcept>

namespace tern::protocol::test {

using namespace std::literals;

bytes hex(std::string_view text) {
    bytes out;
    int high = -1;
    for (char c : text) {
        int v = -1;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;
        } else if (c == ' ' || c == '\n' || c == '\t' || c == '|' || c == '_') {
            continue;
        } else {
            throw std::invalid_argument("bad hex character in test vector");
        }
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(high * 16 + v));
            high = -1;
        }
    }
    if (high >= 0) {
        throw std::invalid_argument("odd number of hex digits in test vector");
    }
    return out;
}

std::string to_hex(std::span<const std::uint8_t> data) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < data.size(); ++i) {
        if (i != 0) {
            out += ' ';
        }
        out += digits[data[i] >> 4];
        out += digits[data[i] & 0xF];
    }
    return out;
}

bytes u8(std::uint8_t v) {
    return {v};
}

bytes u16(std::uint16_t v) {
    return {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v & 0xFF)};
}

bytes u32(std::uint32_t v) {
    return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>((v >> 16) & 0xFF),
            static_cast<std::uint8_t>((v >> 8) & 0xFF), static_cast<std::uint8_t>(v & 0xFF)};
}

bytes vbi(std::uint32_t v) {
    bytes out;
    do {
        auto b = static_cast<std::uint8_t>(v % 128);
        v /= 128;
        if (v != 0) {
            b = static_cast<std::uint8_t>(b | 0x80);
        }
        out.push_back(b);
    } while (v != 0);
    return out;
}

bytes raw(std::string_view s) {
    return bytes(s.begin(), s.end());
}

bytes str(std::string_view s) {
    return cat({u16(static_cast<std::uint16_t>(s.size())), raw(s)});
}

bytes cat(std::initializer_list<bytes> parts) {
    bytes out;
    for (const auto& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

bytes props(std::initializer_list<bytes> items) {
    bytes body = cat(items);
    return cat({vbi(static_cast<std::uint32_t>(body.size())), body});
}

bytes frame(std::uint8_t first_byte, const bytes& body) {
    return cat({u8(first_byte), vbi(static_cast<std::uint32_t>(body.size())), body});
}

decode_options opts(protocol_version v, receiver_role role) {
    decode_options o;
    o.version = v;
    o.role = role;
    return o;
}

boost::system::result<received_packet> decode_one(const bytes& in, const decode_options& o) {
    auto r = decode(in, o);
    if (!r) {
        return r.error();
    }
    CHECK(r->consumed == in.size());
    return std::move(r->packet);
}

boost::system::error_code decode_error(const bytes& in, const decode_options& o) {
    auto r = decode(in, o);
    if (r) {
        return {};
    }
    return r.error();
}

boost::system::error_code stream_error(const bytes& in, const decode_options& o) {
    stream_decoder dec(o);
    std::span<const std::uint8_t> input(in);
    for (int guard = 0; guard < 1000; ++guard) {
        auto r = dec.next(input);
        if (!r) {
            if (r.error() == codec_error::need_more && !dec.mid_packet()) {
                return {};
            }
            return r.error();
        }
    }
    FAIL("stream_decoder did not stop");
    return {};
}

bytes encode_ok(const packet& p, protocol_version v) {
    auto r = encode_to_vector(p, v);
    INFO("packet: " << describe(p));
    INFO("version: " << static_cast<int>(v));
    REQUIRE(r.has_value());
    return std::move(*r);
}

namespace {

// Every user property appears twice with the same key to check that order and repetition
// survive [MQTT-3.1.3-10, MQTT-3.3.2-17 "the same name is allowed to appear more than once"].
std::vector<user_property> repeated_user_props() {
    return {{"key", "value-1"}, {"key", "value-2"}, {"ünï", "cødé"}, {"", ""}};
}

std::vector<packet> v5_samples() {
    std::vector<packet> out;

    // CONNECT with every CONNECT property [MQTT-3.1.2.11] and every Will property [MQTT-3.1.3.2].
    {
        connect c;
        c.version = protocol_version::v5;
        c.clean_start = false;
        c.keep_alive = 300;
        c.client_id = "client-ü-1";
        will_message w;
        w.topic = "clients/c1/status";
        w.payload = "off\0line\xff"sv;
        w.qos = qos::exactly_once;
        w.retain = true;
        w.props.payload_format_indicator = 1;
        w.props.message_expiry_interval = 3600;
        w.props.content_type = "text/plain";
        w.props.response_topic = "clients/c1/resp";
        w.props.correlation_data = "\x00\x01\xfe"sv;
        w.props.will_delay_interval = 30;
        w.props.user_properties = repeated_user_props();
        c.will = w;
        c.username = "user";
        c.password = "\0pw\xff"sv;
        c.props.session_expiry_interval = 0xFFFFFFFFu;
        c.props.receive_maximum = 100;
        c.props.maximum_packet_size = 1048576;
        c.props.topic_alias_maximum = 10;
        c.props.request_response_information = 1;
        c.props.request_problem_information = 0;
        c.props.user_properties = repeated_user_props();
        c.props.authentication_method = "SCRAM-SHA-1";
        c.props.authentication_data = "\x01\x02\x00"sv;
        out.emplace_back(c);
    }
    // Minimal CONNECT: empty client id, password without user name (allowed in v5 [3.1.2.9]).
    {
        connect c;
        c.version = protocol_version::v5;
        c.clean_start = true;
        c.keep_alive = 0;
        c.client_id = "";
        c.password = "secret";
        out.emplace_back(c);
    }
    // CONNACK with every CONNACK property [MQTT-3.2.2.3].
    {
        connack a;
        a.session_present = true;
        a.reason = reason_code::success;
        a.props.session_expiry_interval = 120;
        a.props.receive_maximum = 50;
        a.props.maximum_qos = 1;
        a.props.retain_available = 0;
        a.props.maximum_packet_size = 65536;
        a.props.assigned_client_identifier = "auto-0001";
        a.props.topic_alias_maximum = 5;
        a.props.reason_string = "welcome";
        a.props.user_properties = repeated_user_props();
        a.props.wildcard_subscription_available = 0;
        a.props.subscription_identifier_available = 1;
        a.props.shared_subscription_available = 0;
        a.props.server_keep_alive = 120;
        a.props.response_information = "resp/";
        a.props.server_reference = "other.example:1883";
        a.props.authentication_method = "SCRAM-SHA-1";
        a.props.authentication_data = "server-final"sv;
        out.emplace_back(a);
    }
    {
        connack a;
        a.reason = reason_code::bad_user_name_or_password;
        a.props.reason_string = "no";
        out.emplace_back(a);
    }
    // PUBLISH with every PUBLISH property [MQTT-3.3.2.3], several subscription identifiers
    // covering every Variable Byte Integer length [MQTT-3.3.4-4].
    {
        publish p;
        p.topic = "a/b/c";
        p.payload = "payload\0bytes"sv;
        p.qos = qos::at_least_once;
        p.retain = true;
        p.dup = true;
        p.packet_id = 7;
        p.props.payload_format_indicator = 0;
        p.props.message_expiry_interval = 60;
        p.props.content_type = "application/json";
        p.props.response_topic = "reply/to";
        p.props.correlation_data = "\x00\x01"sv;
        p.props.subscription_identifiers = {1,     127,     128,     16383,
                                            16384, 2097151, 2097152, max_subscription_identifier};
        p.props.topic_alias = 3;
        p.props.user_properties = repeated_user_props();
        out.emplace_back(p);
    }
    // Empty topic with a Topic Alias [MQTT-3.3.2.3.4], empty payload.
    {
        publish p;
        p.topic = "";
        p.payload = "";
        p.props.topic_alias = 65535;
        out.emplace_back(p);
    }
    {
        publish p;
        p.topic = "$SYS/broker/uptime";
        p.payload = "42";
        p.qos = qos::exactly_once;
        p.packet_id = 65535;
        p.props.payload_format_indicator = 1;
        out.emplace_back(p);
    }
    // Acks with reason codes and their properties [MQTT-3.4.2.2 .. 3.7.2.2].
    {
        puback a;
        a.packet_id = 1;
        a.reason = reason_code::no_matching_subscribers;
        a.props.reason_string = "nobody";
        a.props.user_properties = repeated_user_props();
        out.emplace_back(a);
    }
    out.emplace_back(puback{2, reason_code::success, {}});
    out.emplace_back(puback{3, reason_code::payload_format_invalid, {}});
    {
        pubrec a;
        a.packet_id = 4;
        a.reason = reason_code::quota_exceeded;
        a.props.reason_string = "quota";
        a.props.user_properties = repeated_user_props();
        out.emplace_back(a);
    }
    out.emplace_back(pubrec{5, reason_code::success, {}});
    {
        pubrel a;
        a.packet_id = 6;
        a.reason = reason_code::packet_identifier_not_found;
        a.props.reason_string = "gone";
        a.props.user_properties = repeated_user_props();
        out.emplace_back(a);
    }
    out.emplace_back(pubrel{7, reason_code::success, {}});
    {
        pubcomp a;
        a.packet_id = 65535;
        a.reason = reason_code::success;
        a.props.reason_string = "done";
        a.props.user_properties = repeated_user_props();
        out.emplace_back(a);
    }
    out.emplace_back(pubcomp{9, reason_code::packet_identifier_not_found, {}});
    // SUBSCRIBE with every option combination that is valid, a shared subscription and a
    // Subscription Identifier [MQTT-3.8.2.1, MQTT-3.8.3.1].
    {
        subscribe s;
        s.packet_id = 10;
        s.subscriptions = {
            {"a/+/c", {qos::at_least_once, true, true, retain_handling::send_if_new_subscription}},
            {"$share/grp/x/#", {qos::exactly_once, false, false, retain_handling::do_not_send}},
            {"#", {}},
            {"+", {qos::at_most_once, false, true, retain_handling::send_on_subscribe}},
            {"sport/tennis/player1",
             {qos::exactly_once, true, false, retain_handling::do_not_send}},
        };
        s.props.subscription_identifiers = {max_subscription_identifier};
        s.props.user_properties = repeated_user_props();
        out.emplace_back(s);
    }
    {
        suback s;
        s.packet_id = 10;
        s.reasons = {reason_code::granted_qos_0,
                     reason_code::granted_qos_1,
                     reason_code::granted_qos_2,
                     reason_code::unspecified_error,
                     reason_code::implementation_specific_error,
                     reason_code::not_authorized,
                     reason_code::topic_filter_invalid,
                     reason_code::packet_identifier_in_use,
                     reason_code::quota_exceeded,
                     reason_code::shared_subscriptions_not_supported,
                     reason_code::subscription_identifiers_not_supported,
                     reason_code::wildcard_subscriptions_not_supported};
        s.props.reason_string = "mixed";
        s.props.user_properties = repeated_user_props();
        out.emplace_back(s);
    }
    {
        unsubscribe u;
        u.packet_id = 11;
        u.filters = {"a/+/c", "$share/grp/x/#", "#"};
        u.props.user_properties = repeated_user_props();
        out.emplace_back(u);
    }
    {
        unsuback u;
        u.packet_id = 11;
        u.reasons = {reason_code::success,
                     reason_code::no_subscription_existed,
                     reason_code::unspecified_error,
                     reason_code::implementation_specific_error,
                     reason_code::not_authorized,
                     reason_code::topic_filter_invalid,
                     reason_code::packet_identifier_in_use};
        u.props.reason_string = "mixed";
        u.props.user_properties = repeated_user_props();
        out.emplace_back(u);
    }
    out.emplace_back(pingreq{});
    out.emplace_back(pingresp{});
    // DISCONNECT with every DISCONNECT property [MQTT-3.14.2.2].
    {
        disconnect d;
        d.reason = reason_code::disconnect_with_will_message;
        d.props.session_expiry_interval = 0;
        d.props.reason_string = "bye";
        d.props.user_properties = repeated_user_props();
        d.props.server_reference = "other.example";
        out.emplace_back(d);
    }
    out.emplace_back(disconnect{});
    out.emplace_back(disconnect{reason_code::server_shutting_down, {}});
    // AUTH with every AUTH property [MQTT-3.15.2.2].
    {
        auth a;
        a.reason = reason_code::continue_authentication;
        a.props.authentication_method = "SCRAM-SHA-1";
        a.props.authentication_data = "\x00"
                                      "client-first"sv;
        a.props.reason_string = "step 1";
        a.props.user_properties = repeated_user_props();
        out.emplace_back(a);
    }
    // Remaining Length 0: Success without properties [MQTT-3.15.2.1].
    out.emplace_back(auth{});
    {
        auth a;
        a.reason = reason_code::re_authenticate;
        a.props.authentication_method = "SCRAM-SHA-1";
        out.emplace_back(a);
    }
    return out;
}

std::vector<packet> v3_samples(protocol_version v) {
    std::vector<packet> out;
    {
        connect c;
        c.version = v;
        c.clean_start = false;
        c.keep_alive = 65535;
        c.client_id = "client-1";
        will_message w;
        w.topic = "clients/c1/status";
        w.payload = "off\0line"sv;
        w.qos = qos::at_least_once;
        w.retain = true;
        c.will = w;
        c.username = "user";
        c.password = "\0pw\xff"sv;
        out.emplace_back(c);
    }
    {
        connect c;
        c.version = v;
        c.clean_start = true;
        c.keep_alive = 0;
        c.client_id = v == protocol_version::v3_1 ? "c" : "";
        c.username = "only-user";
        out.emplace_back(c);
    }
    {
        connect c;
        c.version = v;
        c.client_id = "w2";
        c.will = will_message{"t", "", qos::exactly_once, false, {}};
        out.emplace_back(c);
    }
    out.emplace_back(connack{true, reason_code::success, {}});
    out.emplace_back(connack{false, reason_code::not_authorized, {}});
    out.emplace_back(connack{false, reason_code::unsupported_protocol_version, {}});
    out.emplace_back(publish{"a/b/c", "hello", qos::at_most_once, false, false, 0, {}});
    out.emplace_back(publish{"a/b/c", "", qos::at_least_once, true, false, 1, {}});
    out.emplace_back(publish{"/", "x\0y"sv, qos::exactly_once, false, true, 65535, {}});
    out.emplace_back(publish{"$SYS/x", "1", qos::at_most_once, true, false, 0, {}});
    out.emplace_back(puback{1, reason_code::success, {}});
    out.emplace_back(pubrec{2, reason_code::success, {}});
    out.emplace_back(pubrel{3, reason_code::success, {}});
    out.emplace_back(pubcomp{65535, reason_code::success, {}});
    {
        subscribe s;
        s.packet_id = 10;
        s.subscriptions = {{"a/+/c", {qos::at_most_once}},
                           {"#", {qos::at_least_once}},
                           {"x/y", {qos::exactly_once}}};
        out.emplace_back(s);
    }
    {
        suback s;
        s.packet_id = 10;
        s.reasons = {reason_code::granted_qos_0, reason_code::granted_qos_1,
                     reason_code::granted_qos_2, reason_code::unspecified_error};
        out.emplace_back(s);
    }
    out.emplace_back(unsubscribe{11, {"a/+/c", "#"}, {}});
    out.emplace_back(unsuback{11, {}, {}});
    out.emplace_back(pingreq{});
    out.emplace_back(pingresp{});
    out.emplace_back(disconnect{});
    return out;
}

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out + "\"";
}

template <typename T>
void opt(std::ostringstream& os, const char* name, const std::optional<T>& v) {
    if (v) {
        if constexpr (std::is_same_v<T, std::string_view>) {
            os << ' ' << name << '=' << quote(*v);
        } else {
            os << ' ' << name << '=' << static_cast<std::uint64_t>(*v);
        }
    }
}

std::string rc(reason_code r) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(r));
    return buf;
}

} // namespace

std::vector<packet> sample_packets(protocol_version v) {
    if (v == protocol_version::v5) {
        return v5_samples();
    }
    return v3_samples(v);
}

std::string describe(const properties& p) {
    std::ostringstream os;
    os << '{';
    opt(os, "payload_format_indicator", p.payload_format_indicator);
    opt(os, "message_expiry_interval", p.message_expiry_interval);
    opt(os, "content_type", p.content_type);
    opt(os, "response_topic", p.response_topic);
    opt(os, "correlation_data", p.correlation_data);
    for (auto id : p.subscription_identifiers) {
        os << " subscription_identifier=" << id;
    }
    opt(os, "session_expiry_interval", p.session_expiry_interval);
    opt(os, "assigned_client_identifier", p.assigned_client_identifier);
    opt(os, "server_keep_alive", p.server_keep_alive);
    opt(os, "authentication_method", p.authentication_method);
    opt(os, "authentication_data", p.authentication_data);
    opt(os, "request_problem_information", p.request_problem_information);
    opt(os, "will_delay_interval", p.will_delay_interval);
    opt(os, "request_response_information", p.request_response_information);
    opt(os, "response_information", p.response_information);
    opt(os, "server_reference", p.server_reference);
    opt(os, "reason_string", p.reason_string);
    opt(os, "receive_maximum", p.receive_maximum);
    opt(os, "topic_alias_maximum", p.topic_alias_maximum);
    opt(os, "topic_alias", p.topic_alias);
    opt(os, "maximum_qos", p.maximum_qos);
    opt(os, "retain_available", p.retain_available);
    for (const auto& up : p.user_properties) {
        os << " user_property=" << quote(up.key) << ':' << quote(up.value);
    }
    opt(os, "maximum_packet_size", p.maximum_packet_size);
    opt(os, "wildcard_subscription_available", p.wildcard_subscription_available);
    opt(os, "subscription_identifier_available", p.subscription_identifier_available);
    opt(os, "shared_subscription_available", p.shared_subscription_available);
    os << " }";
    return os.str();
}

std::string describe(const packet& pkt) {
    std::ostringstream os;
    os << to_string(type_of(pkt));
    auto acks = [&](std::uint16_t id, reason_code r, const properties& p) {
        os << " id=" << id << " reason=" << rc(r) << " props=" << describe(p);
    };
    std::visit(
        [&](const auto& p) {
            using T = std::decay_t<decltype(p)>;
            if constexpr (std::is_same_v<T, connect>) {
                os << " level=" << static_cast<int>(p.version) << " clean=" << p.clean_start
                   << " keep_alive=" << p.keep_alive << " client_id=" << quote(p.client_id);
                if (p.will) {
                    os << " will={topic=" << quote(p.will->topic)
                       << " payload=" << quote(p.will->payload)
                       << " qos=" << static_cast<int>(p.will->qos) << " retain=" << p.will->retain
                       << " props=" << describe(p.will->props) << '}';
                }
                if (p.username) {
                    os << " username=" << quote(*p.username);
                }
                if (p.password) {
                    os << " password=" << quote(*p.password);
                }
                os << " props=" << describe(p.props);
            } else if constexpr (std::is_same_v<T, connack>) {
                os << " session_present=" << p.session_present << " reason=" << rc(p.reason)
                   << " props=" << describe(p.props);
            } else if constexpr (std::is_same_v<T, publish>) {
                os << " topic=" << quote(p.topic) << " qos=" << static_cast<int>(p.qos)
                   << " retain=" << p.retain << " dup=" << p.dup << " id=" << p.packet_id
                   << " payload(" << p.payload.size()
                   << ")=" << (p.payload.size() <= 64 ? quote(p.payload) : std::string("..."))
                   << " props=" << describe(p.props);
            } else if constexpr (std::is_same_v<T, puback> || std::is_same_v<T, pubrec> ||
                                 std::is_same_v<T, pubrel> || std::is_same_v<T, pubcomp>) {
                acks(p.packet_id, p.reason, p.props);
            } else if constexpr (std::is_same_v<T, subscribe>) {
                os << " id=" << p.packet_id;
                for (const auto& s : p.subscriptions) {
                    os << " [" << quote(s.filter) << " qos=" << static_cast<int>(s.options.qos)
                       << " nl=" << s.options.no_local << " rap=" << s.options.retain_as_published
                       << " rh=" << static_cast<int>(s.options.retain_handling) << ']';
                }
                os << " props=" << describe(p.props);
            } else if constexpr (std::is_same_v<T, suback> || std::is_same_v<T, unsuback>) {
                os << " id=" << p.packet_id << " reasons=";
                for (auto r : p.reasons) {
                    os << rc(r) << ',';
                }
                os << " props=" << describe(p.props);
            } else if constexpr (std::is_same_v<T, unsubscribe>) {
                os << " id=" << p.packet_id;
                for (auto f : p.filters) {
                    os << ' ' << quote(f);
                }
                os << " props=" << describe(p.props);
            } else if constexpr (std::is_same_v<T, disconnect> || std::is_same_v<T, auth>) {
                os << " reason=" << rc(p.reason) << " props=" << describe(p.props);
            }
        },
        pkt);
    return os.str();
}

} // namespace tern::protocol::test
