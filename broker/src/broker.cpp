#include <tern/broker/broker.hpp>

#include "connection.hpp"
#include "shared_state.hpp"

#include <tern/broker/log.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <random>
#include <system_error>
#include <thread>

namespace tern::broker {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

/// Completion handler for co_spawn: logs an escaped exception (no bare `detached`).
auto log_failure(const char* what) {
    return [what](std::exception_ptr e) {
        if (!e) {
            return;
        }
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log(log_level::error, "{} failed: {}", what, ex.what());
        } catch (...) {
            log(log_level::error, "{} failed: unknown exception", what);
        }
    };
}

std::string endpoint_string(const asio::ip::tcp::endpoint& ep) {
    return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                                : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

/// Writes "PORT\n" through a temporary file and a rename, so a reader never sees half a port.
void write_port_file(const std::string& path, std::uint16_t port) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << port << '\n';
        out.close();
        if (!out) {
            throw std::system_error(errno, std::generic_category(),
                                    "cannot write port file " + tmp);
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        throw std::system_error(ec, "cannot rename " + tmp + " to " + path);
    }
}

} // namespace

std::size_t default_thread_count() noexcept {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : n;
}

/// Thread contract: everything but `state.workers[i]->ctx`, `port` and stop() is touched only
/// by the thread running main_ctx (the caller of run()).
struct broker::impl {
    explicit impl(broker_options options) {
        state.options = std::move(options);
        if (state.options.threads == 0) {
            state.options.threads = 1;
        }
        state.client_id_salt = std::random_device{}();
        for (std::size_t i = 0; i < state.options.threads; ++i) {
            state.workers.push_back(std::make_unique<worker>(i));
        }
    }

    void listen() {
        boost::system::error_code ec;
        const auto address = asio::ip::make_address(state.options.bind_address, ec);
        if (ec) {
            throw std::system_error(ec,
                                    "invalid bind address '" + state.options.bind_address + "'");
        }
        const asio::ip::tcp::endpoint endpoint(address, state.options.port);
        acceptor.open(endpoint.protocol());
        acceptor.set_option(asio::socket_base::reuse_address(true));
        acceptor.bind(endpoint, ec);
        if (ec) {
            throw std::system_error(ec, "cannot listen on " + endpoint_string(endpoint));
        }
        acceptor.listen(asio::socket_base::max_listen_connections);
        const auto bound = acceptor.local_endpoint();
        port.store(bound.port());
        if (!state.options.port_file.empty()) {
            write_port_file(state.options.port_file, bound.port());
        }
        log(log_level::info, "listening on {} ({} worker thread{})", endpoint_string(bound),
            state.workers.size(), state.workers.size() == 1 ? "" : "s");
    }

