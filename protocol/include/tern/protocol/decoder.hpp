#pragma once
/// Bytes in, packets out. Validates everything the specification lets a receiver check on a
/// single packet; checks that need session state (packet identifiers in use, topic alias
/// ranges, Receive Maximum) belong to the broker.
///
/// Thread contract: free functions are thread-safe; a stream_decoder is owned by one thread
/// (its connection's worker).

#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <tern/protocol/error.hpp>
#include <tern/protocol/packets.hpp>

namespace tern::protocol {

/// Which side receives: a server never accepts CONNACK, SUBACK, UNSUBACK or PINGRESP; a client
/// never accepts CONNECT, SUBSCRIBE, UNSUBSCRIBE or PINGREQ. `any` accepts every type (tools).
enum class receiver_role : std::uint8_t { any, server, client };

struct decode_options {
    /// Version of every packet but CONNECT, which carries its own protocol level.
    protocol_version version = protocol_version::v5;
    /// Largest whole packet accepted (fixed header included), checked from the fixed header
    /// before the body is buffered. Brokers use a small cap until CONNECT is accepted.
    std::uint32_t maximum_packet_size = max_packet_size;
    receiver_role role = receiver_role::any;
};

/// The fixed header [MQTT-2.1.1].
struct fixed_header {
    packet_type type{};
    std::uint8_t flags = 0; ///< low nibble of the first byte
    std::uint32_t remaining_length = 0;
    std::uint8_t size = 0; ///< bytes of the fixed header itself: 2..5
};

/// Parses and checks a fixed header at the front of `input`: packet type for the version and
/// role, reserved flag bits, Remaining Length (at most 4 bytes, minimal), and the whole
/// packet size against options.maximum_packet_size. need_more if `input` ends inside it.
boost::system::result<fixed_header> decode_fixed_header(std::span<const std::uint8_t> input,
                                                        const decode_options& options) noexcept;

/// Decodes the body of one packet whose fixed header is `header`. `body` must hold exactly
/// header.remaining_length bytes; the packet's views point into it.
boost::system::result<packet> decode_body(const fixed_header& header,
                                          std::span<const std::uint8_t> body,
                                          const decode_options& options);

/// Result of decode(): the packet and how many bytes of the input it used.
struct decoded_packet {
    received_packet packet;
    std::size_t consumed = 0;
};

/// Decodes the first whole packet of `input` (copying its body into fresh shared storage);
/// need_more when `input` does not hold a whole packet yet.
boost::system::result<decoded_packet> decode(std::span<const std::uint8_t> input,
                                             const decode_options& options);

/// A streaming decoder over a byte stream cut at arbitrary points (one byte at a time works).
///
/// Usage: for each chunk read from the socket, call next(chunk) until it returns need_more;
/// next() advances the span past what it consumed. The body of each packet is copied once,
/// straight from the caller's chunk into the packet's own shared storage, allocated only after
/// the fixed header passed the size check. After any error other than need_more the decoder is
/// failed: it returns that error again until reset().
class stream_decoder {
public:
    explicit stream_decoder(decode_options options = {}) noexcept : options_(options) {}

    /// Options for the packets still to come, e.g. the version once CONNECT is accepted.
    decode_options& options() noexcept { return options_; }
    const decode_options& options() const noexcept { return options_; }

    /// Consumes bytes from the front of `input` and returns the next whole packet, or
    /// codec_error::need_more once `input` is exhausted mid-packet (or empty).
    boost::system::result<received_packet> next(std::span<const std::uint8_t>& input);

    /// The same, decoding into `out` (the packet is built in place, never moved: the form for
    /// a connection's read loop). On error `out` holds an unspecified packet.
    boost::system::error_code next(std::span<const std::uint8_t>& input, received_packet& out);

    /// True when part of a packet is buffered (a peer that goes silent now sent a truncated
    /// packet).
    bool mid_packet() const noexcept { return header_bytes_ != 0; }

    /// Bytes buffered for the packet in progress (memory accounting).
    std::size_t buffered_bytes() const noexcept { return body_filled_ + header_bytes_; }

    /// Forgets any partial packet and a previous failure.
    void reset() noexcept;

private:
    void start_body();

    decode_options options_;
    std::uint8_t header_buf_[5] = {};
    std::uint8_t header_bytes_ = 0; ///< bytes of the current packet's fixed header seen so far
    bool header_done_ = false;
    fixed_header header_{};
    std::shared_ptr<std::uint8_t[]> body_;
    std::size_t body_filled_ = 0;
    boost::system::error_code failed_;
};

} // namespace tern::protocol
