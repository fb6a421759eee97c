// CONNECT: checks, identity, limits, will; then the session (claimed, fetched or new) and CONNACK.
#include "mqtt/connection_detail.hpp"

#include <charconv>

namespace tern::broker {

void connection::refuse_connect(mqtt::reason_code reason, std::string_view why) {
    log(log_level::info, "{}: CONNECT refused: {} ({})", peer_, why, mqtt::to_string(reason));
    owner_.counters.add(owner_.counters.connects_refused[static_cast<std::uint8_t>(reason)], 1);
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
    if (!within_connection_limits() || !take_identity(c)) {
        return;
    }
    if (start_deferred_checks(c, storage)) {
        return; // deferred_check_done() carries on
    }
    if (!accept_verdict(owner_.authenticator->authenticate(identity_, c.password), c)) {
        return;
    }
    accept_connect(c, storage);
}

void connection::accept_connect(const mqtt::connect& c,
                                const std::shared_ptr<const std::uint8_t[]>& storage) {
    if (!assign_client_id(c) || !within_connect_rate() || (aws() && !within_account_quotas()) ||
        !negotiate_keep_alive(c) || !check_will(c)) {
        return;
    }
    if (aws()) {
        publish_rate_.emplace(aws_iot::publishes_per_second, aws_iot::publishes_per_second,
                              state_.clock.now());
        byte_rate_.emplace(aws_iot::bytes_per_second, aws_iot::bytes_per_second,
                           state_.clock.now());
    }
    connect_received_ = true;
    state_.connection_count.fetch_add(1);
    owner_.counters.add(owner_.counters.connects, 1);
    listener_connections_.fetch_add(1);
    counted_ = true;
    state_.connections_by_version[listener_index_][version_slot()].fetch_add(1);
    if (aws()) {
        state_.aws_account.connections.fetch_add(1);
    }
    decoder_.options().version = c.version;
    decoder_.options().maximum_packet_size =
        aws() ? std::min(state_.max_packet_size, aws_iot::max_packet_bytes)
              : state_.max_packet_size;
    bridge_ = c.bridge;
    take_client_limits(c);
    if (owner_.readiness) {
        publishes_window_ = bytes_window_ = state_.clock.now();
        observe_connect(c);
    }
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

bool connection::take_identity(const mqtt::connect& c) {
    if (v5() && c.props.authentication_method) {
        if (owner_.readiness) {
            owner_.readiness->note(readiness_finding::enhanced_auth, c.client_id,
                                   *c.props.authentication_method);
        }
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
                           fmt::format("no certificate identity to use as username (client "
                                       "'{}', user '{}', listener {})",
                                       c.client_id, identity_.username.value_or("-"),
                                       listener_.origin));
            return false;
        }
        identity_.username = std::move(identity);
        identity_.username_verified = true;
    }
    if (c.password) {
        password_ = std::string(*c.password);
    }
    return true;
}

bool connection::accept_verdict(const auth::verdict& v, const mqtt::connect& c) {
    if (v.allowed()) {
        return true;
    }
    refuse_connect(v.reason,
                   fmt::format("{} (client '{}', user '{}', listener {})", v.why, c.client_id,
                               identity_.username.value_or("-"), listener_.origin));
    return false;
}

bool connection::start_deferred_checks(const mqtt::connect& c,
                                       const std::shared_ptr<const std::uint8_t[]>& storage) {
    const auto& peer = transport_->peer();
    const auto& checker = state_.ocsp_checkers[listener_index_];
    const bool ocsp = checker && peer.certificate;
    const bool costly = owner_.authenticator->authenticate_is_costly(identity_, c.password);
    if (!ocsp && !costly) {
        return false;
    }
    pending_connect_ = std::make_unique<pending_connect>();
    auto& p = *pending_connect_;
    p.packet = c;
    p.storage = storage;
    p.outstanding = (ocsp ? 1 : 0) + (costly ? 1 : 0);
    if (ocsp) {
        if (peer.certificate->ocsp_cert_id.empty()) {
            // Its issuer was not in the verified chain: nothing to ask about.
            p.ocsp = net::ocsp_result{net::ocsp_status::unknown,
                                      "the issuer of the certificate is not known", false};
            --p.outstanding;
        } else {
            checker->async_check(owner_.ctx.get_executor(), peer.certificate->ocsp_cert_id,
                                 [self = shared_from_this()](net::ocsp_result r) {
                                     self->pending_connect_->ocsp = std::move(r);
                                     self->deferred_check_done();
                                 });
        }
    }
    if (costly) {
        // PBKDF2 (tens of microseconds at mosquitto_passwd's default, up to half a second at
        // the iteration cap) runs on the blocking pool: the worker's other clients carry on.
        // The job holds the connection (so identity_.peer stays valid) and posts the verdict
        // back to the worker; it reads only immutable copies.
        authenticate_off_worker([this](std::optional<auth::verdict> v) {
            pending_connect_->verdict =
                v ? std::move(*v)
                  : auth::verdict::deny(mqtt::reason_code::unspecified_error,
                                        "the password could not be checked");
            deferred_check_done();
        });
    } else {
        p.verdict = owner_.authenticator->authenticate(identity_, c.password);
    }
    if (p.outstanding == 0) {
        decide_deferred_connect(); // the OCSP check was decided without asking
    }
    return true;
}

