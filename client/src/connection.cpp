#include <tern/client/connection.hpp>

#include <tern/protocol/decoder.hpp>
#include <tern/protocol/encoder.hpp>
#include <tern/protocol/error.hpp>
#include <tern/protocol/reason_code.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstring>
#include <string>

namespace tern::client {

namespace asio = boost::asio;
namespace mqtt = tern::protocol;
using steady = std::chrono::steady_clock;

namespace {

class client_error_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "tern.client"; }
    std::string message(int ev) const override {
        switch (static_cast<client_error>(ev)) {
        case client_error::not_connected:
            return "not connected";
        case client_error::window_full:
            return "inflight window full";
        case client_error::queue_full:
            return "output queue full";
        case client_error::encode_failed:
            return "packet cannot be encoded";
        case client_error::connack_timeout:
            return "no CONNACK in time";
        case client_error::keep_alive_timeout:
            return "no PINGRESP within keep-alive";
        case client_error::protocol_violation:
            return "protocol violation by the server";
        case client_error::malformed_packet:
            return "malformed packet from the server";
        case client_error::server_disconnect:
            return "DISCONNECT from the server";
        case client_error::connection_refused:
            return "connection refused by CONNACK";
        }
        return "unknown tern.client error";
    }
};

/// Above this, a write buffer is released once its batch has gone out (a burst is over), so
/// an idle connection does not keep a burst's memory.
constexpr std::size_t keep_buffer_capacity = 256 * 1024;

/// Acknowledgements of success with no properties: 4 bytes in 3.1.1 and 5 alike.
constexpr std::uint8_t puback_byte = 0x40;
constexpr std::uint8_t pubrec_byte = 0x50;
constexpr std::uint8_t pubrel_byte = 0x62; // reserved flags 0010 [MQTT-3.6.1-1]
constexpr std::uint8_t pubcomp_byte = 0x70;

} // namespace

const boost::system::error_category& client_error_category() noexcept {
    static const client_error_category_impl category;
    return category;
}

boost::system::result<publish_template> publish_template::make(const mqtt::publish& p,
                                                               std::uint32_t payload_size,
                                                               mqtt::protocol_version version) {
    mqtt::publish q = p;
    // A placeholder identifier whose bytes are easy to find again; a payload of the right size
    // only matters for the Remaining Length, so any bytes do (they are never written).
    q.packet_id = q.qos == mqtt::qos::at_most_once ? 0 : 0xA5C3;
    std::string sizing(payload_size, '\0');
    q.payload = sizing;
    publish_template t;
    t.payload_size = payload_size;
    t.qos = q.qos;
    const auto size = mqtt::publish_size(q, version);
    if (!size) {
        return size.error();
    }
    t.header.resize(size->header_size);
    const auto layout = mqtt::encode_publish_header(q, version, t.header);
    if (!layout) {
        return layout.error();
    }
    if (q.qos != mqtt::qos::at_most_once) {
        // Locate exactly: fixed header, 2-byte topic length, topic, then the identifier.
        std::size_t fixed = 1;
        while ((t.header[fixed] & 0x80) != 0) {
            ++fixed;
        }
        t.packet_id_at = fixed + 1 + 2 + q.topic.size();
        if (t.packet_id_at + 1 >= t.header.size() || t.header[t.packet_id_at] != 0xA5 ||
            t.header[t.packet_id_at + 1] != 0xC3) {
            return mqtt::make_error_code(mqtt::codec_error::unexpected_packet);
        }
    }
    return t;
}

std::shared_ptr<connection> connection::create(std::unique_ptr<net::transport> transport,
                                               connect_options options, handler* events) {
    return std::shared_ptr<connection>(
        new connection(std::move(transport), std::move(options), events));
}

connection::connection(std::unique_ptr<net::transport> transport, connect_options options,
                       handler* events)
    : transport_(std::move(transport)), options_(std::move(options)), handler_(events),
      version_(options_.version) {
    options_.inflight_window = std::clamp<std::uint16_t>(options_.inflight_window, 1, 65000);
    control_base_ = static_cast<std::uint16_t>(options_.inflight_window + 1);
    next_control_ = control_base_;
    keep_alive_ = options_.keep_alive;
    rbuf_.resize(std::max<std::size_t>(options_.read_buffer_size, 64));
}

