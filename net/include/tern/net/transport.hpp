#pragma once
/// One transport interface for every way a client reaches the broker (STYLE.md §5): plain TCP,
/// TLS, WebSocket, WebSocket over TLS, and an in-memory pair for tests. The connection above it
/// keeps one shape whatever the transport: wait until readable → try_read into the worker's
/// buffer → decode → handle → wait again; writes gather every queued frame and go out through
/// try_write while the transport takes bytes, waiting for writability only when it is full.
///
/// A transport works on the application's bytes (decrypted, deframed): TLS records and
/// WebSocket frames never reach the MQTT layer.
///
/// Errors are values: `boost::asio::error::would_block` means "not now, wait and retry",
/// `boost::asio::error::eof` an orderly end of the stream, anything else a failure. The
/// `describe_error()` of a transport names what went wrong in its own terms (a TLS alert, a
/// WebSocket protocol violation) for the log line.
///
/// Thread contract: owner worker only — a transport lives on the io_context of its socket and
/// every member runs there. Handlers passed to wait_* run there too.

#include <tern/net/peer_identity.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace tern::net {

/// A byte stream to one client. See the file comment for the contract.
class transport {
public:
    using wait_handler = std::function<void(boost::system::error_code)>;

    virtual ~transport() = default;

    /// Reads up to `buffer.size()` bytes of application data that are available now. Returns
    /// the count (> 0) or sets `ec`: would_block (call wait_readable, then again), eof, or a
    /// failure. Never blocks.
    virtual std::size_t try_read(std::span<std::uint8_t> buffer, boost::system::error_code& ec) = 0;

    /// Writes a prefix of the bytes `buffers` hold, returning how many of them it took
    /// (possibly 0 with would_block set). A transport that frames or encrypts may commit to
    /// more of the bytes than it reports taken: the caller passes the bytes not yet taken again,
    /// unchanged and in order, on the next call (which the connection does: its gather list is
    /// fixed until fully written). An empty `buffers` flushes what the transport owes the peer
    /// itself (see wants_write()).
    virtual std::size_t try_write(std::span<const boost::asio::const_buffer> buffers,
                                  boost::system::error_code& ec) = 0;

    /// Calls `handler` once try_read may make progress (immediately, posted, when the
    /// transport already holds decoded bytes). At most one wait_readable is pending at a time.
    virtual void wait_readable(wait_handler handler) = 0;
    /// Calls `handler` once try_write may make progress. At most one pending at a time.
    virtual void wait_writable(wait_handler handler) = 0;

    /// True while the transport has bytes of its own to send (a WebSocket pong or close, the
    /// HTTP upgrade answer): the connection then calls try_write even with nothing queued.
    virtual bool wants_write() const noexcept { return false; }

    /// Closes now: a best-effort orderly goodbye (TLS close_notify, WebSocket close frame) that
    /// never blocks, then the socket. Pending waits complete with operation_aborted.
    /// Idempotent.
    virtual void close() noexcept = 0;

    /// What is known about the peer (see peer_identity for when each field is set).
    virtual const peer_identity& peer() const noexcept = 0;

    /// A line-sized explanation of the transport-level cause of the last failure ("TLS
    /// handshake failed: certificate has expired"), or empty when it was a plain socket error.
    virtual std::string describe_error() const { return {}; }

    /// The executor of the socket's io_context (its worker).
    virtual boost::asio::any_io_executor get_executor() noexcept = 0;
};

/// True for the code that means "try again after waiting" (would_block / try_again).
inline bool is_would_block(const boost::system::error_code& ec) noexcept {
    return ec == boost::asio::error::would_block || ec == boost::asio::error::try_again;
}

} // namespace tern::net
