#pragma once
// A hand-written WebSocket client (RFC 6455) over a plain TCP socket, for what real clients never
// send: MQTT split across frames and continuation frames, several packets in one frame, text,
// unmasked and reserved frames, pings and close frames, bad upgrade requests. The upgrade
// request, the frames and the parsing are written here, independently of tern::net::websocket.
//
// Thread contract: test thread only.

#include "raw_packets.hpp"
#include "support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tern::test {

/// WebSocket opcodes (RFC 6455 §5.2).
inline constexpr std::uint8_t ws_continuation = 0x0;
inline constexpr std::uint8_t ws_text = 0x1;
inline constexpr std::uint8_t ws_binary = 0x2;
inline constexpr std::uint8_t ws_close = 0x8;
inline constexpr std::uint8_t ws_ping = 0x9;
inline constexpr std::uint8_t ws_pong = 0xA;

/// The sample key of RFC 6455 §1.3 and the accept value the RFC gives for it: the test checks
/// the broker's Sec-WebSocket-Accept against the RFC, not against its own SHA-1.
inline constexpr std::string_view ws_sample_key = "dGhlIHNhbXBsZSBub25jZQ==";
inline constexpr std::string_view ws_sample_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// An upgrade request for `path` offering `protocols` (omitted when empty), with `extra` header
/// lines ("Name: value\r\n" each) before the blank line.
inline std::string ws_upgrade_request(std::string_view path = "/mqtt",
                                      std::string_view protocols = "mqtt",
                                      std::string_view extra = {}) {
    std::string r = "GET " + std::string(path) +
                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: " +
                    std::string(ws_sample_key) + "\r\nSec-WebSocket-Version: 13\r\n";
    if (!protocols.empty()) {
        r += "Sec-WebSocket-Protocol: " + std::string(protocols) + "\r\n";
    }
    r += extra;
    r += "\r\n";
    return r;
}

/// A frame as a client sends it: masked (unless `masked` is false) with a fixed key, `fin`, the
/// reserved bits `rsv` (0..7) and `opcode`.
inline std::vector<std::uint8_t> ws_frame(std::uint8_t opcode, std::string_view payload,
                                          bool fin = true, bool masked = true,
                                          std::uint8_t rsv = 0) {
    std::vector<std::uint8_t> out;
    out.push_back(static_cast<std::uint8_t>((fin ? 0x80 : 0x00) | (rsv & 0x07) << 4 | opcode));
    const std::uint8_t mask_bit = masked ? 0x80 : 0x00;
    const std::size_t n = payload.size();
    if (n < 126) {
        out.push_back(static_cast<std::uint8_t>(mask_bit | n));
    } else if (n <= 0xFFFF) {
        out.push_back(static_cast<std::uint8_t>(mask_bit | 126));
        out.push_back(static_cast<std::uint8_t>(n >> 8));
        out.push_back(static_cast<std::uint8_t>(n & 0xFF));
    } else {
        out.push_back(static_cast<std::uint8_t>(mask_bit | 127));
        for (int shift = 56; shift >= 0; shift -= 8) {
            out.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(n) >> shift));
        }
    }
    static constexpr std::array<std::uint8_t, 4> key{0x37, 0xfa, 0x21, 0x3d}; // RFC 6455 §5.7
    if (masked) {
        out.insert(out.end(), key.begin(), key.end());
    }
    for (std::size_t i = 0; i < n; ++i) {
        const auto b = static_cast<std::uint8_t>(payload[i]);
        out.push_back(masked ? static_cast<std::uint8_t>(b ^ key[i % 4]) : b);
    }
    return out;
}

inline std::vector<std::uint8_t> ws_frame(std::uint8_t opcode,
                                          const std::vector<std::uint8_t>& payload, bool fin = true,
                                          bool masked = true, std::uint8_t rsv = 0) {
    return ws_frame(opcode,
                    std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()),
                    fin, masked, rsv);
}

