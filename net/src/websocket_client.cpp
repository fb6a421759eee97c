#include <tern/net/websocket_client.hpp>

#include <boost/asio/post.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <fmt/format.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <random>

namespace tern::net {

namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace websocket {

namespace {

void random_bytes(std::uint8_t* out, std::size_t n) {
    if (RAND_bytes(out, static_cast<int>(n)) != 1) {
        // OpenSSL's DRBG failing is near impossible; masking keys only need to be unguessable
        // by scripts in a browser (RFC 6455 §10.3), so a seeded PRNG is an acceptable fallback.
        thread_local std::mt19937 fallback{std::random_device{}()};
        for (std::size_t i = 0; i < n; ++i) {
            out[i] = static_cast<std::uint8_t>(fallback());
        }
    }
}

std::array<std::uint8_t, 4> random_mask() {
    std::array<std::uint8_t, 4> m{};
    random_bytes(m.data(), m.size());
    return m;
}

} // namespace

std::string make_client_key() {
    std::uint8_t raw[16];
    random_bytes(raw, sizeof raw);
    unsigned char encoded[4 * ((sizeof raw + 2) / 3) + 1];
    const int n = EVP_EncodeBlock(encoded, raw, sizeof raw);
    return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(n));
}

std::string make_upgrade_request(std::string_view host, std::string_view path,
                                 std::string_view protocol, std::string_view key) {
    return fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: {}\r\n"
                       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
                       path.empty() ? "/" : path, host, key, protocol);
}

upgrade_check check_upgrade_response(std::string_view head, std::string_view key,
                                     std::string_view protocol) {
    upgrade_check c;
    http::response_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(head.size() + 1));
    parser.eager(false);
    boost::system::error_code ec;
    parser.put(asio::buffer(head.data(), head.size()), ec);
    if (ec || !parser.is_header_done()) {
        c.error = fmt::format("malformed HTTP answer ({})", ec ? ec.message() : "incomplete");
        return c;
    }
    const auto& res = parser.get();
    if (res.result_int() != 101) {
        c.error = fmt::format("HTTP {} {}", res.result_int(),
                              std::string_view(res.reason().data(), res.reason().size()));
        return c;
    }
    const auto upgrade = res[http::field::upgrade];
    const auto connection = res[http::field::connection];
    if (!header_lists_token({upgrade.data(), upgrade.size()}, "websocket") ||
        !header_lists_token({connection.data(), connection.size()}, "upgrade")) {
        c.error = "101 answer without Upgrade: websocket / Connection: Upgrade";
        return c;
    }
    const auto accept = res[http::field::sec_websocket_accept];
    if (trim_http_space({accept.data(), accept.size()}) != accept_key(key)) {
        c.error = "Sec-WebSocket-Accept does not match the key sent";
        return c;
    }
    const auto agreed = res[http::field::sec_websocket_protocol];
    const auto agreed_text = ascii_lower(trim_http_space({agreed.data(), agreed.size()}));
    if (!agreed_text.empty() && agreed_text != ascii_lower(protocol)) {
        c.error = fmt::format("the server chose subprotocol '{}', not '{}'", agreed_text, protocol);
        return c;
    }
    c.accepted = true;
    c.protocol = agreed_text;
    return c;
}

masked_header encode_masked_header(opcode op, std::uint64_t payload_size,
                                   std::array<std::uint8_t, 4> mask) noexcept {
    masked_header h;
    const auto plain = encode_header(op, payload_size);
    std::memcpy(h.bytes.data(), plain.bytes.data(), plain.size);
    h.bytes[1] |= 0x80;
    std::memcpy(h.bytes.data() + plain.size, mask.data(), 4);
    h.size = plain.size + 4;
    return h;
}

std::string masked_control_frame(opcode op, std::string_view payload,
                                 std::array<std::uint8_t, 4> mask) {
    payload = payload.substr(0, 125);
    const auto h = encode_masked_header(op, payload.size(), mask);
    std::string out(reinterpret_cast<const char*>(h.bytes.data()), h.size);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        out.push_back(static_cast<char>(static_cast<std::uint8_t>(payload[i]) ^ mask[i & 3]));
    }
    return out;
}

} // namespace websocket

namespace ws = websocket;

namespace {

boost::system::error_code protocol_error() {
    return boost::system::errc::make_error_code(boost::system::errc::protocol_error);
}

std::string close_payload(std::uint16_t code) {
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    return payload;
}

} // namespace

websocket_client_transport::websocket_client_transport(std::unique_ptr<transport> inner,
                                                       websocket_client_options options)
    : inner_(std::move(inner)), options_(std::move(options)) {
    if (options_.max_frame_payload == 0) {
        options_.max_frame_payload = 256 * 1024;
    }
    peer_ = inner_->peer();
    peer_.transport = peer_.tls ? "wss" : "ws";
    peer_.websocket_path = options_.path.empty() ? "/" : options_.path;
}