    asio::awaitable<void> accept_loop() {
        asio::steady_timer backoff(main_ctx);
        std::size_t next_worker = 0;
        while (acceptor.is_open()) {
            worker& w = *state.workers[next_worker];
            // The socket is created on the worker's io_context: it belongs there for life.
            auto [ec, socket] = co_await acceptor.async_accept(w.ctx, use_nothrow);
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
                break;
            }
            if (ec) {
                // E.g. EMFILE: log, back off, keep serving the connections we have.
                log(log_level::warn, "accept failed: {}; retrying in 100 ms", ec.message());
                backoff.expires_after(100ms);
                co_await backoff.async_wait(use_nothrow);
                continue;
            }
            next_worker = (next_worker + 1) % state.workers.size();
            const std::uint64_t key = state.next_key.fetch_add(1, std::memory_order_relaxed);
            asio::post(w.ctx, [this, &w, s = std::move(socket), key]() mutable {
                if (w.stopping) {
                    return; // the socket's destructor closes it
                }
                auto c = std::make_shared<connection>(state, w, std::move(s), key);
                w.connections.emplace(key, c);
                c->start();
            });
        }
    }

    /// main_ctx only.
    void begin_shutdown() {
        if (shutting_down) {
            return;
        }
        shutting_down = true;
        log(log_level::info, "shutting down");
        boost::system::error_code ignored;
        acceptor.close(ignored);
        signals.cancel(ignored);
        for (auto& w : state.workers) {
            asio::post(w->ctx, [wp = w.get()] {
                wp->stopping = true;
                // close() removes connections from the map: iterate over a copy.
                std::vector<std::shared_ptr<connection>> all;
                all.reserve(wp->connections.size());
                for (const auto& [key, c] : wp->connections) {
                    all.push_back(c);
                }
                for (const auto& c : all) {
                    c->shut_down();
                }
            });
        }
        // Each worker's run() returns once its connections have closed.
        guards.clear();
        asio::co_spawn(main_ctx, shutdown_deadline(), log_failure("shutdown"));
    }

    asio::awaitable<void> shutdown_deadline() {
        if (finished_workers == state.workers.size()) {
            co_return; // every worker finished before this coroutine started
        }
        // worker_finished() runs on main_ctx too, so it either ran before the check above or
        // will cancel this wait.
        shutdown_timer.expires_after(state.options.shutdown_grace);
        auto [ec] = co_await shutdown_timer.async_wait(use_nothrow);
        if (!ec) {
            log(log_level::warn, "connections still open after {} ms, forcing shutdown",
                state.options.shutdown_grace.count());
            for (auto& w : state.workers) {
                w->ctx.stop();
            }
        }
    }

    /// main_ctx only: a worker thread's run() returned.
    void worker_finished() {
        if (++finished_workers == state.workers.size()) {
            shutdown_timer.cancel();
        }
    }

    shared_state state;
    asio::io_context main_ctx{1};
    asio::ip::tcp::acceptor acceptor{main_ctx};
    asio::signal_set signals{main_ctx};
    asio::steady_timer shutdown_timer{main_ctx};
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    std::atomic<std::uint16_t> port{0};
    bool shutting_down = false;
    std::size_t finished_workers = 0;
};

broker::broker(broker_options options) : impl_(std::make_unique<impl>(std::move(options))) {
    impl_->listen();
}

broker::~broker() = default;

std::uint16_t broker::port() const noexcept {
    return impl_->port.load();
}

int broker::run() {
    impl& self = *impl_;
    for (auto& w : self.state.workers) {
        self.guards.push_back(asio::make_work_guard(w->ctx));
    }
    std::vector<std::thread> threads;
    threads.reserve(self.state.workers.size());
    for (auto& w : self.state.workers) {
        threads.emplace_back([&self, wp = w.get()] {
            try {
                wp->ctx.run();
            } catch (const std::exception& e) {
                log(log_level::error, "worker {} stopped by exception: {}", wp->index, e.what());
            }
            asio::post(self.main_ctx, [&self] { self.worker_finished(); });
        });
    }

    if (self.state.options.handle_signals) {
        self.signals.add(SIGINT);
        self.signals.add(SIGTERM);
        self.signals.async_wait([&self](const boost::system::error_code& ec, int signo) {
            if (!ec) {
                log(log_level::info, "signal {} received", signo);
                self.begin_shutdown();
            }
        });
    }
    asio::co_spawn(self.main_ctx, self.accept_loop(), log_failure("accept loop"));

    // Survives an exception escaping a main_ctx handler: log it and keep going.
    for (;;) {
        try {
            self.main_ctx.run();
            break;
        } catch (const std::exception& e) {
            log(log_level::error, "main loop: {}", e.what());
        }
    }
    for (auto& t : threads) {
        t.join();
    }
    log(log_level::info, "stopped");
    return 0;
}

void broker::stop() noexcept {
    try {
        asio::post(impl_->main_ctx, [self = impl_.get()] { self->begin_shutdown(); });
    } catch (...) {
        // post only throws on allocation failure; nothing sensible is left to do.
    }
}

} // namespace tern::broker