connection::~connection() {
    if (state_ != state::closed) {
        transport_->close();
    }
}

void connection::start(steady::time_point now) {
    if (state_ != state::idle) {
        return;
    }
    state_ = state::connecting;
    deadline_ = now + options_.connack_timeout;
    last_write_ = now;
    mqtt::connect c;
    c.version = version_;
    c.clean_start = options_.clean_start;
    c.keep_alive = options_.keep_alive;
    c.client_id = options_.client_id;
    if (options_.username) {
        c.username = *options_.username;
    }
    if (options_.password) {
        c.password = *options_.password;
    }
    if (options_.will) {
        mqtt::will_message w;
        w.topic = options_.will->topic;
        w.payload = options_.will->payload;
        w.qos = options_.will->qos;
        w.retain = options_.will->retain;
        c.will = w;
    }
    if (!mqtt::is_v3(version_)) {
        c.props.session_expiry_interval = options_.session_expiry_interval;
        if (options_.receive_maximum != 0) {
            c.props.receive_maximum = options_.receive_maximum;
        }
    }
    if (!append_packet(c)) {
        fail(make_error_code(client_error::encode_failed), "cannot encode CONNECT");
        return;
    }
    arm_read();
    schedule_write();
}

bool connection::can_publish(mqtt::qos q) const noexcept {
    return !check_publish(q);
}

boost::system::error_code connection::check_publish(mqtt::qos q) const noexcept {
    if (state_ != state::connected) {
        return make_error_code(client_error::not_connected);
    }
    if (queued_bytes() >= options_.max_queued_bytes) {
        return make_error_code(client_error::queue_full);
    }
    if (q != mqtt::qos::at_most_once && free_ids_.empty()) {
        return make_error_code(client_error::window_full);
    }
    return {};
}

std::uint16_t connection::take_packet_id(mqtt::qos q) {
    if (q == mqtt::qos::at_most_once) {
        return 0;
    }
    const std::uint16_t id = free_ids_.back();
    free_ids_.pop_back();
    slots_[id - 1U] = 1;
    slot_qos_[id - 1U] = static_cast<std::uint8_t>(q);
    ++inflight_;
    return id;
}

std::uint16_t connection::next_control_id() {
    const std::uint16_t id = next_control_;
    next_control_ = next_control_ == 65535 ? control_base_ : static_cast<std::uint16_t>(id + 1);
    return id;
}

boost::system::result<std::uint16_t> connection::publish(const mqtt::publish& p) {
    if (const auto ec = check_publish(p.qos)) {
        return ec;
    }
    mqtt::publish q = p;
    q.dup = false;
    q.packet_id = q.qos == mqtt::qos::at_most_once ? 0 : 1; // sized with a placeholder
    const auto size = mqtt::encoded_size(q, version_);
    if (!size) {
        return size.error();
    }
    q.packet_id = take_packet_id(q.qos);
    const std::size_t at = queue_.size();
    queue_.resize(at + *size);
    const auto n = mqtt::encode(q, version_, std::span<std::uint8_t>(queue_.data() + at, *size));
    if (!n) {
        queue_.resize(at); // cannot happen once sized; keep the queue whole if it does
        return n.error();
    }
    schedule_write();
    return q.packet_id;
}

boost::system::result<prepared_publish> connection::publish(const publish_template& t) {
    if (const auto ec = check_publish(t.qos)) {
        return ec;
    }
    prepared_publish out;
    out.packet_id = take_packet_id(t.qos);
    const std::size_t at = queue_.size();
    queue_.resize(at + t.header.size() + t.payload_size); // the payload starts zeroed
    std::uint8_t* dst = queue_.data() + at;
    std::memcpy(dst, t.header.data(), t.header.size());
    if (out.packet_id != 0) {
        dst[t.packet_id_at] = static_cast<std::uint8_t>(out.packet_id >> 8);
        dst[t.packet_id_at + 1] = static_cast<std::uint8_t>(out.packet_id & 0xFF);
    }
    out.payload = std::span<std::uint8_t>(dst + t.header.size(), t.payload_size);
    schedule_write();
    return out;
}

