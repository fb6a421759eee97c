// CONNECT: checks, identity, limits, will; then the session (claimed, fetched or new) and CONNACK.
#include "mqtt/connection_detail.hpp"

#include <charconv>

namespace tern::broker {

void connection::refuse_connect(mqtt::reason_code reason, std::string_view why) {
    log(log_level::info, "{}: CONNECT refused: {} ({})", peer_, why, mqtt::to_string(reason));
    connect_received_ = true; // nothing more is read
    mqtt::connack ack{false, reason, {}};
    if (v5()) {
        ack.props.reason_string = why; // CONNACK may always carry one [MQTT-3.1.2-29]
    }
    send(ack);
    close_after_flush();
}

void connection::on_connect(const mqtt::connect& c,
                            const std::shared_ptr<const std::uint8_t[]>& storage) {
    version_ = c.version;
    // Each step refuses the CONNECT itself (CONNACK with its reason, then close) and returns
    // false when the client may not go on.
    if (!within_connection_limits() || !authenticate(c) || !assign_client_id(c) ||
        !negotiate_keep_alive(c) || !check_will(c)) {
        return;
    }
    connect_received_ = true;
    state_.connection_count.fetch_add(1);
    owner_.counters.add(owner_.counters.connects, 1);
    listener_connections_.fetch_add(1);
    counted_ = true;
    decoder_.options().version = c.version;
    decoder_.options().maximum_packet_size = state_.max_packet_size;
    take_client_limits(c);
    keep_will(c, storage);
    claim_session(c.clean_start);
}

bool connection::within_connection_limits() {
    const auto& cfg = state_.config;
    if (cfg.max_connections && state_.connection_count.load() >= *cfg.max_connections) {
        refuse_connect(v5() ? mqtt::reason_code::quota_exceeded
                            : mqtt::reason_code::server_unavailable,
                       "max_connections reached");
        return false;
    }
    if (listener_.max_connections && listener_connections_.load() >= *listener_.max_connections) {
        refuse_connect(v5() ? mqtt::reason_code::quota_exceeded
                            : mqtt::reason_code::server_unavailable,
                       "max_connections of this listener reached");
        return false;
    }
    return true;
}

bool connection::authenticate(const mqtt::connect& c) {
    if (v5() && c.props.authentication_method) {
        // Enhanced authentication: no method is implemented yet [MQTT-4.12.0-1].
        refuse_connect(mqtt::reason_code::bad_authentication_method,
                       fmt::format("authentication method '{}'", *c.props.authentication_method));
        return false;
    }
    identity_.client_id = std::string(c.client_id);
    identity_.listener = listener_index_;
    identity_.peer = &transport_->peer();
    if (c.username) {
        identity_.username = std::string(*c.username);
    }
    if (listener_.use_identity_as_username || listener_.use_subject_as_username) {
        // mosquitto: the certificate (or PSK identity) replaces whatever User Name was sent,
        // and a client without one is refused as having bad credentials.
        const auto& peer = transport_->peer();
        std::string identity;
        if (peer.certificate) {
            identity = listener_.use_subject_as_username ? peer.certificate->subject
                                                         : peer.certificate->common_name;
        } else if (!peer.psk_identity.empty()) {
            identity = peer.psk_identity;
        }
        if (identity.empty()) {
            refuse_connect(mqtt::reason_code::bad_user_name_or_password,
                           "no certificate identity to use as username");
            return false;
        }
        identity_.username = std::move(identity);
        identity_.username_verified = true;
    }
    if (c.password) {
        password_ = std::string(*c.password);
    }
    const auto verdict = owner_.authenticator->authenticate(identity_, c.password);
    if (!verdict.allowed()) {
        refuse_connect(verdict.reason,
                       fmt::format("{} (client '{}', user '{}', listener {})", verdict.why,
                                   c.client_id, identity_.username.value_or("-"),
                                   listener_.origin));
        return false;
    }
    return true;
}

bool connection::assign_client_id(const mqtt::connect& c) {
    if (!c.client_id.empty()) {
        client_id_ = std::string(c.client_id);
        return true;
    }
    if (!v5() && !c.clean_start) {
        // [MQTT-3.1.3-8]: a zero-byte ClientId needs CleanSession 1; return code 2.
        refuse_connect(mqtt::reason_code::client_identifier_not_valid,
                       "empty client id without clean session");
        return false;
    }
    client_id_ = fmt::format("tern-{:x}-{}", state_.client_id_salt, key_);
    identity_.client_id = client_id_;
    assigned_id_ = true;
    return true;
}

bool connection::negotiate_keep_alive(const mqtt::connect& c) {
    const auto max = state_.config.max_keepalive;
    keep_alive_ = c.keep_alive;
    problem_information_ = c.props.request_problem_information.value_or(1) != 0;
    if (keep_alive_ > max || (keep_alive_ == 0 && max < 65535)) {
        if (!v5()) {
            // 3.1.1 cannot be told another keep-alive: refused like mosquitto does.
            refuse_connect(mqtt::reason_code::client_identifier_not_valid,
                           fmt::format("keep-alive {} s above max_keepalive", keep_alive_));
            return false;
        }
        keep_alive_ = max; // sent back as Server Keep Alive [MQTT-3.2.2-22]
        keep_alive_changed_ = true;
    }
    return true;
}

bool connection::check_will(const mqtt::connect& c) {
    if (c.will && c.will->retain && !state_.config.retain_available) {
        refuse_connect(v5() ? mqtt::reason_code::retain_not_supported
                            : mqtt::reason_code::unspecified_error,
                       "retained will while retain_available is false");
        return false;
    }
    return true;
}

void connection::take_client_limits(const mqtt::connect& c) {
    const auto& cfg = state_.config;
    if (v5()) {
        // The decoder rejects Receive Maximum 0; max() keeps a quota of 0 from ever stalling.
        receive_maximum_ = std::max<std::uint16_t>(c.props.receive_maximum.value_or(65535), 1);
        client_max_packet_size_ = c.props.maximum_packet_size.value_or(0xFFFFFFFF);
        client_alias_maximum_ =
            std::min(c.props.topic_alias_maximum.value_or(0), outbound_alias_cap);
        requested_expiry_ = c.props.session_expiry_interval.value_or(0);
    } else if (!c.clean_start) {
        requested_expiry_ = cfg.persistent_client_expiration
                                ? static_cast<std::uint32_t>(std::min<std::int64_t>(
                                      cfg.persistent_client_expiration->count(), 0xFFFFFFFE))
                                : 0xFFFFFFFFU;
    }
}

void connection::keep_will(const mqtt::connect& c,
                           const std::shared_ptr<const std::uint8_t[]>& storage) {
    if (!c.will) {
        return;
    }
    if (!owner_.authenticator->authorize(identity_, auth::access::publish, c.will->topic)) {
        // mosquitto 2.0 accepts the CONNECT and drops the will: a client cannot plant a will
        // on a topic it may not publish to.
        log(log_level::info, "{}: will on '{}' dropped (not authorized)", peer_, c.will->topic);
        return;
    }
    auto w = std::make_shared<message>();
    w->publish.topic = c.will->topic;
    w->publish.payload = c.will->payload;
    w->publish.qos = c.will->qos;
    w->publish.retain = c.will->retain;
    // Will Delay Interval is not a PUBLISH property; the rest travel on.
    w->publish.props = forwardable_properties(c.will->props);
    w->storage = storage;
    w->received_at = state_.clock.now();
    will_delay_ = c.will->props.will_delay_interval.value_or(0);
    will_ = std::move(w);
}

void connection::claim_session(bool clean_start) {
    const auto claim = state_.directory.claim(client_id_, owner_.index, state_.next_key++);
    const auto key = claim.handle->key;
    if (!claim.existing) {
        auto sp = std::make_unique<session>(owner_, claim.handle);
        session& s = *sp;
        owner_.sessions.emplace(key, std::move(sp));
        attach(s, false);
        return;
    }
    // The client id has a session (maybe with a live connection): fetch it from the worker
    // that holds it, or will once the handovers already on their way complete.
    owner_.awaiting_session[key] = weak_from_this();
    const handover_request req{key, owner_.index, clean_start};
    if (claim.previous_claimant == owner_.index) {
        handle_handover(owner_, req);
        return;
    }
    auto& holder = *state_.workers[claim.previous_claimant];
    asio::post(holder.ctx, [&holder, req] { handle_handover(holder, req); });
}

void connection::attach(session& s, bool session_present) {
    session_ = &s;
    s.sink = this;
    s.version = version_;
    s.expiry_interval = requested_expiry_;
    s.handle->online.store(true, std::memory_order_relaxed);
    connected_ = true;
    deadline_ =
        keep_alive_ == 0 ? steady::time_point::max() : state_.clock.now() + keep_alive_ * 1500ms;
    // Reading stopped after CONNECT while the session was fetched; go on (after this handler,
    // since attach() may run inside consume()).
    asio::post(transport_->get_executor(), [self = shared_from_this()] { self->resume_reading(); });
    if (s.expiry_interval != 0) {
        state_.store->session_opened(client_id_, s.expiry_interval);
    }

    mqtt::connack ack;
    ack.session_present = session_present;
    const auto& cfg = state_.config;
    if (v5()) {
        if (assigned_id_) {
            ack.props.assigned_client_identifier = client_id_;
        }
        if (keep_alive_changed_) {
            ack.props.server_keep_alive = keep_alive_;
        }
        ack.props.maximum_packet_size = state_.max_packet_size;
        ack.props.topic_alias_maximum = inbound_alias_maximum;
        if (!cfg.retain_available) {
            ack.props.retain_available = 0;
        }
        // Absent on purpose: Maximum QoS (2), Wildcard, Subscription Identifier and Shared
        // Subscription Available (all 1), Receive Maximum (65535).
    }
    send(ack);
    if (cfg.logging.connection_messages) {
        const auto& peer = transport_->peer();
        std::string via;
        if (peer.tls) {
            via = fmt::format(", {} {}", peer.transport, peer.tls_version);
            if (!peer.server_name.empty()) {
                via += fmt::format(" sni {}", peer.server_name);
            }
            if (!peer.alpn.empty()) {
                via += fmt::format(" alpn {}", peer.alpn);
            }
        } else if (peer.transport != "tcp") {
            via = fmt::format(", {}", peer.transport);
        }
        if (identity_.username && !identity_.username->empty()) {
            via += fmt::format(", user '{}'", *identity_.username);
        }
        log(log_level::info, "{}: client '{}' connected (MQTT {}, keep-alive {} s{}{}{})", peer_,
            client_id_, mqtt::to_string(version_), keep_alive_, will_ ? ", will" : "",
            session_present ? ", session resumed" : "", via);
    }
    s.resume();
}

void connection::recheck_credentials() {
    if (!connected_ || closing_) {
        return;
    }
    const auto verdict = owner_.authenticator->authenticate(identity_, password_);
    if (!verdict.allowed()) {
        log(log_level::info,
            "{}: client '{}' disconnected: {} after the access files were "
            "reloaded",
            peer_, client_id_, verdict.why);
        disconnect_with(mqtt::reason_code::not_authorized, verdict.why);
    }
}

} // namespace tern::broker