/// Concatenation, for several frames or packets in one write.
inline std::vector<std::uint8_t> concat(std::initializer_list<std::vector<std::uint8_t>> parts) {
    std::vector<std::uint8_t> out;
    for (const auto& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

/// A parsed HTTP response head (and its Content-Length body).
struct http_response {
    std::string status_line; ///< without CRLF
    int status = 0;
    std::map<std::string, std::string> headers; ///< names lower-cased, values trimmed
    std::string body;

    std::string header(const std::string& lower_name) const {
        const auto it = headers.find(lower_name);
        return it == headers.end() ? std::string{} : it->second;
    }
};

/// A frame from the server.
struct ws_server_frame {
    bool fin = false;
    std::uint8_t rsv = 0;
    std::uint8_t opcode = 0;
    bool masked = false; ///< a server must never mask
    std::string payload;

    /// The status code of a close frame (1005 when it carries none).
    int close_code() const {
        return payload.size() >= 2 ? (static_cast<std::uint8_t>(payload[0]) << 8) |
                                         static_cast<std::uint8_t>(payload[1])
                                   : 1005;
    }
};

class ws_client {
public:
    /// `receive_buffer`: SO_RCVBUF before connecting (0: the system's), to keep the broker's
    /// writes blocked.
    explicit ws_client(int port, int receive_buffer = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) {
            throw std::runtime_error("socket failed");
        }
        if (receive_buffer > 0) {
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        }
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(fd_);
            throw std::runtime_error(std::string("connect failed: ") + std::strerror(errno));
        }
        const int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ~ws_client() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    ws_client(const ws_client&) = delete;
    ws_client& operator=(const ws_client&) = delete;

    /// Writes all of `bytes`; false when the peer already closed.
    bool send(std::string_view bytes) {
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
            if (n <= 0) {
                return false;
            }
            done += static_cast<std::size_t>(n);
        }
        return true;
    }
    bool send(const std::vector<std::uint8_t>& bytes) {
        return send(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    }
    /// One masked frame.
    bool send_frame(std::uint8_t opcode, const std::vector<std::uint8_t>& payload,
                    bool fin = true) {
        return send(ws_frame(opcode, payload, fin));
    }

    /// Reads an HTTP response head and its Content-Length body; nullopt on EOF or timeout.
    std::optional<http_response> read_http_response(clock::duration timeout = wait_timeout) {
        const auto deadline = clock::now() + timeout;
        std::size_t end = 0;
        while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
            if (!fill(deadline)) {
                return std::nullopt;
            }
        }
        http_response r;
        const std::string head = buffer_.substr(0, end + 2);
        buffer_.erase(0, end + 4);
        std::size_t line_end = head.find("\r\n");
        r.status_line = head.substr(0, line_end);
        // "HTTP/1.1 101 Switching Protocols"
        const auto sp = r.status_line.find(' ');
        if (sp != std::string::npos) {
            r.status = std::atoi(r.status_line.c_str() + sp + 1);
        }
        for (std::size_t start = line_end + 2; start < head.size(); start = line_end + 2) {
            line_end = head.find("\r\n", start);
            const std::string line = head.substr(start, line_end - start);
            const auto colon = line.find(':');
            if (colon == std::string::npos) {
                continue;
            }
            std::string name = line.substr(0, colon);
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            std::string value = line.substr(colon + 1);
            value.erase(0, value.find_first_not_of(" \t"));
            value.erase(value.find_last_not_of(" \t") + 1);
            r.headers[name] = value;
        }
        if (const auto length = r.header("content-length"); !length.empty()) {
            const auto n = static_cast<std::size_t>(std::stoul(length));
            while (buffer_.size() < n) {
                if (!fill(deadline)) {
                    break;
                }
            }
            r.body = buffer_.substr(0, n);
            buffer_.erase(0, std::min(n, buffer_.size()));
        }
        return r;
    }

    /// Sends the upgrade request and reads the answer.
    std::optional<http_response> upgrade(std::string_view path = "/mqtt",
                                         std::string_view protocols = "mqtt") {
        if (!send(ws_upgrade_request(path, protocols))) {
            return std::nullopt;
        }
        return read_http_response();
    }

    /// The next frame from the server; nullopt on EOF or timeout.
    std::optional<ws_server_frame> read_frame(clock::duration timeout = wait_timeout) {
        const auto deadline = clock::now() + timeout;
        if (!need(2, deadline)) {
            return std::nullopt;
        }
        const auto b0 = static_cast<std::uint8_t>(buffer_[0]);
        const auto b1 = static_cast<std::uint8_t>(buffer_[1]);
        ws_server_frame f;
        f.fin = (b0 & 0x80) != 0;
        f.rsv = static_cast<std::uint8_t>((b0 >> 4) & 0x07);
        f.opcode = b0 & 0x0F;
        f.masked = (b1 & 0x80) != 0;
        std::size_t header = 2;
        std::uint64_t len = b1 & 0x7F;
        if (len == 126 || len == 127) {
            const std::size_t ext = len == 126 ? 2 : 8;
            if (!need(2 + ext, deadline)) {
                return std::nullopt;
            }
            len = 0;
            for (std::size_t i = 0; i < ext; ++i) {
                len = len << 8 | static_cast<std::uint8_t>(buffer_[2 + i]);
            }
            header += ext;
        }
        std::array<std::uint8_t, 4> key{};
        if (f.masked) {
            if (!need(header + 4, deadline)) {
                return std::nullopt;
            }
            std::memcpy(key.data(), buffer_.data() + header, 4);
            header += 4;
        }
        const auto total = header + static_cast<std::size_t>(len);
        if (!need(total, deadline)) {
            return std::nullopt;
        }
        f.payload = buffer_.substr(header, static_cast<std::size_t>(len));
        if (f.masked) {
            for (std::size_t i = 0; i < f.payload.size(); ++i) {
                f.payload[i] = static_cast<char>(f.payload[i] ^ key[i % 4]);
            }
        }
        buffer_.erase(0, total);
        ++frames_read_;
        if (f.opcode == ws_binary || f.opcode == ws_continuation) {
            mqtt_.append(f.payload);
        } else if (f.opcode != ws_close && f.opcode != ws_ping && f.opcode != ws_pong) {
            odd_frames_ = true;
        }
        if (f.masked || f.rsv != 0 ||
            (f.opcode != ws_binary && f.opcode != ws_close && f.opcode != ws_ping &&
             f.opcode != ws_pong && f.opcode != ws_continuation)) {
            odd_frames_ = true;
        }
        return f;
    }

    /// The next MQTT packet carried by binary frames (however they split it); control frames
    /// met on the way are kept in `controls()`. nullopt on EOF, timeout or a close frame.
    std::optional<std::vector<std::uint8_t>> read_packet(clock::duration timeout = wait_timeout) {
        const auto deadline = clock::now() + timeout;
        for (;;) {
            if (auto p = take_packet()) {
                return p;
            }
            const auto f = read_frame(deadline - clock::now());
            if (!f) {
                return std::nullopt;
            }
            if (f->opcode == ws_close || f->opcode == ws_ping || f->opcode == ws_pong) {
                controls_.push_back(*f);
                if (f->opcode == ws_close) {
                    return std::nullopt;
                }
            }
        }
    }

    /// The next frame that is not a binary data frame (binary payloads go to the MQTT stream).
    std::optional<ws_server_frame> read_control(clock::duration timeout = wait_timeout) {
        if (!controls_.empty()) {
            auto f = controls_.front();
            controls_.erase(controls_.begin());
            return f;
        }
        const auto deadline = clock::now() + timeout;
        while (auto f = read_frame(deadline - clock::now())) {
            if (f->opcode != ws_binary && f->opcode != ws_continuation) {
                return f;
            }
        }
        return std::nullopt;
    }

    /// Reads (and drops) everything until EOF; true when the server closed within `timeout`.
    bool wait_closed(clock::duration timeout = wait_timeout) {
        const auto deadline = clock::now() + timeout;
        buffer_.clear();
        while (fill(deadline)) {
            buffer_.clear();
        }
        return eof_;
    }

    /// Upgrade with the `mqtt` subprotocol, then CONNECT (`level` 4 or 5) and its CONNACK.
    std::optional<connack_view> connect_mqtt(const std::string& client_id, std::uint8_t level = 4) {
        const auto r = upgrade();
        if (!r || r->status != 101) {
            return std::nullopt;
        }
        if (!send_frame(ws_binary, connect_packet(level, client_id))) {
            return std::nullopt;
        }
        const auto p = read_packet();
        return p ? parse_connack(*p, level == 5) : std::nullopt;
    }

    /// Waits until at least one byte arrived (left unread); false on EOF or timeout.
    bool wait_readable(clock::duration timeout = wait_timeout) {
        return need(1, clock::now() + timeout);
    }

    /// True when every frame the server sent was a well-formed server frame (unmasked, no
    /// reserved bits, a known opcode).
    bool server_frames_well_formed() const noexcept { return !odd_frames_; }
    std::size_t frames_read() const noexcept { return frames_read_; }
    /// Bytes received that were not taken yet (for "nothing else came").
    bool nothing_buffered() const noexcept { return buffer_.empty() && mqtt_.empty(); }

private:
    /// One read into the buffer; false on EOF, error or the deadline.
    bool fill(clock::time_point deadline) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) {
            return false;
        }
        pollfd pfd{fd_, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
            return false;
        }
        char buf[16384];
        const ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            eof_ = true;
            return false;
        }
        if (r < 0) {
            return false;
        }
        buffer_.append(buf, static_cast<std::size_t>(r));
        return true;
    }
    bool need(std::size_t n, clock::time_point deadline) {
        while (buffer_.size() < n) {
            if (!fill(deadline)) {
                return false;
            }
        }
        return true;
    }
    /// A whole MQTT packet from the front of the deframed stream, if there is one.
    std::optional<std::vector<std::uint8_t>> take_packet() {
        if (mqtt_.size() < 2) {
            return std::nullopt;
        }
        std::size_t length = 0;
        std::size_t i = 1;
        for (int shift = 0;; shift += 7, ++i) {
            if (i >= mqtt_.size() || i > 4) {
                return std::nullopt;
            }
            const auto b = static_cast<std::uint8_t>(mqtt_[i]);
            length |= static_cast<std::size_t>(b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                break;
            }
        }
        const std::size_t total = i + 1 + length;
        if (mqtt_.size() < total) {
            return std::nullopt;
        }
        std::vector<std::uint8_t> p(mqtt_.begin(),
                                    mqtt_.begin() + static_cast<std::ptrdiff_t>(total));
        mqtt_.erase(0, total);
        return p;
    }

    int fd_ = -1;
    std::string buffer_; ///< bytes read, not yet parsed
    std::string mqtt_;   ///< payload of binary frames, not yet taken as packets
    std::vector<ws_server_frame> controls_;
    bool eof_ = false;
    bool odd_frames_ = false;
    std::size_t frames_read_ = 0;
};

} // namespace tern::test
