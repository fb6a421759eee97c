#include <tern/net/memory_transport.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstring>

namespace tern::net {

namespace asio = boost::asio;

struct memory_transport::shared {
    explicit shared(asio::io_context& c) : ctx(c) {}
    asio::io_context& ctx;
    std::string data[2]; ///< data[i]: bytes waiting to be read by side i
    bool closed[2] = {false, false};
    std::size_t write_limit[2] = {0, 0};
    transport::wait_handler readers[2];
    transport::wait_handler writers[2];

    void wake(transport::wait_handler& h, boost::system::error_code ec = {}) {
        if (h) {
            asio::post(ctx, [fn = std::move(h), ec]() mutable { fn(ec); });
            h = nullptr;
        }
    }
};

std::pair<std::unique_ptr<memory_transport>, std::unique_ptr<memory_transport>>
memory_transport::make_pair(asio::io_context& ctx) {
    auto link = std::make_shared<shared>(ctx);
    std::unique_ptr<memory_transport> a(new memory_transport(link, 0));
    std::unique_ptr<memory_transport> b(new memory_transport(link, 1));
    return {std::move(a), std::move(b)};
}

memory_transport::memory_transport(std::shared_ptr<shared> link, int side)
    : link_(std::move(link)), side_(side) {
    peer_.address = side == 0 ? "memory:0" : "memory:1";
    peer_.transport = "tcp";
}

memory_transport::~memory_transport() {
    close();
}

asio::any_io_executor memory_transport::get_executor() noexcept {
    return link_->ctx.get_executor();
}

bool memory_transport::count_failure(boost::system::error_code& ec) noexcept {
    if (failed_ || (fail_after_ != 0 && --fail_after_ == 0)) {
        failed_ = true; // a reset connection stays reset
        ec = asio::error::connection_reset;
        return true;
    }
    return false;
}

std::size_t memory_transport::try_read(std::span<std::uint8_t> buffer,
                                       boost::system::error_code& ec) {
    ec.clear();
    if (count_failure(ec)) {
        return 0;
    }
    auto& in = link_->data[side_];
    if (in.empty()) {
        if (link_->closed[1 - side_] || link_->closed[side_]) {
            ec = asio::error::eof;
        } else {
            ec = asio::error::would_block;
        }
        return 0;
    }
    const std::size_t n = std::min(buffer.size(), in.size());
    std::memcpy(buffer.data(), in.data(), n);
    in.erase(0, n);
    link_->wake(link_->writers[1 - side_]); // the peer's writes may fit again
    return n;
}

std::size_t memory_transport::try_write(std::span<const asio::const_buffer> buffers,
                                        boost::system::error_code& ec) {
    ec.clear();
    if (count_failure(ec)) {
        return 0;
    }
    if (link_->closed[side_] || link_->closed[1 - side_]) {
        ec = asio::error::broken_pipe;
        return 0;
    }
    auto& out = link_->data[1 - side_];
    const std::size_t limit = link_->write_limit[side_];
    std::size_t room =
        limit == 0 ? static_cast<std::size_t>(-1) : (out.size() >= limit ? 0 : limit - out.size());
    if (room == 0) {
        ec = asio::error::would_block;
        return 0;
    }
    std::size_t written = 0;
    for (const auto& b : buffers) {
        const std::size_t n = std::min(room, b.size());
        out.append(static_cast<const char*>(b.data()), n);
        written += n;
        room -= n;
        if (room == 0) {
            break;
        }
    }
    if (written > 0) {
        link_->wake(link_->readers[1 - side_]);
    }
    return written;
}

void memory_transport::wait_readable(wait_handler handler) {
    if (!link_->data[side_].empty() || link_->closed[0] || link_->closed[1]) {
        link_->readers[side_] = std::move(handler);
        link_->wake(link_->readers[side_]);
        return;
    }
    link_->readers[side_] = std::move(handler);
}

void memory_transport::wait_writable(wait_handler handler) {
    const std::size_t limit = link_->write_limit[side_];
    if (limit == 0 || link_->data[1 - side_].size() < limit || link_->closed[0] ||
        link_->closed[1]) {
        link_->writers[side_] = std::move(handler);
        link_->wake(link_->writers[side_]);
        return;
    }
    link_->writers[side_] = std::move(handler);
}

void memory_transport::close() noexcept {
    if (!link_ || link_->closed[side_]) {
        return;
    }
    link_->closed[side_] = true;
    link_->wake(link_->readers[side_], asio::error::operation_aborted);
    link_->wake(link_->writers[side_], asio::error::operation_aborted);
    link_->wake(link_->readers[1 - side_]);
    link_->wake(link_->writers[1 - side_]);
}

void memory_transport::set_write_limit(std::size_t n) noexcept {
    link_->write_limit[side_] = n;
}

void memory_transport::fail_after(std::size_t n) noexcept {
    fail_after_ = n;
}

std::string memory_transport::pending_input() const {
    return link_->data[side_];
}

} // namespace tern::net