void connection::deferred_check_done() {
    if (--pending_connect_->outstanding > 0) {
        return;
    }
    try {
        decide_deferred_connect();
    } catch (const std::exception& e) {
        fail_unexpected(e.what());
    }
    // As at the end of a read: what the CONNECT routed (a taken-over session's will) and
    // queued (CONNACK) goes out now.
    flush_outbox(owner_);
    flush_writes(owner_);
}

void connection::decide_deferred_connect() {
    const auto done = std::move(pending_connect_);
    if (closing_) {
        return; // the client went away (or timed out) while it was checked
    }
    begin_request();
    if ((done->ocsp && !accept_ocsp(*done->ocsp)) ||
        !accept_verdict(*done->verdict, done->packet)) {
        return;
    }
    accept_connect(done->packet, done->storage);
}

bool connection::accept_ocsp(const net::ocsp_result& r) {
    const auto& cert = *transport_->peer().certificate;
    const auto who = fmt::format("certificate '{}' serial {} (client '{}', listener {})",
                                 cert.subject, cert.serial, identity_.client_id, listener_.origin);
    switch (r.status) {
    case net::ocsp_status::good:
        log(log_level::debug, "{}: OCSP: {} is good{}", peer_, who,
            r.from_cache ? " (cached)" : "");
        return true;
    case net::ocsp_status::revoked:
        refuse_connect(mqtt::reason_code::not_authorized,
                       fmt::format("OCSP: {} is revoked: {}", who, r.detail));
        return false;
    case net::ocsp_status::unknown:
    case net::ocsp_status::unreachable:
        break;
    }
    const auto status = net::to_string(r.status);
    if (listener_.ocsp_fail_open) {
        log(log_level::warn, "{}: OCSP: {} is {} ({}); accepted (ocsp_fail_open)", peer_, who,
            status, r.detail);
        return true;
    }
    // Unreachable is the responder's trouble, not the client's: Server unavailable (3.1.1
    // return code 3) tells a device to try again later rather than that it is unwelcome.
    refuse_connect(r.status == net::ocsp_status::unknown ? mqtt::reason_code::not_authorized
                                                         : mqtt::reason_code::server_unavailable,
                   fmt::format("OCSP: {} is {}: {}", who, status, r.detail));
    return false;
}

bool connection::assign_client_id(const mqtt::connect& c) {
    if (aws()) {
        if (const auto r = aws_iot::check_client_id(c.client_id)) {
            refuse_connect(r->reason, r->why);
            return false;
        }
    }
    if (!c.client_id.empty()) {
        client_id_ = std::string(c.client_id);
        return true;
    }
    if (version_ == mqtt::protocol_version::v3_1) {
        // MQTT 3.1 requires a client id of 1 to 23 characters: mosquitto refuses an empty one
        // with return code 2 whatever the clean session flag.
        refuse_connect(mqtt::reason_code::client_identifier_not_valid,
                       "empty client id (MQTT 3.1)");
        return false;
    }
    if (!v5() && !c.clean_start) {
        // [MQTT-3.1.3-8]: a zero-byte ClientId needs CleanSession 1; return code 2.
        refuse_connect(mqtt::reason_code::client_identifier_not_valid,
                       "empty client id without clean session");
        return false;
    }
    if (!state_.config.allow_zero_length_clientid) {
        // As mosquitto 2.0: 3.1.1 return code 2, MQTT 5 0x80 Unspecified error (the spec
        // leaves the code open: "MAY" 0x85).
        refuse_connect(v5() ? mqtt::reason_code::unspecified_error
                            : mqtt::reason_code::client_identifier_not_valid,
                       "empty client id (allow_zero_length_clientid false)");
        return false;
    }
    client_id_ = assigned_client_id();
    identity_.client_id = client_id_;
    assigned_id_ = true;
    return true;
}

