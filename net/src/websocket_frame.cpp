#include <tern/net/websocket_frame.hpp>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

namespace tern::net::websocket {

namespace http = boost::beast::http;

std::string_view to_string(frame_error e) noexcept {
    switch (e) {
    case frame_error::none:
        return "none";
    case frame_error::unmasked_frame:
        return "unmasked client frame";
    case frame_error::masked_frame:
        return "masked server frame";
    case frame_error::reserved_bits:
        return "reserved bits set";
    case frame_error::reserved_opcode:
        return "reserved opcode";
    case frame_error::text_frame:
        return "text frame (MQTT needs binary frames)";
    case frame_error::fragmented_control:
        return "fragmented control frame";
    case frame_error::control_too_long:
        return "control frame over 125 bytes";
    case frame_error::length_not_minimal:
        return "invalid 64-bit frame length";
    case frame_error::unexpected_continuation:
        return "continuation frame without a message";
    case frame_error::data_interleaved:
        return "new data frame inside a fragmented message";
    case frame_error::frame_too_large:
        return "frame too large";
    case frame_error::invalid_close:
        return "invalid close frame";
    }
    return "unknown";
}

close_code close_code_for(frame_error e) noexcept {
    switch (e) {
    case frame_error::text_frame:
        return close_code::unsupported_data;
    case frame_error::frame_too_large:
        return close_code::message_too_big;
    default:
        return close_code::protocol_error;
    }
}

deframer::result deframer::feed(std::uint8_t* data, std::size_t size) {
    result r;
    if (failed_ != frame_error::none) {
        r.error = failed_;
        return r;
    }
    auto fail = [&](frame_error e) {
        failed_ = e;
        r.error = e;
        return r;
    };
    std::size_t in = 0;
    std::size_t out = 0;
    while (in < size) {
        if (!in_frame_) {
            // Gather the header: 2 bytes, then the extended length and the mask key.
            header_[header_len_++] = data[in++];
            if (header_len_ < 2) {
                continue;
            }
            const std::uint8_t b0 = header_[0];
            const std::uint8_t b1 = header_[1];
            const std::uint8_t len7 = b1 & 0x7F;
            const std::size_t ext = len7 == 126 ? 2 : (len7 == 127 ? 8 : 0);
            const std::size_t need = 2 + ext + ((b1 & 0x80) != 0 ? 4 : 0);
            if (header_len_ == 2) {
                if ((b0 & 0x70) != 0) {
                    return fail(frame_error::reserved_bits);
                }
                const bool has_mask = (b1 & 0x80) != 0;
                if (peer_ == from::client && !has_mask) {
                    return fail(frame_error::unmasked_frame);
                }
                if (peer_ == from::server && has_mask) {
                    return fail(frame_error::masked_frame);
                }
                const auto op = static_cast<std::uint8_t>(b0 & 0x0F);
                const bool fin = (b0 & 0x80) != 0;
                const bool control = (op & 0x08) != 0;
                if (op == 0x1) {
                    return fail(frame_error::text_frame);
                }
                if (op != 0x0 && op != 0x2 && op != 0x8 && op != 0x9 && op != 0xA) {
                    return fail(frame_error::reserved_opcode);
                }
                if (control && (!fin)) {
                    return fail(frame_error::fragmented_control);
                }
                if (control && len7 > 125) {
                    return fail(frame_error::control_too_long);
                }
                if (op == 0x0 && !in_message_) {
                    return fail(frame_error::unexpected_continuation);
                }
                if (op == 0x2 && in_message_) {
                    return fail(frame_error::data_interleaved);
                }
            }
            if (header_len_ < need) {
                continue;
            }
            std::uint64_t len = len7;
            if (ext == 2) {
                len = (std::uint64_t{header_[2]} << 8) | header_[3];
            } else if (ext == 8) {
                len = 0;
                for (std::size_t i = 0; i < 8; ++i) {
                    len = (len << 8) | header_[2 + i];
                }
                if ((len >> 63) != 0) {
                    return fail(frame_error::length_not_minimal);
                }
            }
            frame_opcode_ = static_cast<opcode>(b0 & 0x0F);
            const bool fin = (b0 & 0x80) != 0;
            const bool control = (b0 & 0x08) != 0;
            if (!control) {
                if (len > max_frame_payload_) {
                    return fail(frame_error::frame_too_large);
                }
                in_message_ = !fin; // a FIN data frame ends the message
            }
            masked_ = (b1 & 0x80) != 0;
            if (masked_) {
                std::memcpy(mask_.data(), header_.data() + 2 + ext, 4);
            }
            mask_pos_ = 0;
            remaining_ = len;
            header_len_ = 0;
            in_frame_ = true;
            control_.clear();
        }
        // Payload bytes of the current frame available in this chunk.
        const auto n = static_cast<std::size_t>(
            std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(size - in)));
        const bool control = (static_cast<std::uint8_t>(frame_opcode_) & 0x08) != 0;
        if (masked_) {
            // Unmask in place first (before the bytes move): mask_pos_ runs over the frame.
            for (std::size_t i = 0; i < n; ++i) {
                data[in + i] = static_cast<std::uint8_t>(data[in + i] ^ mask_[mask_pos_++ & 3]);
            }
        }
        if (control) {
            control_.append(reinterpret_cast<const char*>(data + in), n);
        } else {
            // Move to the front: `out` never passes `in`, so this is safe in place.
            if (out != in) {
                std::memmove(data + out, data + in, n);
            }
            out += n;
        }
        in += n;
        remaining_ -= n;
        if (remaining_ == 0) {
            in_frame_ = false;
            if (frame_opcode_ == opcode::ping) {
                pings_.push_back(control_);
            } else if (frame_opcode_ == opcode::close && !close_) {
                if (control_.size() == 1) {
                    return fail(frame_error::invalid_close);
                }
                const auto code =
                    control_.size() >= 2
                        ? static_cast<std::uint16_t>((static_cast<std::uint8_t>(control_[0]) << 8) |
                                                     static_cast<std::uint8_t>(control_[1]))
                        : std::uint16_t{1005};
                // Codes a peer may not send: below 1000, 1004-1006 and 1015 (reserved or
                // local-only), 1016-2999 (reserved for the protocol).
                if (control_.size() >= 2 && (code < 1000 || (code >= 1004 && code <= 1006) ||
                                             (code >= 1015 && code <= 2999))) {
                    return fail(frame_error::invalid_close);
                }
                close_ = code;
            }
        }
    }
    r.payload = out;
    return r;
}