std::string websocket_client_transport::describe_error() const {
    return error_.empty() ? inner_->describe_error() : error_;
}

handshake_status websocket_client_transport::handshake(boost::system::error_code& ec) {
    ec.clear();
    if (failed_) {
        ec = protocol_error();
        return handshake_status::failed;
    }
    if (upgraded_) {
        return handshake_status::done;
    }
    if (request_.empty()) {
        key_ = ws::make_client_key();
        request_ = ws::make_upgrade_request(options_.host.empty() ? "127.0.0.1" : options_.host,
                                            options_.path, options_.protocol, key_);
    }
    while (request_sent_ < request_.size()) {
        const asio::const_buffer b(request_.data() + request_sent_,
                                   request_.size() - request_sent_);
        const auto n = inner_->try_write(std::span<const asio::const_buffer>(&b, 1), ec);
        request_sent_ += n;
        if (is_would_block(ec) || (!ec && n == 0)) {
            ec.clear();
            return handshake_status::want_write;
        }
        if (ec) {
            return handshake_status::failed;
        }
    }
    std::array<std::uint8_t, 1024> chunk{};
    for (;;) {
        const auto n = inner_->try_read(chunk, ec);
        if (is_would_block(ec)) {
            ec.clear();
            return handshake_status::want_read;
        }
        if (ec) {
            if (ec == asio::error::eof) {
                error_ = "WebSocket upgrade failed: connection closed by the server";
            }
            return handshake_status::failed;
        }
        const std::size_t before = response_.size();
        response_.append(reinterpret_cast<const char*>(chunk.data()), n);
        const auto end = response_.find("\r\n\r\n", before > 3 ? before - 3 : 0);
        if (end == std::string::npos) {
            if (response_.size() > options_.max_response_bytes) {
                error_ = fmt::format("WebSocket upgrade failed: answer headers over {} bytes",
                                     options_.max_response_bytes);
                failed_ = true;
                ec = protocol_error();
                return handshake_status::failed;
            }
            continue;
        }
        const auto check = ws::check_upgrade_response(
            std::string_view(response_).substr(0, end + 4), key_, options_.protocol);
        if (!check.accepted) {
            error_ = "WebSocket upgrade refused: " + check.error;
            failed_ = true;
            ec = protocol_error();
            return handshake_status::failed;
        }
        upgraded_ = true;
        peer_.websocket_protocol = check.protocol.empty() ? options_.protocol : check.protocol;
        pending_in_ = response_.substr(end + 4);
        response_ = {};
        request_ = {};
        return handshake_status::done;
    }
}

void websocket_client_transport::wait_readable(wait_handler handler) {
    if (!pending_in_.empty()) {
        asio::post(inner_->get_executor(),
                   [h = std::move(handler)]() mutable { h(boost::system::error_code()); });
        return;
    }
    inner_->wait_readable(std::move(handler));
}

void websocket_client_transport::queue_control(ws::opcode op, std::string_view payload) {
    control_out_ += ws::masked_control_frame(op, payload, ws::random_mask());
}

bool websocket_client_transport::flush_control(boost::system::error_code& ec) {
    while (!control_out_.empty()) {
        if (!frame_.empty()) {
            return false; // after the data frame in progress
        }
        const asio::const_buffer b(control_out_.data(), control_out_.size());
        const auto n = inner_->try_write(std::span<const asio::const_buffer>(&b, 1), ec);
        control_out_.erase(0, n);
        if (ec || n == 0) {
            if (!ec) {
                ec = asio::error::would_block;
            }
            return false;
        }
    }
    return true;
}

std::size_t websocket_client_transport::deframe(std::span<std::uint8_t> buffer, std::size_t n,
                                                boost::system::error_code& ec) {
    const auto r = deframer_.feed(buffer.data(), n);
    for (const auto& ping : deframer_.take_pings()) {
        queue_control(ws::opcode::pong, ping);
    }
    if (r.error != ws::frame_error::none) {
        error_ =
            fmt::format("WebSocket protocol error from the server: {}", ws::to_string(r.error));
        if (frame_.empty()) {
            queue_control(ws::opcode::close,
                          close_payload(static_cast<std::uint16_t>(ws::close_code_for(r.error))));
            boost::system::error_code ignored;
            flush_control(ignored);
        }
        failed_ = true;
        ec = protocol_error();
        return 0;
    }
    if (const auto code = deframer_.close_received(); code && !closing_) {
        closing_ = true;
        // Echo the status (RFC 6455 §5.5.1); 1005 "no status" must not be sent.
        queue_control(ws::opcode::close, close_payload(*code == 1005 ? 1000 : *code));
    }
    return r.payload;
}

