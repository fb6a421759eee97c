#pragma once
/// The server side of RFC 6455 framing as pure functions (no sockets, no clocks): the
/// deframer that turns a client's masked frames into the MQTT byte stream in place, the header
/// encoder for the broker's unmasked frames, and the HTTP upgrade handshake's answer. The
/// WebSocket transport (websocket_transport.hpp) drives these over any inner transport; the
/// fuzzer and the unit tests drive them directly.
///
/// MQTT over WebSocket [MQTT-6.0.0-1..4]: MQTT packets travel in binary data frames only, may
/// be split across frames and several may share one; a text frame is a reason to close.
///
/// Thread contract: plain values; one deframer per connection, used by its worker.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern::net::websocket {

enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

/// Close status codes (RFC 6455 §7.4.1) the broker sends.
enum class close_code : std::uint16_t {
    normal = 1000,
    going_away = 1001,
    protocol_error = 1002,
    unsupported_data = 1003, ///< a text frame [MQTT-6.0.0-1]
    message_too_big = 1009,
};

/// Why the deframer stopped: the stream is unusable after any of these.
enum class frame_error : std::uint8_t {
    none,
    unmasked_frame,          ///< client frames must be masked (RFC 6455 §5.1)
    masked_frame,            ///< server frames must not be masked (RFC 6455 §5.1)
    reserved_bits,           ///< RSV1-3 set without a negotiated extension
    reserved_opcode,         ///< opcodes 3-7 and 0xB-0xF
    text_frame,              ///< [MQTT-6.0.0-1]
    fragmented_control,      ///< control frames must not be fragmented (§5.5)
    control_too_long,        ///< control frame payload over 125 bytes (§5.5)
    length_not_minimal,      ///< 64-bit length with the top bit set
    unexpected_continuation, ///< a continuation frame with no message to continue
    data_interleaved,        ///< a new data frame inside a fragmented message
    frame_too_large,         ///< payload over the configured maximum
    invalid_close, ///< a 1-byte close payload or a status a peer must not send (RFC 6455 7.4)
};

/// The text of an error, for log lines.
std::string_view to_string(frame_error e) noexcept;
/// The close code that answers an error.
close_code close_code_for(frame_error e) noexcept;

/// Decodes the peer's frames in place. Feed it each chunk read from the network; it moves the
/// (unmasked) payload of data frames to the front of the chunk and returns how many bytes that
/// is. A frame header cut between two chunks is kept (at most 14 bytes), as is a control
/// frame's payload (at most 125). The broker decodes a client's frames (masked, RFC 6455 §5.1);
/// tern::client decodes a server's (never masked).
class deframer {
public:
    /// Whose frames this deframer reads.
    enum class from : std::uint8_t {
        client, ///< frames must be masked
        server, ///< frames must not be masked
    };
    /// `max_frame_payload`: the largest data frame payload accepted (frame_too_large above it);
    /// MQTT's own Maximum Packet Size still applies to what the frames carry.
    explicit deframer(std::uint64_t max_frame_payload = 268'435'460U, from peer = from::client)
        : max_frame_payload_(max_frame_payload), peer_(peer) {}

    struct result {
        std::size_t payload = 0; ///< bytes of MQTT stream now at the front of the chunk
        frame_error error = frame_error::none;
    };
    /// Processes `size` bytes at `data`. After an error the deframer refuses everything.
    result feed(std::uint8_t* data, std::size_t size);

    /// Payloads of ping frames received since the last call, to be answered with pongs.
    std::vector<std::string> take_pings() { return std::exchange(pings_, {}); }
    /// Set once a close frame has arrived: its status code (1005 when it carried none).
    std::optional<std::uint16_t> close_received() const noexcept { return close_; }

private:
    std::uint64_t max_frame_payload_;
    from peer_;
    bool masked_ = false; ///< the current frame carries a mask key
    std::array<std::uint8_t, 14> header_{};
    std::size_t header_len_ = 0;
    bool in_frame_ = false;   ///< reading a frame's payload
    bool in_message_ = false; ///< a fragmented data message is open
    opcode frame_opcode_ = opcode::binary;
    std::uint64_t remaining_ = 0;
    std::array<std::uint8_t, 4> mask_{};
    std::size_t mask_pos_ = 0;
    std::string control_; ///< payload of the control frame being read
    std::vector<std::string> pings_;
    std::optional<std::uint16_t> close_;
    frame_error failed_ = frame_error::none;
};

/// The header of an unmasked server frame (FIN set) for `payload_size` bytes: 2, 4 or 10 bytes.
struct frame_header {
    std::array<std::uint8_t, 10> bytes{};
    std::size_t size = 0;
};
frame_header encode_header(opcode op, std::uint64_t payload_size) noexcept;

/// A whole unmasked control frame (close, ping or pong) with `payload` (≤ 125 bytes, cut if
/// longer).
std::string control_frame(opcode op, std::string_view payload);
/// A close frame with `code` and an optional reason.
std::string close_frame(close_code code, std::string_view reason = {});

// HTTP header helpers shared by the upgrade's two sides (server answer, client check).
/// ASCII lower case.
std::string ascii_lower(std::string_view s);
/// Without leading and trailing spaces and tabs.
std::string_view trim_http_space(std::string_view s);
/// True when the comma-separated header value lists `token` (compared case-insensitively;
/// `token` in lower case).
bool header_lists_token(std::string_view value, std::string_view token);

/// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 §4.2.2).
std::string accept_key(std::string_view client_key);

/// The outcome of an HTTP upgrade request: the response to send, and when it is accepted,
/// the agreed subprotocol and the request path.
struct upgrade_answer {
    bool accepted = false;
    std::string response; ///< the whole HTTP response (101, or an error with a text body)
    std::string protocol; ///< "mqtt" or "mqttv3.1"
    std::string path;
    std::string error; ///< why it was refused, for the log
};

/// Answers the request head `request` (everything up to and including the blank line). Any
/// path is accepted (mosquitto does; AWS uses /mqtt). The subprotocol must be mqtt or
/// mqttv3.1 — a request without it gets 400 naming what is missing.
upgrade_answer answer_upgrade(std::string_view request);

} // namespace tern::net::websocket
