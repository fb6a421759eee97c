#include <tern/tools/packet_json.hpp>

#include <string>
#include <type_traits>
#include <variant>

#include <tern/protocol/error.hpp>
#include <tern/protocol/reason_code.hpp>
#include <tern/protocol/topic.hpp>

namespace tern::tools {

namespace {

using json = nlohmann::ordered_json;
namespace proto = tern::protocol;

std::string to_hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0x0F]);
    }
    return out;
}

json reasons_to_json(const std::vector<proto::reason_code>& reasons, proto::packet_type in) {
    json out = json::array();
    for (auto rc : reasons) {
        out.push_back(reason_to_json(rc, in));
    }
    return out;
}

template <class T> void put(json& j, const char* key, const std::optional<T>& v) {
    if (v) {
        j[key] = *v;
    }
}

void put_binary(json& j, const char* key, const std::optional<std::string_view>& v) {
    if (v) {
        j[key] = binary_to_json(*v);
    }
}

void put_props(json& j, const proto::properties& props, bool v5) {
    if (v5) {
        j["properties"] = properties_to_json(props);
    }
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

} // namespace

json binary_to_json(std::string_view bytes) {
    json j{{"size", bytes.size()}, {"hex", to_hex(bytes)}};
    if (proto::is_valid_utf8(bytes)) {
        j["text"] = std::string(bytes);
    }
    return j;
}

json reason_to_json(proto::reason_code rc) {
    return json{{"code", static_cast<unsigned>(rc)}, {"name", std::string(proto::to_string(rc))}};
}

json reason_to_json(proto::reason_code rc, proto::packet_type in) {
    // 0x00 has three names in MQTT 5 section 2.4; pick the one of the carrying packet.
    if (rc == proto::reason_code::success) {
        if (in == proto::packet_type::disconnect) {
            return json{{"code", 0}, {"name", "Normal disconnection"}};
        }
        if (in == proto::packet_type::suback) {
            return json{{"code", 0}, {"name", "Granted QoS 0"}};
        }
    }
    return reason_to_json(rc);
}

json properties_to_json(const proto::properties& p) {
    json j = json::object();
    put(j, "payload_format_indicator", p.payload_format_indicator);
    put(j, "message_expiry_interval", p.message_expiry_interval);
    put(j, "content_type", p.content_type);
    put(j, "response_topic", p.response_topic);
    put_binary(j, "correlation_data", p.correlation_data);
    if (!p.subscription_identifiers.empty()) {
        j["subscription_identifiers"] = p.subscription_identifiers;
    }
    put(j, "session_expiry_interval", p.session_expiry_interval);
    put(j, "assigned_client_identifier", p.assigned_client_identifier);
    put(j, "server_keep_alive", p.server_keep_alive);
    put(j, "authentication_method", p.authentication_method);
    put_binary(j, "authentication_data", p.authentication_data);
    put(j, "request_problem_information", p.request_problem_information);
    put(j, "will_delay_interval", p.will_delay_interval);
    put(j, "request_response_information", p.request_response_information);
    put(j, "response_information", p.response_information);
    put(j, "server_reference", p.server_reference);
    put(j, "reason_string", p.reason_string);
    put(j, "receive_maximum", p.receive_maximum);
    put(j, "topic_alias_maximum", p.topic_alias_maximum);
    put(j, "topic_alias", p.topic_alias);
    put(j, "maximum_qos", p.maximum_qos);
    put(j, "retain_available", p.retain_available);
    if (!p.user_properties.empty()) {
        json users = json::array();
        for (const auto& up : p.user_properties) {
            users.push_back(json::array({up.key, up.value}));
        }
        j["user_properties"] = std::move(users);
    }
    put(j, "maximum_packet_size", p.maximum_packet_size);
    put(j, "wildcard_subscription_available", p.wildcard_subscription_available);
    put(j, "subscription_identifier_available", p.subscription_identifier_available);
    put(j, "shared_subscription_available", p.shared_subscription_available);
    return j;
}

