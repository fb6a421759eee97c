#include <tern/net/websocket_transport.hpp>

#include <boost/container/small_vector.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace tern::net {

namespace asio = boost::asio;
namespace ws = websocket;

namespace {

boost::system::error_code protocol_error() {
    return boost::system::errc::make_error_code(boost::system::errc::protocol_error);
}

} // namespace

websocket_transport::websocket_transport(std::unique_ptr<transport> inner,
                                         websocket_options options)
    : inner_(std::move(inner)), options_(options) {
    refresh_peer();
}

void websocket_transport::refresh_peer() {
    const auto& inner = inner_->peer();
    std::string path = std::move(peer_.websocket_path);
    std::string protocol = std::move(peer_.websocket_protocol);
    peer_ = inner;
    peer_.transport = inner.tls ? "wss" : "ws";
    peer_.websocket_path = std::move(path);
    peer_.websocket_protocol = std::move(protocol);
}

std::string websocket_transport::describe_error() const {
    return error_.empty() ? inner_->describe_error() : error_;
}

void websocket_transport::send_now(const std::string& bytes) {
    if (out_remaining_ != 0) {
        return; // inside a data frame: nothing else may be written now
    }
    boost::system::error_code ec;
    if (!control_out_.empty() && !flush_control(ec)) {
        return;
    }
    const asio::const_buffer b(bytes.data(), bytes.size());
    inner_->try_write(std::span<const asio::const_buffer>(&b, 1), ec);
}

bool websocket_transport::flush_control(boost::system::error_code& ec) {
    while (!control_out_.empty()) {
        if (out_remaining_ != 0) {
            return false; // after the data frame in progress
        }
        const asio::const_buffer b(control_out_.data(), control_out_.size());
        const auto n = inner_->try_write(std::span<const asio::const_buffer>(&b, 1), ec);
        control_out_.erase(0, n);
        if (ec) {
            return false;
        }
        if (n == 0) {
            return false;
        }
    }
    return true;
}

std::size_t websocket_transport::try_read(std::span<std::uint8_t> buffer,
                                          boost::system::error_code& ec) {
    ec.clear();
    if (failed_) {
        ec = protocol_error();
        return 0;
    }
    if (closing_) {
        // The peer's close frame was answered (or is queued): the stream has ended.
        flush_control(ec);
        ec = asio::error::eof;
        return 0;
    }
    // Bounded: each pass consumes bytes from the inner transport, which ends with would_block.
    for (;;) {
        const std::size_t n = inner_->try_read(buffer, ec);
        if (ec) {
            return 0;
        }
        const std::size_t payload =
            upgraded_ ? deframe(buffer, n, ec) : read_upgrade(buffer, ec, n);
        if (ec) {
            return 0;
        }
        if (payload > 0) {
            return payload;
        }
        if (closing_) {
            flush_control(ec);
            ec = asio::error::eof;
            return 0;
        }
    }
}

std::size_t websocket_transport::read_upgrade(std::span<std::uint8_t> buffer,
                                              boost::system::error_code& ec, std::size_t n) {
    const std::size_t before = request_.size();
    request_.append(reinterpret_cast<const char*>(buffer.data()), n);
    // Search from a little before the new bytes: the blank line may straddle two reads.
    const auto end = request_.find("\r\n\r\n", before > 3 ? before - 3 : 0);
    if (end == std::string::npos) {
        if (request_.size() > options_.max_header_bytes) {
            error_ = fmt::format("WebSocket upgrade refused: request headers over {} bytes",
                                 options_.max_header_bytes);
            send_now("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n");
            failed_ = true;
            ec = protocol_error();
        }
        return 0;
    }
    const std::size_t head_size = end + 4;
    if (head_size > options_.max_header_bytes) {
        error_ = fmt::format("WebSocket upgrade refused: request headers over {} bytes",
                             options_.max_header_bytes);
        send_now("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n");
        failed_ = true;
        ec = protocol_error();
        return 0;
    }
    auto answer = ws::answer_upgrade(std::string_view(request_).substr(0, head_size));
    if (!answer.accepted) {
        error_ = "WebSocket upgrade refused: " + answer.error;
        send_now(answer.response);
        failed_ = true;
        ec = protocol_error();
        return 0;
    }
    upgraded_ = true;
    peer_.websocket_path = std::move(answer.path);
    peer_.websocket_protocol = std::move(answer.protocol);
    refresh_peer();
    control_out_ = std::move(answer.response) + control_out_;
    boost::system::error_code ignored;
    flush_control(ignored); // the rest (if any) goes before the first MQTT byte
    // Frames that followed the request in the same read: never more than this read's bytes.
    const std::size_t rest = request_.size() - head_size;
    std::memcpy(buffer.data(), request_.data() + head_size, rest);
    request_ = {};
    return deframe(buffer, rest, ec);
}

