#pragma once
/// The admin HTTP listener (Boost.Beast, HTTP/1.1 with keep-alive) on a thread of its own, so a
/// slow scrape never delays a worker. It reads the broker only through thread-safe seams
/// (broker::stats(), broker::readiness()).
///
///     GET /metrics         Prometheus text exposition (admin/metrics.hpp)
///     GET /api/stats       the same figures as JSON
///     GET /api/readiness   the readiness report as JSON (404 while the observer is off)
///     GET /readiness       the readiness report as a self-contained HTML page
///     GET /api/clients     connected clients (?client_id=GLOB&listener=N)
///     GET /api/sessions    sessions, connected or not (?client_id=GLOB&connected=true|false)
///     GET /api/subscriptions   (?client_id=GLOB&filter=GLOB), at most 10,000
///     GET /api/retained    (?filter=TOPIC-FILTER, default #; &limit=N, default 1000)
///     GET /api/listeners   each listener's address, transport and connections by version
///     POST /api/clients/kick   {"client_id": ID}: DISCONNECT 0x98 Administrative action
///     POST /api/drain      {"rate": N, "client_id": GLOB, "listener": N, "server_reference": S}:
///                          disconnect matching devices at N a second (0x9C Use another server)
///     GET /api/drain       the drain's progress; DELETE /api/drain stops it at once
///
/// POST bodies must be `Content-Type: application/json` (a page in the operator's browser
/// cannot send that cross-origin without a CORS preflight, which is never answered).
/// With a token configured every request needs `Authorization: Bearer TOKEN` (401 otherwise);
/// without one, only loopback peers are served (403 otherwise).
///
/// Thread contract: start() and the destructor on one thread; the sources are called on the
/// admin thread and must be thread-safe.

#include <tern/admin/admin_config.hpp>
#include <tern/broker/clients.hpp>
#include <tern/broker/readiness.hpp>
#include <tern/broker/stats.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::admin {

/// Where the figures come from (the broker's seams, or fakes in tests).
struct admin_sources {
    std::function<broker::broker_stats()> stats;
    std::function<std::optional<broker::readiness_report>()> readiness;
    /// Every connected client (broker::clients()).
    std::function<std::vector<broker::client_info>()> clients;
    /// Disconnects one client; how many connections it ended (broker::disconnect_client()).
    std::function<std::size_t(const broker::disconnect_request&)> disconnect;
    /// Every session with its subscriptions (broker::sessions()).
    std::function<std::vector<broker::session_info>()> sessions;
    /// Retained messages matching a filter, at most a count (broker::retained()).
    std::function<std::vector<broker::retained_info>(std::string_view, std::size_t)> retained;
};

/// `text` matches `pattern`, where `*` stands for any run of characters and `?` for one.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

class admin_server {
public:
    /// Binds `config.address:config.port` and starts serving. Errors (address in use, bad
    /// address) are returned as text; never throws.
    struct start_result {
        std::unique_ptr<admin_server> server;
        std::string error;
    };
    static start_result start(const admin_config& config, admin_sources sources);

    /// Stops accepting, closes every connection and joins the thread.
    ~admin_server();
    admin_server(const admin_server&) = delete;
    admin_server& operator=(const admin_server&) = delete;

    /// The bound port (the ephemeral one for port 0).
    std::uint16_t port() const noexcept;

    struct impl;

private:
    explicit admin_server(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

} // namespace tern::admin