boost::system::result<std::uint16_t>
connection::subscribe(std::span<const mqtt::subscription> subscriptions,
                      std::optional<std::uint32_t> subscription_identifier) {
    if (state_ != state::connecting && state_ != state::connected) {
        return make_error_code(client_error::not_connected);
    }
    mqtt::subscribe s;
    s.packet_id = next_control_id();
    s.subscriptions.assign(subscriptions.begin(), subscriptions.end());
    if (subscription_identifier && !mqtt::is_v3(version_)) {
        s.props.subscription_identifiers.push_back(*subscription_identifier);
    }
    if (!append_packet(s)) {
        return make_error_code(client_error::encode_failed);
    }
    schedule_write();
    return s.packet_id;
}

boost::system::result<std::uint16_t>
connection::unsubscribe(std::span<const std::string_view> filters) {
    if (state_ != state::connecting && state_ != state::connected) {
        return make_error_code(client_error::not_connected);
    }
    mqtt::unsubscribe u;
    u.packet_id = next_control_id();
    u.filters.assign(filters.begin(), filters.end());
    if (!append_packet(u)) {
        return make_error_code(client_error::encode_failed);
    }
    schedule_write();
    return u.packet_id;
}

bool connection::append_packet(const mqtt::packet& p) {
    const auto size = mqtt::encoded_size(p, version_);
    if (!size) {
        return false;
    }
    const std::size_t at = queue_.size();
    queue_.resize(at + *size);
    if (!mqtt::encode(p, version_, std::span<std::uint8_t>(queue_.data() + at, *size))) {
        queue_.resize(at);
        return false;
    }
    return true;
}

void connection::append_ack(std::uint8_t first_byte, std::uint16_t packet_id) {
    if (state_ != state::connected && state_ != state::connecting) {
        return; // nothing may follow DISCONNECT [MQTT-3.14.4-1]
    }
    const std::uint8_t bytes[4] = {first_byte, 2, static_cast<std::uint8_t>(packet_id >> 8),
                                   static_cast<std::uint8_t>(packet_id & 0xFF)};
    queue_.insert(queue_.end(), std::begin(bytes), std::end(bytes));
    schedule_write();
}

void connection::flush() {
    start_write();
}

void connection::tick(steady::time_point now) {
    switch (state_) {
    case state::connecting:
        if (now >= deadline_) {
            fail(make_error_code(client_error::connack_timeout), "timeout waiting for CONNACK");
        }
        return;
    case state::connected: {
        if (keep_alive_ == 0) {
            return;
        }
        const steady::duration ka = std::chrono::seconds(keep_alive_);
        if (ping_sent_) {
            // [MQTT-3.1.2-4]: a client that gets no PINGRESP "in a reasonable amount of time"
            // closes; one keep-alive interval is that time here.
            if (now - *ping_sent_ >= ka) {
                fail(make_error_code(client_error::keep_alive_timeout),
                     "no PINGRESP within keep-alive");
            }
            return;
        }
        if (wrote_) {
            // Bytes went out since the last tick: the server heard from us about then.
            wrote_ = false;
            last_write_ = now;
        }
        const auto margin = std::min<steady::duration>(options_.ping_margin, ka / 2);
        if (now >= last_write_ + ka - margin) {
            static constexpr std::uint8_t pingreq[] = {0xC0, 0x00};
            queue_.insert(queue_.end(), std::begin(pingreq), std::end(pingreq));
            ping_sent_ = now;
            ++counters_.pings_sent;
            last_write_ = now;
            start_write();
        }
        return;
    }
    case state::disconnecting:
        if (deadline_ == steady::time_point{}) {
            deadline_ = now + options_.close_timeout;
        } else if (now >= deadline_) {
            finish_disconnect(); // the server did not close: we do
        }
        return;
    case state::idle:
    case state::closed:
        return;
    }
}

void connection::disconnect(mqtt::reason_code reason) {
    if (state_ == state::closed || state_ == state::disconnecting) {
        return;
    }
    if (state_ != state::connected) {
        fail(make_error_code(client_error::not_connected), "disconnected before CONNACK");
        return;
    }
    mqtt::disconnect d;
    d.reason = reason;
    append_packet(d);
    state_ = state::disconnecting;
    deadline_ = {}; // the first tick() sets it
    schedule_write();
}

