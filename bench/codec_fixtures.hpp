#pragma once
// Packets shared by the codec benchmarks (protocol_bench, protocol_icount): one definition, so
// the timed and the instruction-counted figures measure the same bytes.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include <tern/protocol/decoder.hpp>
#include <tern/protocol/encoder.hpp>

namespace tern::bench {

namespace proto = tern::protocol;
using proto::protocol_version;

/// Aborts the benchmark run: a codec that cannot round-trip these packets measures nothing.
template <class T> T must(boost::system::result<T> r, const char* what) {
    if (!r) {
        std::fprintf(stderr, "bench: %s failed: %s\n", what, r.error().message().c_str());
        std::abort();
    }
    return std::move(*r);
}

/// Owns the bytes a packet's views point to.
struct publish_fixture {
    std::string topic = "sensors/building-7/floor-3/room-12/temperature";
    std::string payload;
    std::string content_type = "application/json";
    proto::publish packet;

    publish_fixture(protocol_version v, std::size_t payload_size) : payload(payload_size, 'x') {
        packet.topic = topic;
        packet.payload = payload;
        packet.qos = proto::qos::at_least_once;
        packet.packet_id = 4711;
        if (v == protocol_version::v5) {
            packet.props.message_expiry_interval = 3600;
            packet.props.content_type = content_type;
            packet.props.user_properties.push_back({"trace-id", "4bf92f3577b34da6"});
        }
    }
};

struct connect_fixture {
    proto::connect packet;
    std::string password = std::string(32, '\x5a');
    std::string will_payload = std::string(64, 'w');
    std::string auth_data = std::string(48, '\x01');

    connect_fixture() {
        packet.version = protocol_version::v5;
        packet.clean_start = false;
        packet.keep_alive = 30;
        packet.client_id = "factory-7/line-2/plc-0042";
        packet.username = "plc-0042";
        packet.password = password;
        proto::will_message will;
        will.topic = "status/factory-7/line-2/plc-0042";
        will.payload = will_payload;
        will.qos = proto::qos::at_least_once;
        will.retain = true;
        will.props.will_delay_interval = 10;
        will.props.payload_format_indicator = 1;
        will.props.message_expiry_interval = 86400;
        will.props.content_type = "text/plain";
        will.props.user_properties.push_back({"reason", "lost"});
        packet.will = will;
        auto& p = packet.props;
        p.session_expiry_interval = 3600;
        p.receive_maximum = 64;
        p.maximum_packet_size = 1 << 20;
        p.topic_alias_maximum = 16;
        p.request_response_information = 1;
        p.request_problem_information = 1;
        p.authentication_method = "SCRAM-SHA-256";
        p.authentication_data = auth_data;
        p.user_properties.push_back({"site", "factory-7"});
        p.user_properties.push_back({"fw", "4.2.1"});
        p.user_properties.push_back({"model", "S7-1500"});
    }
};

/// How a broker decodes what clients send.
inline proto::decode_options options_for(protocol_version v) {
    proto::decode_options o;
    o.version = v;
    o.role = proto::receiver_role::server;
    return o;
}

} // namespace tern::bench
