#pragma once
/// Packets in, bytes out, into buffers the caller owns. A PUBLISH can be written as a header
/// (fixed header, topic, packet identifier, properties) plus the payload straight from its own
/// buffer, so fan-out and forwarding never copy payloads (scatter/gather).
///
/// What the encoder checks: lengths (strings, Remaining Length), value ranges (QoS, Retain
/// Handling, Topic Alias 0, Subscription Identifier), packet identifiers, and that each reason
/// code is one the packet type (and version) can carry. What it does not re-check: topic names
/// and filters, which come validated from the decoder or from configuration.
///
/// Versions: CONNECT is written in its own `connect::version` (the argument is ignored). In
/// 3.1.1, properties are not written; CONNACK and SUBACK reason codes are mapped to 3.1.1 return
/// codes; a success-class reason code elsewhere is not written; a failure one is not_encodable.
///
/// Thread contract: thread-safe (pure functions).

#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <tern/protocol/error.hpp>
#include <tern/protocol/packets.hpp>

namespace tern::protocol {

/// Bytes `p` takes on the wire in `version`. Errors: string_too_long, packet_too_large (over
/// the Remaining Length limit), not_encodable (a value the version cannot carry, e.g. AUTH
/// in 3.1.1, QoS 3, packet identifier 0 where one is required).
boost::system::result<std::size_t> encoded_size(const packet& p, protocol_version version);

/// Writes `p` to the front of `out`; returns the bytes written. buffer_too_small when `out` is
/// shorter than encoded_size(). Nothing is written when an error is returned.
boost::system::result<std::size_t> encode(const packet& p, protocol_version version,
                                          std::span<std::uint8_t> out);

/// Convenience for tools and tests: encode into a new vector.
boost::system::result<std::vector<std::uint8_t>> encode_to_vector(const packet& p,
                                                                  protocol_version version);

/// The sizes of a PUBLISH split for scatter/gather.
struct publish_layout {
    std::size_t header_size = 0; ///< fixed header + topic + packet id + properties
    std::size_t total_size = 0;  ///< header_size + payload size
};

/// Sizes of `p` when written as header + payload.
boost::system::result<publish_layout> publish_size(const publish& p, protocol_version version);

/// Writes everything of `p` except the payload into `out` and returns the layout; the caller
/// sends `out[0, header_size)` followed by `p.payload` (e.g. as two asio const_buffers).
boost::system::result<publish_layout>
encode_publish_header(const publish& p, protocol_version version, std::span<std::uint8_t> out);

} // namespace tern::protocol
