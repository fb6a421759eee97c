#pragma once
/// An in-memory transport pair for tests (STYLE.md §8, after Beast's test::stream): what one end
/// writes the other reads, on one io_context. Each end can be made to take at most N bytes per
/// write (so writers see partial writes and would_block) and to fail its Nth operation, so code
/// above a transport — the WebSocket layer, the MQTT connection — is tested against every cut
/// and every failure point without sockets.
///
/// Thread contract: both ends belong to the io_context they were made with; use them only there.

#include <tern/net/transport.hpp>

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <utility>

namespace tern::net {

class memory_transport final : public transport {
public:
    /// Two connected ends.
    static std::pair<std::unique_ptr<memory_transport>, std::unique_ptr<memory_transport>>
    make_pair(boost::asio::io_context& ctx);

    ~memory_transport() override;

    std::size_t try_read(std::span<std::uint8_t> buffer, boost::system::error_code& ec) override;
    std::size_t try_write(std::span<const boost::asio::const_buffer> buffers,
                          boost::system::error_code& ec) override;
    void wait_readable(wait_handler handler) override;
    void wait_writable(wait_handler handler) override;
    void close() noexcept override;
    const peer_identity& peer() const noexcept override { return peer_; }
    boost::asio::any_io_executor get_executor() noexcept override;

    /// At most `n` bytes per try_write; until the peer reads, the end holds at most `n` unread
    /// bytes in flight (then would_block). 0: unlimited (the default).
    void set_write_limit(std::size_t n) noexcept;
    /// The `n`th try_read/try_write from now (1 = the next) fails with connection_reset, and so
    /// does every one after it (a reset connection stays reset).
    void fail_after(std::size_t n) noexcept;
    /// Everything written to this end and not yet read by it, as text (for assertions).
    std::string pending_input() const;
    /// Identity the tests want the upper layer to see.
    peer_identity& identity() noexcept { return peer_; }

private:
    struct shared;
    memory_transport(std::shared_ptr<shared> link, int side);
    bool count_failure(boost::system::error_code& ec) noexcept;

    std::shared_ptr<shared> link_;
    int side_;
    peer_identity peer_;
    std::size_t fail_after_ = 0;
    bool failed_ = false;
};

} // namespace tern::net