json packet_to_json(const proto::packet& packet, proto::protocol_version version) {
    json j;
    j["type"] = std::string(proto::to_string(proto::type_of(packet)));
    const bool v5 = version == proto::protocol_version::v5;
    std::visit(
        [&](const auto& p) {
            using T = std::decay_t<decltype(p)>;
            if constexpr (std::is_same_v<T, proto::connect>) {
                const bool c5 = p.version == proto::protocol_version::v5;
                j["protocol_level"] = static_cast<unsigned>(p.version);
                j["protocol_version"] = std::string(proto::to_string(p.version));
                j["clean_start"] = p.clean_start;
                j["keep_alive"] = p.keep_alive;
                j["client_id"] = p.client_id;
                if (p.will) {
                    json w{{"topic", p.will->topic},
                           {"payload", binary_to_json(p.will->payload)},
                           {"qos", static_cast<unsigned>(p.will->qos)},
                           {"retain", p.will->retain}};
                    put_props(w, p.will->props, c5);
                    j["will"] = std::move(w);
                } else {
                    j["will"] = nullptr;
                }
                j["username"] = p.username ? json(*p.username) : json(nullptr);
                j["password"] = p.password ? binary_to_json(*p.password) : json(nullptr);
                put_props(j, p.props, c5);
            } else if constexpr (std::is_same_v<T, proto::connack>) {
                j["session_present"] = p.session_present;
                j["reason"] = reason_to_json(p.reason, proto::type_of(packet));
                if (!v5) {
                    j["return_code"] = proto::to_v3_connack_return_code(p.reason);
                }
                put_props(j, p.props, v5);
            } else if constexpr (std::is_same_v<T, proto::publish>) {
                j["topic"] = p.topic;
                j["qos"] = static_cast<unsigned>(p.qos);
                j["retain"] = p.retain;
                j["dup"] = p.dup;
                j["packet_id"] = p.packet_id;
                j["payload"] = binary_to_json(p.payload);
                put_props(j, p.props, v5);
            } else if constexpr (std::is_same_v<T, proto::puback> ||
                                 std::is_same_v<T, proto::pubrec> ||
                                 std::is_same_v<T, proto::pubrel> ||
                                 std::is_same_v<T, proto::pubcomp>) {
                j["packet_id"] = p.packet_id;
                if (v5) {
                    j["reason"] = reason_to_json(p.reason, proto::type_of(packet));
                }
                put_props(j, p.props, v5);
            } else if constexpr (std::is_same_v<T, proto::subscribe>) {
                j["packet_id"] = p.packet_id;
                json subs = json::array();
                for (const auto& s : p.subscriptions) {
                    json sj{{"filter", s.filter}, {"qos", static_cast<unsigned>(s.options.qos)}};
                    if (v5) {
                        sj["no_local"] = s.options.no_local;
                        sj["retain_as_published"] = s.options.retain_as_published;
                        sj["retain_handling"] = static_cast<unsigned>(s.options.retain_handling);
                    }
                    subs.push_back(std::move(sj));
                }
                j["subscriptions"] = std::move(subs);
                put_props(j, p.props, v5);
            } else if constexpr (std::is_same_v<T, proto::suback> ||
                                 std::is_same_v<T, proto::unsuback>) {
                j["packet_id"] = p.packet_id;
                j["reasons"] = reasons_to_json(p.reasons, proto::type_of(packet));
                put_props(j, p.props, v5);
            } else if constexpr (std::is_same_v<T, proto::unsubscribe>) {
                j["packet_id"] = p.packet_id;
                j["filters"] = p.filters;
                put_props(j, p.props, v5);
            } else if constexpr (std::is_same_v<T, proto::disconnect> ||
                                 std::is_same_v<T, proto::auth>) {
                if (v5) {
                    j["reason"] = reason_to_json(p.reason, proto::type_of(packet));
                }
                put_props(j, p.props, v5);
            } else {
                static_assert(std::is_same_v<T, proto::pingreq> ||
                              std::is_same_v<T, proto::pingresp>);
            }
        },
        packet);
    return j;
}

std::string_view error_name(proto::codec_error e) noexcept {
    return proto::enumerator_name(e);
}

json error_to_json(const boost::system::error_code& ec, std::size_t offset) {
    json j;
    if (ec.category() == proto::codec_error_category()) {
        j["error"] = std::string(error_name(static_cast<proto::codec_error>(ec.value())));
    } else {
        j["error"] = std::string(ec.category().name()) + ":" + std::to_string(ec.value());
    }
    j["message"] = ec == proto::codec_error::need_more
                       ? std::string("input ends inside a packet (need more bytes)")
                       : ec.message();
    j["reason_code"] = reason_to_json(proto::to_reason_code(ec));
    j["offset"] = offset;
    return j;
}

std::optional<std::vector<std::uint8_t>> parse_hex(std::string_view text) {
    std::vector<std::uint8_t> out;
    int high = -1;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (high < 0 && c == '0' && i + 1 < text.size() &&
            (text[i + 1] == 'x' || text[i + 1] == 'X')) {
            ++i; // "0x" prefix of a byte
            continue;
        }
        const int v = hex_value(c);
        if (v >= 0) {
            if (high < 0) {
                high = v;
            } else {
                out.push_back(static_cast<std::uint8_t>((high << 4) | v));
                high = -1;
            }
        } else if ((c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':' || c == ',' ||
                    c == '-') &&
                   high < 0) {
            continue;
        } else {
            return std::nullopt;
        }
    }
    if (high >= 0) {
        return std::nullopt;
    }
    return out;
}

decode_report decode_all(std::span<const std::uint8_t> bytes, proto::decode_options options) {
    decode_report report;
    std::size_t offset = 0;
    while (offset < bytes.size()) {
        auto r = proto::decode(bytes.subspan(offset), options);
        if (!r) {
            report.error = error_to_json(r.error(), offset);
            break;
        }
        const auto& p = r->packet.packet;
        if (const auto* c = std::get_if<proto::connect>(&p)) {
            options.version = c->version;
        }
        json j = packet_to_json(p, options.version);
        json framed{{"offset", offset}, {"size", r->consumed}};
        framed.update(j);
        report.packets.push_back(std::move(framed));
        offset += r->consumed;
    }
    return report;
}

} // namespace tern::tools