bool connection::within_connect_rate() {
    if (!aws() || state_.aws_connects.admit(client_id_, state_.clock.now())) {
        return true;
    }
    // AWS IoT Core: "Connect requests per second per client ID: 1" (not adjustable); the
    // connection already there is not affected.
    refuse_connect(v5() ? mqtt::reason_code::quota_exceeded : mqtt::reason_code::server_unavailable,
                   "more than one CONNECT a second for this client id (AWS IoT Core's quota)");
    return false;
}

bool connection::within_account_quotas() {
    auto& account = state_.aws_account;
    const char* why = nullptr;
    if (account.max_connections != 0 && account.connections.load() >= account.max_connections) {
        why = "the account's concurrent connections quota is reached (aws_account_max_connections)";
    } else if (!account.connects.unlimited() && account.connects.draw(state_.clock.now(), 1) == 0) {
        why = "the account is over its connect requests a second "
              "(aws_account_connects_per_second)";
    }
    if (why == nullptr) {
        return true;
    }
    refuse_connect(v5() ? mqtt::reason_code::quota_exceeded : mqtt::reason_code::server_unavailable,
                   why);
    return false;
}

std::string connection::assigned_client_id() const {
    // mosquitto's form, auto_id_prefix then an upper-case UUID-shaped id
    // ("auto-46684BF8-413A-68F6-D959-04C4D1897DD9"), so ACL patterns and logs written for it
    // keep working. The 128 bits mix the run's random salt with the connection key
    // (splitmix64, a bijection for a given salt), so ids never repeat within a run.
    const auto mix = [](std::uint64_t z) {
        z += 0x9E3779B97F4A7C15ULL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    };
    const std::uint64_t hi = mix(state_.client_id_salt ^ key_);
    const std::uint64_t lo = mix(hi);
    return fmt::format("{}{:08X}-{:04X}-{:04X}-{:04X}-{:012X}", state_.config.auto_id_prefix,
                       hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF, lo >> 48,
                       lo & 0xFFFFFFFFFFFFULL);
}