void connection::close() noexcept {
    if (state_ == state::closed) {
        return;
    }
    state_ = state::closed;
    transport_->close();
}

void connection::finish_disconnect() {
    if (state_ == state::closed) {
        return;
    }
    state_ = state::closed;
    transport_->close();
    if (handler_ != nullptr) {
        handler_->on_closed({}, {});
    }
}

void connection::fail(boost::system::error_code ec, std::string why) {
    if (state_ == state::closed) {
        return;
    }
    state_ = state::closed;
    transport_->close();
    if (handler_ != nullptr) {
        handler_->on_closed(ec, why);
    }
}

// Reading.

void connection::arm_read() {
    if (read_armed_ || state_ == state::closed) {
        return;
    }
    read_armed_ = true;
    transport_->wait_readable([self = shared_from_this()](boost::system::error_code ec) {
        self->read_armed_ = false;
        self->on_readable(ec);
    });
}

void connection::on_readable(boost::system::error_code ec) {
    if (state_ == state::closed) {
        return;
    }
    if (!ec) {
        // Room for the next read: drop consumed bytes, then grow for a packet bigger than the
        // buffer (the decoder said how big; see below).
        if (rpos_ == rend_) {
            rpos_ = rend_ = 0;
        } else if (rpos_ > 0 &&
                   (rend_ == rbuf_.size() || rbuf_.size() - rend_ < rbuf_.size() / 4)) {
            std::memmove(rbuf_.data(), rbuf_.data() + rpos_, rend_ - rpos_);
            rend_ -= rpos_;
            rpos_ = 0;
        }
        if (rend_ == rbuf_.size()) {
            rbuf_.resize(rbuf_.size() * 2);
        }
        const std::size_t n = transport_->try_read(
            std::span<std::uint8_t>(rbuf_.data() + rend_, rbuf_.size() - rend_), ec);
        if (net::is_would_block(ec)) {
            if (transport_->wants_write()) {
                start_write(); // a WebSocket pong
            }
            arm_read();
            return;
        }
        rend_ += n;
        counters_.bytes_received += n;
    }
    if (ec) {
        if (state_ == state::disconnecting) {
            finish_disconnect(); // the server closed after our DISCONNECT, as it should
            return;
        }
        auto why = transport_->describe_error();
        if (why.empty() && state_ == state::connecting && ec == asio::error::eof) {
            why = "closed by broker before CONNACK";
        }
        fail(ec, why);
        return;
    }
    const mqtt::decode_options opts{version_, options_.maximum_packet_size,
                                    mqtt::receiver_role::client};
    ++in_callback_;
    while (state_ != state::closed) {
        const std::span<const std::uint8_t> avail(rbuf_.data() + rpos_, rend_ - rpos_);
        const auto header = mqtt::decode_fixed_header(avail, opts);
        if (!header) {
            if (header.error() != mqtt::codec_error::need_more) {
                fail(make_error_code(client_error::malformed_packet),
                     std::string(state_ == state::connecting
                                     ? "not an MQTT broker? malformed CONNACK: "
                                     : "malformed packet from broker: ") +
                         std::string(mqtt::enumerator_name(
                             static_cast<mqtt::codec_error>(header.error().value()))));
            }
            break;
        }
        const std::size_t total = std::size_t{header->size} + header->remaining_length;
        if (avail.size() < total) {
            if (total > rbuf_.size()) {
                // A packet larger than the buffer: make room for all of it (the buffer stays).
                std::memmove(rbuf_.data(), rbuf_.data() + rpos_, rend_ - rpos_);
                rend_ -= rpos_;
                rpos_ = 0;
                rbuf_.resize(total);
            }
            break;
        }
        auto p =
            mqtt::decode_body(*header, avail.subspan(header->size, header->remaining_length), opts);
        if (!p) {
            fail(make_error_code(client_error::malformed_packet),
                 std::string(state_ == state::connecting ? "not an MQTT broker? malformed CONNACK: "
                                                         : "malformed packet from broker: ") +
                     std::string(
                         mqtt::enumerator_name(static_cast<mqtt::codec_error>(p.error().value()))));
            break;
        }
        rpos_ += total;
        dispatch(*p);
    }
    --in_callback_;
    if (state_ == state::closed) {
        return;
    }
    start_write(); // what the handlers queued goes out now, in one batch
    arm_read();
}

