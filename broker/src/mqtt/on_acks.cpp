// Acknowledgements from a client: PUBACK, PUBREC, PUBREL, PUBCOMP.
#include "mqtt/connection_detail.hpp"

namespace tern::broker {

void connection::on_puback(const mqtt::puback& a) {
    session_->complete(a.packet_id, mqtt::qos::at_least_once);
}

void connection::on_pubrec(const mqtt::pubrec& a) {
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
    send(mqtt::pubcomp{a.packet_id,
                       known || !v5() ? mqtt::reason_code::success
                                      : mqtt::reason_code::packet_identifier_not_found,
                       {}});
}

void connection::on_pubcomp(const mqtt::pubcomp& a) {
    session_->complete(a.packet_id, mqtt::qos::exactly_once);
}

} // namespace tern::broker
