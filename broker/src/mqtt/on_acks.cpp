// Acknowledgements from a client: PUBACK, PUBREC, PUBREL, PUBCOMP.
#include "mqtt/connection_detail.hpp"

namespace tern::broker {

bool connection::ack_fits(std::uint16_t packet_id, mqtt::packet_type type) {
    // mosquitto 2.0 (db__message_delete_outgoing / db__message_update_outgoing): an
    // acknowledgement of the wrong kind for the message in flight under its id — PUBACK for
    // QoS 2, PUBREC or PUBCOMP for QoS 1, PUBCOMP before PUBREC — is a protocol error that
    // closes the connection. One for an id not in flight is ignored (it may be late).
    const auto it = session_->inflight.find(packet_id);
    if (it == session_->inflight.end()) {
        return true;
    }
    const auto qos = it->second.out.qos;
    const bool fits = type == mqtt::packet_type::puback
                          ? qos == mqtt::qos::at_least_once
                          : qos == mqtt::qos::exactly_once &&
                                (type != mqtt::packet_type::pubcomp || it->second.released);
    if (!fits) {
        log(log_level::info, "{}: {} for packet id {}, a QoS {} message{}: protocol error",
            describe(), mqtt::to_string(type), packet_id, static_cast<int>(qos),
            qos == mqtt::qos::exactly_once && !it->second.released ? " not yet PUBREC'd" : "");
        fail(mqtt::reason_code::protocol_error);
    }
    return fits;
}

void connection::on_puback(const mqtt::puback& a) {
    if (ack_fits(a.packet_id, mqtt::packet_type::puback)) {
        session_->complete(a.packet_id, mqtt::qos::at_least_once);
    }
}

void connection::on_pubrec(const mqtt::pubrec& a) {
    if (!ack_fits(a.packet_id, mqtt::packet_type::pubrec)) {
        return;
    }
    if (mqtt::is_failure(a.reason)) {
        // The client refused the message: the exchange ends here [MQTT-4.3.3-4 note].
        session_->refuse(a.packet_id);
        return;
    }
    if (!session_->release(a.packet_id)) {
        const auto it = session_->inflight.find(a.packet_id);
        if (it == session_->inflight.end() || !it->second.released) {
            send(mqtt::pubrel{a.packet_id,
                              v5() ? mqtt::reason_code::packet_identifier_not_found
                                   : mqtt::reason_code::success,
                              {}});
            return;
        }
    }
    send_pubrel(a.packet_id);
}

void connection::on_pubrel(const mqtt::pubrel& a) {
    const bool known = session_->inbound_qos2.erase(a.packet_id) != 0;
    if (known && session_->in_store()) {
        owner_.writes->inbound_qos2_removed(session_->handle->key, a.packet_id);
    }
    send(mqtt::pubcomp{a.packet_id,
                       known || !v5() ? mqtt::reason_code::success
                                      : mqtt::reason_code::packet_identifier_not_found,
                       {}});
    // Once the client has PUBCOMP it may reuse the id for a new message, which a store that
    // still held the id after a crash would take for a resend and drop.
    hold_until_durable();
}

void connection::on_pubcomp(const mqtt::pubcomp& a) {
    if (ack_fits(a.packet_id, mqtt::packet_type::pubcomp)) {
        session_->complete(a.packet_id, mqtt::qos::exactly_once);
    }
}

} // namespace tern::broker