bool connection::negotiate_keep_alive(const mqtt::connect& c) {
    const auto max = state_.config.max_keepalive;
    keep_alive_ = c.keep_alive;
    problem_information_ = c.props.request_problem_information.value_or(1) != 0;
    if (aws()) {
        // AWS clamps rather than refuses, in 3.1.1 too (the client is not told there).
        keep_alive_ = aws_iot::keep_alive(c.keep_alive);
        keep_alive_changed_ = keep_alive_ != c.keep_alive;
        return true;
    }
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
    if (aws() && c.will && c.will->qos == mqtt::qos::exactly_once) {
        // AWS IoT Core: CONNACK 0x9B for MQTT 5; a 3.1.1 client is closed without CONNACK.
        if (!v5()) {
            log(log_level::info,
                "{}: CONNECT with a QoS 2 will: closed (AWS IoT Core has no "
                "QoS 2)",
                peer_);
            connect_received_ = true;
            close();
            return false;
        }
        refuse_connect(mqtt::reason_code::qos_not_supported, "a will with QoS 2");
        return false;
    }
    if (aws() && c.will) {
        // The will is a PUBLISH to come: the same topic rules (or a client could fake
        // lifecycle events on $aws/events/... with it).
        auto r = aws_iot::check_topic_limits(c.will->topic, false);
        if (!r) {
            r = aws_iot::check_publish_topic(c.will->topic, c.will->retain);
        }
        if (r) {
            refuse_connect(v5() ? r->reason : mqtt::reason_code::not_authorized,
                           fmt::format("will on '{}': {}", c.will->topic, r->why));
            return false;
        }
    }
    if (c.will && c.will->retain && !state_.config.retain_available) {
        refuse_connect(v5() ? mqtt::reason_code::retain_not_supported
                            : mqtt::reason_code::unspecified_error,
                       "retained will while retain_available is false");
        return false;
    }
    const auto limit = state_.config.message_size_limit;
    if (c.will && limit != 0 && c.will->payload.size() > limit) {
        // mosquitto 2.0 ("disconnected due to oversize payload"): CONNACK 0x95 Packet too
        // large, 3.1.1 return code 5.
        refuse_connect(v5() ? mqtt::reason_code::packet_too_large
                            : mqtt::reason_code::not_authorized,
                       fmt::format("will payload of {} bytes over message_size_limit {}",
                                   c.will->payload.size(), limit));
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
        client_requested_expiry_ = requested_expiry_;
        if (aws()) {
            client_alias_maximum_ = 0; // AWS never sets topic aliases towards the client
            requested_expiry_ = aws_iot::session_expiry(requested_expiry_, false);
        }
    } else if (aws()) {
        requested_expiry_ = aws_iot::session_expiry(std::nullopt, !c.clean_start);
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
    if (state_.durable && w->publish.qos != mqtt::qos::at_most_once) {
        state_.store->name_message(*w); // queued for offline persistent sessions, on disk
    }
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

aws_iot::lifecycle_client connection::lifecycle_identity() const {
    aws_iot::lifecycle_client c;
    c.client_id = client_id_;
    c.session_identifier = session_identifier_;
    const auto& peer = transport_->peer();
    if (peer.certificate) {
        c.principal_identifier = peer.certificate->sha256_fingerprint;
    } else if (identity_.username) {
        c.principal_identifier = *identity_.username;
    }
    // The address without the port ("192.0.2.1:5000", "[::1]:5000").
    std::string_view ip = peer.address;
    if (const auto colon = ip.rfind(':'); colon != std::string_view::npos) {
        ip = ip.substr(0, colon);
    }
    if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') {
        ip = ip.substr(1, ip.size() - 2);
    }
    c.ip_address = ip;
    c.version_number = key_;
    return c;
}

void connection::publish_lifecycle(const std::string& topic, const std::string& payload) {
    auto m =
        make_owned_message(topic, payload, mqtt::qos::at_least_once, false, state_.clock.now());
    if (state_.durable) {
        state_.store->name_message(*m); // queued for offline persistent subscribers, on disk
    }
    publish_internal(owner_, m, 0, {});
}

void connection::publish_disconnected_event() {
    if (!aws() || session_identifier_.empty() || disconnected_event_sent_) {
        return;
    }
    disconnected_event_sent_ = true;
    const auto reason = lifecycle_reason_.empty() ? aws_iot::connection_lost : lifecycle_reason_;
    publish_lifecycle(aws_iot::disconnected_topic(client_id_),
                      aws_iot::disconnected_event(lifecycle_identity(), wall_clock_ms(), reason,
                                                  client_initiated_));
}

void connection::aws_connack_properties(mqtt::properties& props) const {
    // As AWS IoT Core announces them (mqtt.html, "MQTT 5 properties"): QoS 2 and
    // Subscription Identifiers are not supported, 128 KB packets, 100 unacknowledged QoS 1
    // PUBLISH, 8 topic aliases; the granted Session Expiry when it differs from the request.
    props.maximum_qos = 1;
    props.subscription_identifier_available = 0;
    props.maximum_packet_size = std::min(state_.max_packet_size, aws_iot::max_packet_bytes);
    props.receive_maximum = aws_iot::receive_maximum;
    props.topic_alias_maximum = aws_iot::topic_alias_maximum;
    if (!state_.config.retain_available) {
        props.retain_available = 0; // the broker's own setting still holds
    }
    if (requested_expiry_ != client_requested_expiry_) {
        props.session_expiry_interval = requested_expiry_;
    }
}

void connection::attach(session& s, bool session_present) {
    session_ = &s;
    s.sink = this;
    s.version = version_;
    s.expiry_interval = requested_expiry_;
    s.handle->online.store(true, std::memory_order_relaxed);
    connected_ = true;
    connected_ms_ = wall_clock_ms();
    deadline_ =
        keep_alive_ == 0 ? steady::time_point::max() : state_.clock.now() + keep_alive_ * 1500ms;
    // Reading stopped after CONNECT while the session was fetched; go on (after this handler,
    // since attach() may run inside consume()).
    asio::post(transport_->get_executor(), [self = shared_from_this()] { self->resume_reading(); });
    if (s.expiry_interval != 0) {
        s.save(will_.get(), will_delay_, {});
    } else {
        s.remove_from_store(); // resumed, and now ends with this connection [MQTT-3.1.2-5]
    }

    mqtt::connack ack;
    // MQTT 3.1's CONNACK has no session present flag (that byte is reserved there).
    ack.session_present = session_present && version_ != mqtt::protocol_version::v3_1;
    const auto& cfg = state_.config;
    if (v5()) {
        if (assigned_id_) {
            ack.props.assigned_client_identifier = client_id_;
        }
        if (keep_alive_changed_) {
            ack.props.server_keep_alive = keep_alive_;
        }
        // As Mosquitto 2.0 announces them (handle_connect.c): Maximum Packet Size only when
        // max_packet_size limits it, Topic Alias Maximum unless max_topic_alias is 0, Receive
        // Maximum = max_inflight_messages unless that is unlimited.
        if (aws()) {
            aws_connack_properties(ack.props);
        } else {
            if (cfg.max_packet_size != 0) {
                ack.props.maximum_packet_size = state_.max_packet_size;
            }
            if (listener_.max_topic_alias != 0) {
                ack.props.topic_alias_maximum = listener_.max_topic_alias;
            }
            if (cfg.max_inflight_messages != 0 && cfg.max_inflight_messages != 65535) {
                ack.props.receive_maximum = cfg.max_inflight_messages;
            }
            if (!cfg.retain_available) {
                ack.props.retain_available = 0;
            }
        }
        // Absent on purpose: Maximum QoS (2), Wildcard, Subscription Identifier and Shared
        // Subscription Available (all 1).
    }
    send(ack);
    hold_until_durable(); // "session present" and a cleared session are on disk first
    if (aws() && aws_iot::has_lifecycle_events(client_id_)) {
        session_identifier_ =
            fmt::format("{:016x}{:016x}", state_.client_id_salt ^ key_,
                        (state_.client_id_salt >> 1) + key_ * 0x9E3779B97F4A7C15ULL);
        publish_lifecycle(aws_iot::connected_topic(client_id_),
                          aws_iot::connected_event(lifecycle_identity(), wall_clock_ms()));
    }
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
    if (aws() && session_present) {
        // AWS IoT Core replays "stored messages ... at a rate of 10 messages per second": the
        // backlog found here is paced; what arrives later queues behind it.
        replay_left_ = s.queued.size() + s.on_disk();
        if (replay_left_ != 0) {
            replay_rate_.emplace(aws_iot::replay_per_second, aws_iot::replay_per_second,
                                 state_.clock.now());
        }
    }
    s.resume();
}

bool connection::may_send_queued() noexcept {
    if (replay_left_ != 0 && session_->queued.empty() && session_->on_disk() == 0) {
        replay_left_ = 0; // the backlog went (some of it was in flight): pacing ends
    }
    if (replay_left_ == 0) {
        return true;
    }
    if (!replay_rate_->take(state_.clock.now())) {
        return false; // check_deadline() tries again on the next tick
    }
    --replay_left_;
    return true;
}

void connection::recheck_credentials() {
    if (!connected_ || closing_) {
        return;
    }
    const auto judge = [this](const auth::verdict& v) {
        if (v.allowed() || !connected_ || closing_) {
            return;
        }
        log(log_level::info,
            "{}: client '{}' disconnected: {} after the access files were reloaded", peer_,
            client_id_, v.why);
        disconnect_with(mqtt::reason_code::not_authorized, v.why);
    };
    if (!owner_.authenticator->authenticate_is_costly(identity_, password_)) {
        judge(owner_.authenticator->authenticate(identity_, password_));
        return;
    }
    // A reload re-hashes every connected client's password: on the pool, or ten thousand
    // PBKDF2 derivations would stall the worker for a second.
    authenticate_off_worker([judge](std::optional<auth::verdict> v) {
        if (v) {
            judge(*v); // a failure to hash is not a verdict: the client stays
        }
    });
}

void connection::authenticate_off_worker(std::function<void(std::optional<auth::verdict>)> then) {
    // The job holds the connection (so identity_.peer stays valid) and reads only copies and
    // the immutable rules; the answer is handled back on this worker.
    asio::post(*state_.blocking_pool, [self = shared_from_this(), rules = owner_.authenticator,
                                       who = identity_, password = password_,
                                       then = std::move(then)]() mutable {
        std::optional<auth::verdict> v;
        try {
            v = rules->authenticate(who, password);
        } catch (const std::exception& e) {
            log(log_level::error, "authenticating client '{}' failed: {}", who.client_id, e.what());
        }
        auto& ctx = self->owner_.ctx;
        asio::post(ctx, [self = std::move(self), v = std::move(v), then = std::move(then)] {
            then(v);
            flush_writes(self->owner_);
        });
    });
}

} // namespace tern::broker