frame_header encode_header(opcode op, std::uint64_t payload_size) noexcept {
    frame_header h;
    h.bytes[0] = static_cast<std::uint8_t>(0x80 | static_cast<std::uint8_t>(op));
    if (payload_size < 126) {
        h.bytes[1] = static_cast<std::uint8_t>(payload_size);
        h.size = 2;
    } else if (payload_size <= 0xFFFF) {
        h.bytes[1] = 126;
        h.bytes[2] = static_cast<std::uint8_t>(payload_size >> 8);
        h.bytes[3] = static_cast<std::uint8_t>(payload_size);
        h.size = 4;
    } else {
        h.bytes[1] = 127;
        for (std::size_t i = 0; i < 8; ++i) {
            h.bytes[2 + i] = static_cast<std::uint8_t>(payload_size >> (56 - 8 * i));
        }
        h.size = 10;
    }
    return h;
}

std::string control_frame(opcode op, std::string_view payload) {
    payload = payload.substr(0, 125);
    const auto h = encode_header(op, payload.size());
    std::string out(reinterpret_cast<const char*>(h.bytes.data()), h.size);
    out.append(payload);
    return out;
}

std::string close_frame(close_code code, std::string_view reason) {
    std::string payload;
    const auto c = static_cast<std::uint16_t>(code);
    payload.push_back(static_cast<char>(c >> 8));
    payload.push_back(static_cast<char>(c & 0xFF));
    payload.append(reason.substr(0, 123));
    return control_frame(opcode::close, payload);
}