std::size_t websocket_client_transport::try_read(std::span<std::uint8_t> buffer,
                                                 boost::system::error_code& ec) {
    ec.clear();
    if (failed_) {
        ec = protocol_error();
        return 0;
    }
    if (!upgraded_) {
        ec = asio::error::would_block;
        return 0;
    }
    if (closing_) {
        boost::system::error_code ignored;
        flush_control(ignored);
        ec = asio::error::eof;
        return 0;
    }
    // Bounded: every pass consumes inner bytes, which ends with would_block or an error.
    for (;;) {
        std::size_t n = 0;
        if (!pending_in_.empty()) {
            n = std::min(pending_in_.size(), buffer.size());
            std::memcpy(buffer.data(), pending_in_.data(), n);
            pending_in_.erase(0, n);
        } else {
            n = inner_->try_read(buffer, ec);
            if (ec) {
                return 0;
            }
        }
        const std::size_t payload = deframe(buffer, n, ec);
        if (ec) {
            return 0;
        }
        if (payload > 0) {
            return payload;
        }
        if (closing_) {
            boost::system::error_code ignored;
            flush_control(ignored);
            ec = asio::error::eof;
            return 0;
        }
    }
}

std::size_t websocket_client_transport::try_write(std::span<const asio::const_buffer> buffers,
                                                  boost::system::error_code& ec) {
    ec.clear();
    if (failed_) {
        ec = protocol_error();
        return 0;
    }
    if (!upgraded_) {
        ec = asio::error::would_block;
        return 0;
    }
    std::size_t total = 0;
    for (const auto& b : buffers) {
        total += b.size();
    }
    std::size_t taken = 0;
    for (;;) {
        if (frame_.empty()) {
            if (!control_out_.empty() && !flush_control(ec)) {
                if (taken > 0) {
                    ec.clear();
                }
                return taken;
            }
            ec.clear();
            if (taken == total) {
                return taken;
            }
            // One masked binary frame for (up to max_frame_payload of) the rest gathered.
            const std::size_t size = std::min(total - taken, options_.max_frame_payload);
            const auto mask = ws::random_mask();
            const auto h = ws::encode_masked_header(ws::opcode::binary, size, mask);
            frame_.resize(h.size + size);
            std::memcpy(frame_.data(), h.bytes.data(), h.size);
            frame_header_ = h.size;
            frame_sent_ = 0;
            frame_reported_ = 0;
            std::size_t skip = taken;
            std::size_t at = h.size;
            std::size_t k = 0; // mask position
            for (const auto& b : buffers) {
                if (at == frame_.size()) {
                    break;
                }
                const auto* p = static_cast<const std::uint8_t*>(b.data());
                std::size_t len = b.size();
                if (skip >= len) {
                    skip -= len;
                    continue;
                }
                p += skip;
                len -= skip;
                skip = 0;
                len = std::min(len, frame_.size() - at);
                for (std::size_t i = 0; i < len; ++i) {
                    frame_[at + i] = static_cast<std::uint8_t>(p[i] ^ mask[k++ & 3]);
                }
                at += len;
            }
        }
        boost::system::error_code e;
        if (frame_sent_ < frame_.size()) {
            const asio::const_buffer b(frame_.data() + frame_sent_, frame_.size() - frame_sent_);
            frame_sent_ += inner_->try_write(std::span<const asio::const_buffer>(&b, 1), e);
        }
        const std::size_t flushed = frame_sent_ > frame_header_ ? frame_sent_ - frame_header_ : 0;
        // Report only bytes of the caller's that this call was given (a retry with fewer
        // buffers than the frame covers cannot happen: the caller passes the untaken rest).
        const std::size_t delta = std::min(flushed - frame_reported_, total - taken);
        frame_reported_ += delta;
        taken += delta;
        if (frame_sent_ == frame_.size()) {
            if (frame_.capacity() > 64 * 1024) {
                frame_ = {}; // give a burst's memory back
            } else {
                frame_.clear();
            }
            continue;
        }
        if (!e) {
            e = asio::error::would_block;
        }
        if (taken == 0) {
            ec = e;
        }
        return taken;
    }
}

void websocket_client_transport::close() noexcept {
    if (upgraded_ && !failed_ && !closing_ && frame_.empty()) {
        closing_ = true;
        try {
            queue_control(ws::opcode::close, close_payload(1000));
            boost::system::error_code ignored;
            flush_control(ignored);
        } catch (...) {
        }
    }
    inner_->close();
}

} // namespace tern::net