void connection::dispatch(const mqtt::packet& p) {
    if (const auto* ack = std::get_if<mqtt::connack>(&p)) {
        if (state_ != state::connecting) {
            fail(make_error_code(client_error::protocol_violation),
                 "unexpected CONNACK from broker");
            return;
        }
        on_connack(*ack);
        return;
    }
    if (state_ == state::connecting) {
        // The first packet from the server must be CONNACK [MQTT-3.2.0-1].
        if (const auto* d = std::get_if<mqtt::disconnect>(&p)) {
            fail(mqtt::make_error_code(d->reason),
                 "disconnected before CONNACK: " + std::string(mqtt::to_string(d->reason)));
        } else {
            fail(make_error_code(client_error::protocol_violation),
                 "unexpected " + std::string(mqtt::to_string(mqtt::type_of(p))) +
                     " before CONNACK");
        }
        return;
    }
    if (const auto* pub = std::get_if<mqtt::publish>(&p)) {
        on_publish(*pub);
    } else if (const auto* a = std::get_if<mqtt::puback>(&p)) {
        on_ack(mqtt::packet_type::puback, a->packet_id, a->reason);
    } else if (const auto* rec = std::get_if<mqtt::pubrec>(&p)) {
        on_ack(mqtt::packet_type::pubrec, rec->packet_id, rec->reason);
    } else if (const auto* comp = std::get_if<mqtt::pubcomp>(&p)) {
        on_ack(mqtt::packet_type::pubcomp, comp->packet_id, comp->reason);
    } else if (const auto* rel = std::get_if<mqtt::pubrel>(&p)) {
        // PUBCOMP even for an identifier we no longer hold: the server's PUBREL is a retry.
        inbound_qos2_.erase(rel->packet_id);
        append_ack(pubcomp_byte, rel->packet_id);
    } else if (const auto* sa = std::get_if<mqtt::suback>(&p)) {
        if (handler_ != nullptr) {
            handler_->on_suback(*sa);
        }
    } else if (const auto* ua = std::get_if<mqtt::unsuback>(&p)) {
        if (handler_ != nullptr) {
            handler_->on_unsuback(*ua);
        }
    } else if (std::holds_alternative<mqtt::pingresp>(p)) {
        ping_sent_.reset();
        ++counters_.pingresps;
        if (handler_ != nullptr) {
            handler_->on_pingresp();
        }
    } else if (const auto* d = std::get_if<mqtt::disconnect>(&p)) {
        fail(mqtt::make_error_code(d->reason),
             "DISCONNECT from broker: " + std::string(mqtt::to_string(d->reason)));
    } else {
        fail(make_error_code(client_error::protocol_violation),
             "unexpected " + std::string(mqtt::to_string(mqtt::type_of(p))) + " from broker");
    }
}

void connection::on_connack(const mqtt::connack& ack) {
    if (mqtt::is_failure(ack.reason)) {
        fail(mqtt::make_error_code(ack.reason),
             "connack: " + std::string(mqtt::to_string(ack.reason)));
        return;
    }
    state_ = state::connected;
    limit_ = std::min<std::uint16_t>(options_.inflight_window,
                                     ack.props.receive_maximum.value_or(65535));
    if (ack.props.server_keep_alive) {
        keep_alive_ = *ack.props.server_keep_alive; // [MQTT-3.2.2-21]
    }
    slots_.assign(limit_, 0);
    slot_qos_.assign(limit_, 0);
    free_ids_.clear();
    for (std::uint32_t id = limit_; id > 0; --id) {
        free_ids_.push_back(static_cast<std::uint16_t>(id)); // lowest first
    }
    if (handler_ != nullptr) {
        handler_->on_connected(ack);
    }
}