std::string accept_key(std::string_view client_key) {
    static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string input(client_key);
    input.append(guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    const int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(n));
}

std::string ascii_lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim_http_space(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

bool header_lists_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        const auto comma = value.find(',');
        if (ascii_lower(trim_http_space(value.substr(0, comma))) == token) {
            return true;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        value.remove_prefix(comma + 1);
    }
    return false;
}

namespace {

upgrade_answer refuse(http::status status, std::string why) {
    upgrade_answer a;
    a.error = why;
    a.response =
        fmt::format("HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: "
                    "{}\r\nConnection: close\r\n",
                    static_cast<unsigned>(status), http::obsolete_reason(status), why.size() + 1);
    if (status == http::status::upgrade_required) {
        a.response += "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
    }
    a.response += "\r\n" + why + "\n";
    return a;
}

} // namespace

upgrade_answer answer_upgrade(std::string_view request) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(request.size() + 1));
    parser.eager(false);
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(request.data(), request.size()), ec);
    if (ec || !parser.is_header_done()) {
        return refuse(http::status::bad_request,
                      fmt::format("malformed HTTP request ({})", ec ? ec.message() : "incomplete"));
    }
    const auto& req = parser.get();
    if (req.method() != http::verb::get) {
        return refuse(http::status::method_not_allowed,
                      "a WebSocket upgrade must be a GET request");
    }
    if (req.version() < 11) {
        return refuse(http::status::bad_request, "a WebSocket upgrade needs HTTP/1.1");
    }
    const auto upgrade = req[http::field::upgrade];
    const auto connection = req[http::field::connection];
    if (!header_lists_token({upgrade.data(), upgrade.size()}, "websocket") ||
        !header_lists_token({connection.data(), connection.size()}, "upgrade")) {
        return refuse(http::status::upgrade_required,
                      "this is an MQTT over WebSocket listener: send a WebSocket upgrade "
                      "request (Upgrade: websocket, Connection: Upgrade)");
    }
    const auto version = req[http::field::sec_websocket_version];
    if (trim_http_space({version.data(), version.size()}) != "13") {
        return refuse(http::status::upgrade_required, "Sec-WebSocket-Version must be 13");
    }
    const auto key = trim_http_space(
        {req[http::field::sec_websocket_key].data(), req[http::field::sec_websocket_key].size()});
    if (key.size() != 24) {
        return refuse(http::status::bad_request, "missing or invalid Sec-WebSocket-Key");
    }
    // The first of the client's subprotocols that is MQTT's, in the client's order.
    std::string protocol;
    const auto fields = req.equal_range(http::field::sec_websocket_protocol);
    for (auto it = fields.first; it != fields.second; ++it) {
        std::string_view value(it->value().data(), it->value().size());
        while (!value.empty() && protocol.empty()) {
            const auto comma = value.find(',');
            const auto item = ascii_lower(trim_http_space(value.substr(0, comma)));
            if (item == "mqtt" || item == "mqttv3.1") {
                protocol = item;
            }
            if (comma == std::string_view::npos) {
                break;
            }
            value.remove_prefix(comma + 1);
        }
        if (!protocol.empty()) {
            break;
        }
    }
    if (protocol.empty()) {
        return refuse(http::status::bad_request,
                      "no MQTT subprotocol: Sec-WebSocket-Protocol must offer mqtt or mqttv3.1");
    }
    upgrade_answer a;
    a.accepted = true;
    a.protocol = protocol;
    a.path = std::string(req.target());
    a.response = fmt::format("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n"
                             "Sec-WebSocket-Protocol: {}\r\n\r\n",
                             accept_key(key), protocol);
    return a;
}

} // namespace tern::net::websocket