std::size_t websocket_transport::deframe(std::span<std::uint8_t> buffer, std::size_t n,
                                         boost::system::error_code& ec) {
    const auto r = deframer_.feed(buffer.data(), n);
    for (const auto& ping : deframer_.take_pings()) {
        control_out_ += ws::control_frame(ws::opcode::pong, ping);
    }
    if (r.error != ws::frame_error::none) {
        error_ = fmt::format("WebSocket protocol error: {}", ws::to_string(r.error));
        send_now(ws::close_frame(ws::close_code_for(r.error), ws::to_string(r.error)));
        failed_ = true;
        ec = protocol_error();
        return 0;
    }
    if (const auto code = deframer_.close_received(); code && !closing_) {
        closing_ = true;
        // Echo the status (RFC 6455 §5.5.1); 1005 "no status" must not be sent.
        const auto echo =
            *code == 1005 ? ws::close_code::normal : static_cast<ws::close_code>(*code);
        control_out_ += ws::close_frame(echo);
    }
    return r.payload;
}

std::size_t websocket_transport::try_write(std::span<const asio::const_buffer> buffers,
                                           boost::system::error_code& ec) {
    ec.clear();
    if (failed_) {
        ec = protocol_error();
        return 0;
    }
    if (!flush_control(ec) && out_remaining_ == 0) {
        return 0; // would_block or an error, with nothing of the caller's taken
    }
    if (!upgraded_) {
        return 0; // nothing the MQTT layer sends precedes the upgrade
    }
    std::size_t taken = 0;
    std::size_t index = 0;
    std::size_t offset = 0;
    auto rest_total = [&] {
        std::size_t total = 0;
        for (std::size_t i = index; i < buffers.size(); ++i) {
            total += buffers[i].size();
        }
        return total - offset;
    };
    while (index < buffers.size()) {
        if (out_remaining_ == 0) {
            if (!control_out_.empty() && !flush_control(ec)) {
                if (taken > 0) {
                    ec.clear();
                }
                return taken;
            }
            const std::size_t total = rest_total();
            if (total == 0) {
                break;
            }
            // One binary frame for everything the caller gathered.
            out_header_ = ws::encode_header(ws::opcode::binary, total);
            out_header_sent_ = 0;
            out_remaining_ = total;
        }
        boost::container::small_vector<asio::const_buffer, 65> gather;
        if (out_header_sent_ < out_header_.size) {
            gather.emplace_back(out_header_.bytes.data() + out_header_sent_,
                                out_header_.size - out_header_sent_);
        }
        std::uint64_t budget = out_remaining_;
        for (std::size_t i = index, off = offset;
             i < buffers.size() && budget > 0 && gather.size() < gather.static_capacity;
             ++i, off = 0) {
            const auto* p = static_cast<const std::uint8_t*>(buffers[i].data()) + off;
            const auto len =
                static_cast<std::size_t>(std::min<std::uint64_t>(buffers[i].size() - off, budget));
            if (len > 0) {
                gather.emplace_back(p, len);
                budget -= len;
            }
        }
        boost::system::error_code e;
        std::size_t n = inner_->try_write(gather, e);
        const std::size_t h = std::min(n, out_header_.size - out_header_sent_);
        out_header_sent_ += h;
        n -= h;
        taken += n;
        out_remaining_ -= n;
        while (n > 0 && index < buffers.size()) {
            const std::size_t avail = buffers[index].size() - offset;
            if (n >= avail) {
                n -= avail;
                ++index;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
        while (index < buffers.size() && buffers[index].size() == offset) {
            ++index;
            offset = 0;
        }
        if (e) {
            if (taken == 0) {
                ec = e;
            }
            return taken;
        }
    }
    if (out_remaining_ == 0 && !control_out_.empty()) {
        boost::system::error_code ignored;
        flush_control(ignored); // a pong that waited for the frame to end
    }
    return taken;
}

void websocket_transport::close() noexcept {
    if (upgraded_ && !failed_ && !closing_) {
        closing_ = true;
        try {
            send_now(ws::close_frame(ws::close_code::normal));
        } catch (...) {
        }
    }
    inner_->close();
}

} // namespace tern::net