void connection::on_publish(const mqtt::publish& p) {
    bool deliver = true;
    if (p.qos == mqtt::qos::at_least_once) {
        append_ack(puback_byte, p.packet_id);
    } else if (p.qos == mqtt::qos::exactly_once) {
        // Method B of [MQTT-4.3.3]: deliver on PUBLISH, then refuse the identifier until
        // PUBREL, so a resend (DUP) before PUBREL is not delivered again.
        deliver = inbound_qos2_.insert(p.packet_id).second;
        append_ack(pubrec_byte, p.packet_id);
    }
    if (deliver && handler_ != nullptr) {
        handler_->on_message(p);
    }
}

void connection::on_ack(mqtt::packet_type type, std::uint16_t packet_id, mqtt::reason_code rc) {
    const std::size_t index = packet_id == 0 ? slots_.size() : std::size_t{packet_id} - 1U;
    const std::uint8_t expected = type == mqtt::packet_type::pubcomp ? 2 : 1;
    const bool qos1 = index < slots_.size() && slot_qos_[index] == 1;
    if (index >= slots_.size() || slots_[index] != expected ||
        (type == mqtt::packet_type::puback) != qos1) {
        ++counters_.unexpected_acks;
        if (handler_ != nullptr) {
            handler_->on_unexpected_ack(type, packet_id);
        }
        return;
    }
    if (type == mqtt::packet_type::pubrec && !mqtt::is_failure(rc)) {
        slots_[index] = 2;
        append_ack(pubrel_byte, packet_id);
        return;
    }
    slots_[index] = 0;
    free_ids_.push_back(packet_id);
    --inflight_;
    if (handler_ != nullptr) {
        handler_->on_publish_done(packet_id, rc);
        if (state_ != state::closed && handler_ != nullptr) {
            handler_->on_progress();
        }
    }
}

// Writing.

void connection::schedule_write() {
    if (in_callback_ > 0 || write_posted_ || write_waiting_ || state_ == state::closed) {
        return; // the end of the running handler, or the writability wait, writes it
    }
    write_posted_ = true;
    asio::post(transport_->get_executor(), [self = shared_from_this()] {
        self->write_posted_ = false;
        self->start_write();
    });
}

void connection::start_write() {
    if (write_waiting_ || state_ == state::closed || state_ == state::idle) {
        return;
    }
    ++in_callback_;
    for (;;) {
        if (write_pos_ == writing_.size()) {
            if (writing_.capacity() > keep_buffer_capacity) {
                writing_ = {};
            } else {
                writing_.clear();
            }
            write_pos_ = 0;
            if (queue_.empty()) {
                if (transport_->wants_write()) {
                    boost::system::error_code ec;
                    transport_->try_write({}, ec);
                    if (net::is_would_block(ec)) {
                        wait_writable();
                    } else if (ec) {
                        fail(ec, transport_->describe_error());
                    }
                }
                break;
            }
            writing_.swap(queue_);
        }
        const asio::const_buffer b(writing_.data() + write_pos_, writing_.size() - write_pos_);
        boost::system::error_code ec;
        const std::size_t n = transport_->try_write(std::span<const asio::const_buffer>(&b, 1), ec);
        write_pos_ += n;
        counters_.bytes_sent += n;
        wrote_ = wrote_ || n > 0;
        if (net::is_would_block(ec) || (!ec && n == 0)) {
            wait_writable();
            break;
        }
        if (ec) {
            if (state_ == state::disconnecting) {
                finish_disconnect();
            } else {
                fail(ec, transport_->describe_error());
            }
            break;
        }
        if (write_pos_ == writing_.size()) {
            if (state_ == state::connected && handler_ != nullptr) {
                handler_->on_progress(); // may queue more: the loop takes it
            }
            if (state_ == state::closed) {
                break;
            }
        }
    }
    --in_callback_;
}

void connection::wait_writable() {
    if (write_waiting_ || state_ == state::closed) {
        return;
    }
    write_waiting_ = true;
    transport_->wait_writable([self = shared_from_this()](boost::system::error_code ec) {
        self->write_waiting_ = false;
        if (self->state_ == state::closed) {
            return;
        }
        if (ec) {
            self->fail(ec, self->transport_->describe_error());
            return;
        }
        self->start_write();
    });
}

} // namespace tern::client
