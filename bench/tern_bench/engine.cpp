// The controller of a tern-bench run (main thread): plans the clients, starts one thread per
// worker, paces the run's phases, merges the workers' statistics once per second, and turns
// the end state into the result document.
//
// Phases, all relative to t0: ramp (connects spread by --ramp / --connect-rate), warm-up,
// measured window (--duration), drain (publishers wait for acknowledgements, subscribers for
// stragglers). Rates and the end-to-end latency cover messages *sent* in the measured window;
// counts cover the whole run.

#include "engine.hpp"

#include <tern/protocol/topic.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <future>
#include <random>
#include <thread>

#include "engine_detail.hpp"
#include "payload.hpp"
#include "report.hpp"

#ifndef TERN_BENCH_VERSION
#define TERN_BENCH_VERSION "0.1.0"
#endif

namespace tern::bench {

namespace {

using namespace detail;
using json = nlohmann::json;
using namespace std::chrono_literals;

steady::duration seconds(double s) {
    return std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(s));
}

std::string endpoint_text(const std::string& host, std::uint16_t port) {
    return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                               : fmt::format("{}:{}", host, port);
}

std::shared_ptr<const net::tls_client_context> make_tls_context(const tls_options& t) {
    net::tls_client_options o;
    o.insecure = t.insecure;
    o.cafile = t.cafile;
    o.certfile = t.cert;
    o.keyfile = t.key;
    if (!t.alpn.empty()) {
        o.alpn.push_back(t.alpn);
    }
    auto built = net::tls_client_context::build(o);
    if (!built.context) {
        throw config_error("--tls: " + built.error);
    }
    return built.context;
}

asio::awaitable<void> keepalive_sweep(worker& w) {
    while (!w.stopping) {
        w.sweep_timer.expires_after(1s);
        co_await w.sweep_timer.async_wait(asio::as_tuple(asio::use_awaitable));
        const auto now = steady::now();
        for (auto& c : w.clients) {
            c->keepalive_tick(now);
        }
    }
}

/// One timer for all rate-limited publishers of a worker: 1 ms ticks (on an absolute
/// schedule, so they do not drift) until the measured window ends.
asio::awaitable<void> pacer(worker& w, steady::time_point until) {
    auto next = steady::now();
    while (!w.stopping && !w.publishing_closed && next < until) {
        next += 1ms;
        w.pace_timer.expires_at(next);
        co_await w.pace_timer.async_wait(asio::as_tuple(asio::use_awaitable));
        const auto now = steady::now();
        if (now > next + 100ms) {
            next = now; // fell far behind (a stalled thread): do not replay missed ticks
        }
        for (auto* c : w.paced) {
            c->pace_tick(now);
        }
    }
}

struct snapshot {
    counters c;
    latency_histogram second;
};

/// Asks every worker for its counters and last-second histogram (posted, so each worker
/// copies its own state on its own thread) and merges the answers.
snapshot take_snapshot(std::vector<std::unique_ptr<worker>>& workers) {
    std::vector<std::future<snapshot>> answers;
    for (auto& w : workers) {
        auto promise = std::make_shared<std::promise<snapshot>>();
        answers.push_back(promise->get_future());
        asio::post(w->ctx, [w = w.get(), promise] {
            snapshot s{w->stats.c, w->stats.latency_second};
            w->stats.latency_second.clear();
            promise->set_value(std::move(s));
        });
    }
    snapshot merged;
    for (auto& a : answers) {
        // A worker too busy to answer within 2 s is left out of this second.
        if (a.wait_for(2s) == std::future_status::ready) {
            auto s = a.get();
            merged.c += s.c;
            merged.second.merge(s.second);
        }
    }
    return merged;
}

std::string top_reasons(const std::map<std::string, std::uint64_t>& failures) {
    std::vector<std::pair<std::uint64_t, std::string>> sorted;
    for (const auto& [reason, n] : failures) {
        sorted.emplace_back(n, reason);
    }
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    std::string out;
    for (std::size_t i = 0; i < sorted.size() && i < 3; ++i) {
        out += fmt::format("{}{}× {}", i == 0 ? "" : ", ", sorted[i].first, sorted[i].second);
    }
    return out.empty() ? "unknown reason" : out;
}

} // namespace

run_outcome run_bench(const bench_options& o, std::FILE* progress, bool progress_tty) {
    const scenario& sc = o.sc;
    const std::string where = endpoint_text(o.host, o.port);
    run_outcome out;

    // TLS files first: they are usage errors (exit 2) and need no network.
    std::shared_ptr<const net::tls_client_context> tls;
    if (o.tls.enabled) {
        tls = make_tls_context(o.tls);
    }

    // Resolve once, then probe with one TCP connect so that an unreachable broker is one clear
    // error rather than thousands of counted failures.
    asio::io_context setup(1);
    tcp::resolver resolver(setup);
    boost::system::error_code ec;
    const auto endpoints = resolver.resolve(o.host, std::to_string(o.port), ec);
    if (ec) {
        out.exit_code = 1;
        out.error = fmt::format("cannot resolve {}: {}", o.host, ec.message());
        return out;
    }
    {
        tcp::socket probe(setup);
        boost::system::error_code pec = asio::error::would_block;
        asio::async_connect(
            probe, endpoints,
            [&](const boost::system::error_code& e, const tcp::endpoint&) { pec = e; });
        setup.run_for(seconds(o.connect_timeout));
        const bool answered = pec != asio::error::would_block;
        boost::system::error_code ignored;
        probe.close(ignored);
        setup.restart();
        setup.run();
        if (!answered || pec) {
            out.exit_code = 1;
            out.error = answered ? fmt::format("cannot connect to {}: {}", where, pec.message())
                                 : fmt::format("cannot connect to {}: no answer within {} s", where,
                                               o.connect_timeout);
            return out;
        }
    }

    run_context rc;
    rc.options = &o;
    rc.sc = &sc;
    rc.version = sc.protocol;
    rc.endpoint.kind = o.transport;
    rc.endpoint.host = o.host;
    rc.endpoint.port = o.port;
    rc.endpoint.resolved.assign(endpoints.begin(), endpoints.end());
    rc.endpoint.websocket.path = o.ws_path;
    rc.endpoint.tls = tls;
    if (tls && !o.tls.sni.empty()) {
        // --sni names both the SNI sent and the name the certificate must carry; without it,
        // SNI is the host unless it is an IP literal, and the host is checked.
        rc.endpoint.server_name = o.tls.sni;
        rc.endpoint.verify_name = o.tls.sni;
    }
    {
        std::random_device rd;
        rc.run_tag = static_cast<std::uint32_t>(rd());
    }
    rc.connect_timeout = seconds(o.connect_timeout);
    std::uint32_t largest_payload = 0;
    for (const auto& r : sc.roles) {
        largest_payload = std::max(
            {largest_payload, r.publish ? r.publish->size : 0U, r.reply ? r.reply->size : 0U});
    }
    rc.filler.assign(largest_payload, '\0');

    // Plan the clients. Subscribers connect first, then idle connections, then publishers, so
    // that subscriptions exist before messages flow.
    const std::uint64_t total = sc.total_clients();
    unsigned threads =
        o.threads != 0 ? o.threads : std::max(1U, std::thread::hardware_concurrency());
    threads =
        static_cast<unsigned>(std::min<std::uint64_t>(threads, std::max<std::uint64_t>(total, 1)));
    std::uint32_t next_global = 0;
    for (std::size_t r = 0; r < sc.roles.size(); ++r) {
        rc.roles.push_back({&sc.roles[r], next_global});
        next_global += sc.roles[r].clients;
        rc.role_of_global.insert(rc.role_of_global.end(), sc.roles[r].clients,
                                 static_cast<std::uint32_t>(r));
    }
    std::vector<std::size_t> order;
    for (int pass = 0; pass < 3; ++pass) {
        for (std::size_t r = 0; r < sc.roles.size(); ++r) {
            const auto& role = sc.roles[r];
            const int rank = role.subscribe ? 0 : (!role.publish && !role.reply) ? 1 : 2;
            if (rank == pass) {
                order.push_back(r);
            }
        }
    }
    const double effective_ramp = std::max(
        sc.ramp, sc.connect_rate > 0 ? static_cast<double>(total - 1) / sc.connect_rate : 0.0);

    std::vector<std::unique_ptr<receiver_unit>> units;
    std::map<std::pair<std::string, std::string>, receiver_unit*> groups;
    std::vector<client_plan> plans;
    plans.reserve(total);
    std::uint64_t k = 0;
    for (const auto r : order) {
        const auto& role = sc.roles[r];
        for (std::uint32_t i = 0; i < role.clients; ++i, ++k) {
            client_plan p;
            p.role = static_cast<std::uint32_t>(r);
            p.local = i;
            p.global = rc.roles[r].first_global + i;
            // Kept sessions need the same id in every run to be resumed: no run tag then.
            p.client_id =
                role.keeps_sessions()
                    ? fmt::format("{}-{}-{}", o.client_prefix, role.name, i)
                    : fmt::format("{}-{}-{}-{:08x}", o.client_prefix, role.name, i, rc.run_tag);
            const double kd = static_cast<double>(k);
            p.connect_at = seconds(std::max(sc.ramp * kd / static_cast<double>(total),
                                            sc.connect_rate > 0 ? kd / sc.connect_rate : 0.0));
            p.worker = static_cast<unsigned>(k % threads);
            p.username = render_credential(role.username, i, p.client_id, o.username);
            p.password = render_credential(role.password, i, p.client_id, o.password);
            if (role.publish) {
                p.publish_topic = role.publish->topic.render(i, p.client_id);
            }
            if (role.subscribe) {
                const auto& s = *role.subscribe;
                const auto filter = s.filter.render(i, p.client_id);
                if (s.share.empty()) {
                    units.push_back(std::make_unique<receiver_unit>());
                    units.back()->filter = filter;
                    units.back()->home = p.worker;
                    p.unit = units.back().get();
                    p.subscription = filter;
                } else {
                    // All members of a group live on the group's worker: its exactly-once
                    // accounting then needs no synchronisation.
                    auto& g = groups[{s.share, filter}];
                    if (g == nullptr) {
                        units.push_back(std::make_unique<receiver_unit>());
                        g = units.back().get();
                        g->share = s.share;
                        g->filter = filter;
                        g->home = p.worker;
                    }
                    p.worker = g->home;
                    p.unit = g;
                    p.subscription = "$share/" + s.share + "/" + filter;
                }
            }
            plans.push_back(std::move(p));
        }
    }

    // Timing.
    const auto start_wall = std::time(nullptr);
    const auto now0 = steady::now();
    const std::uint64_t rt0 = realtime_ns();
    rc.t0 = now0 + 20ms; // time for the threads to start
    rc.ramp_end = rc.t0 + seconds(effective_ramp);
    rc.measure_start = rc.ramp_end + seconds(sc.warmup);
    rc.measure_end = rc.measure_start + seconds(sc.duration);
    rc.drain_end = rc.measure_end + seconds(sc.drain);
    const auto to_rt = [&](steady::time_point t) {
        return rt0 + static_cast<std::uint64_t>(
                         std::chrono::duration_cast<std::chrono::nanoseconds>(t - now0).count());
    };
    rc.measure_start_rt = to_rt(rc.measure_start);
    rc.measure_end_rt = to_rt(rc.measure_end);
    const auto hard_deadline = rc.drain_end + 10s;

    std::vector<std::unique_ptr<worker>> workers;
    for (unsigned i = 0; i < threads; ++i) {
        workers.push_back(std::make_unique<worker>(i));
    }
    std::int64_t subscribers = 0;
    std::int64_t publishers = 0;
    std::int64_t bounded_receivers = 0;
    for (auto& p : plans) {
        const auto& role = sc.roles[p.role];
        subscribers += role.subscribe ? 1 : 0;
        publishers += role.publish ? 1 : 0;
        bounded_receivers += role.subscribe && role.subscribe->count > 0 ? 1 : 0;
        auto& w = *workers[p.worker];
        auto* unit = p.unit;
        w.clients.push_back(std::make_unique<client>(w, rc, std::move(p)));
        if (unit != nullptr) {
            unit->members.push_back(w.clients.back().get());
        }
    }
    rc.subs_pending = subscribers;
    rc.pubs_active = publishers;
    rc.receivers_active = bounded_receivers;

    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    std::vector<std::thread> pool;
    for (auto& w : workers) {
        guards.push_back(asio::make_work_guard(w->ctx));
        asio::post(w->ctx, [w = w.get()] {
            for (auto& c : w->clients) {
                c->start();
            }
        });
        asio::co_spawn(w->ctx, keepalive_sweep(*w), [w = w.get()](std::exception_ptr e) {
            if (e) {
                std::fprintf(stderr, "tern-bench: worker %u: keep-alive sweep failed\n", w->index);
            }
        });
        for (auto& c : w->clients) {
            if (c->paced()) {
                w->paced.push_back(c.get());
            }
        }
        if (!w->paced.empty()) {
            asio::co_spawn(w->ctx, pacer(*w, rc.measure_end), [w = w.get()](std::exception_ptr e) {
                if (e) {
                    std::fprintf(stderr, "tern-bench: worker %u: pacer failed\n", w->index);
                }
            });
        }
    }
    for (auto& w : workers) {
        pool.emplace_back([w = w.get()] {
            try {
                w->ctx.run();
            } catch (const std::exception& e) {
                std::fprintf(stderr, "tern-bench: worker %u: %s\n", w->index, e.what());
            }
            w->finished = true;
        });
    }

    // Drive the phases; one timeline row per second.
    auto post_all = [&](auto fn) {
        for (auto& w : workers) {
            asio::post(w->ctx, [w = w.get(), fn] { fn(*w); });
        }
    };
    json timeline = json::array();
    bool allowed = false;
    bool closed = false; ///< end_publishing posted
    bool publishing_over = false;
    bool receiving_over = false;
    bool hard_hit = false;
    auto stop_at = rc.drain_end;
    auto measure_end = rc.measure_end;
    counters previous;
    std::uint64_t last_connections = 0; ///< at the last timeline row
    auto previous_tick = rc.t0;
    std::int64_t tick = 1;
    for (;;) {
        const auto now = steady::now();
        if (!allowed && (rc.subs_pending.load() <= 0 || now >= rc.ramp_end + rc.connect_timeout)) {
            allowed = true;
            post_all([](worker& w) {
                w.publishing_allowed = true;
                for (auto& c : w.clients) {
                    c->allow_publishing();
                }
            });
        }
        if (!closed && now >= rc.measure_end) {
            closed = true;
            post_all([](worker& w) {
                w.publishing_closed = true;
                for (auto& c : w.clients) {
                    c->end_publishing();
                }
            });
        }
        if (publishers > 0 && !publishing_over && rc.pubs_active.load() <= 0) {
            // Every publisher is done (count reached, or the window closed and acks are in).
            publishing_over = true;
            measure_end = std::min(measure_end, now);
            stop_at = o.mode == "pub" ? now : std::min(stop_at, now + seconds(sc.drain));
        }
        if (bounded_receivers > 0 && !receiving_over && rc.receivers_active.load() <= 0) {
            receiving_over = true;
            measure_end = std::min(measure_end, now);
            stop_at = std::min(stop_at, now);
        }
        const auto tick_at = rc.t0 + std::chrono::seconds(tick);
        if (now >= tick_at) {
            const auto s = take_snapshot(workers);
            const double dt = std::chrono::duration<double>(now - previous_tick).count();
            const auto errors = s.c.connect_failed + s.c.errors;
            json row{{"t", tick},
                     {"connections", s.c.connected},
                     {"send_rate", static_cast<double>(s.c.sent - previous.sent) / dt},
                     {"recv_rate", static_cast<double>(s.c.received - previous.received) / dt},
                     {"errors", errors - (previous.connect_failed + previous.errors)},
                     // A second counts as warm-up (or drain) by its midpoint.
                     {"warmup", tick_at - 500ms < rc.measure_start}};
            if (tick_at - 500ms >= measure_end) {
                row["drain"] = true;
            }
            if (s.second.count() > 0) {
                row["p50_us"] = static_cast<double>(s.second.percentile(50)) / 1000.0;
                row["p99_us"] = static_cast<double>(s.second.percentile(99)) / 1000.0;
            }
            if (progress != nullptr) {
                const auto line = progress_line(row, errors);
                std::fprintf(progress, progress_tty ? "\r%s\x1b[K" : "%s\n", line.c_str());
                std::fflush(progress);
            }
            timeline.push_back(std::move(row));
            last_connections = s.c.connected;
            // Nothing left to wait for: every connection attempt failed.
            if (s.c.connect_failed >= total && s.c.connect_ok == 0) {
                stop_at = now;
                measure_end = std::min(measure_end, now);
            }
            previous = s.c;
            previous_tick = now;
            ++tick;
        }
        if (now >= stop_at) {
            break;
        }
        if (now >= hard_deadline) {
            hard_hit = true;
            break;
        }
        std::this_thread::sleep_until(
            std::min({rc.t0 + std::chrono::seconds(tick), now + 20ms, stop_at, hard_deadline,
                      closed ? hard_deadline : rc.measure_end}));
    }
    if (progress != nullptr && progress_tty) {
        std::fputc('\n', progress);
    }

    // Stop: DISCONNECT everyone, then let the threads run dry.
    post_all([](worker& w) {
        w.stopping = true;
        w.sweep_timer.cancel();
        w.pace_timer.cancel();
        for (auto& c : w.clients) {
            c->stop();
        }
    });
    guards.clear();
    const auto wait_until = std::min(hard_deadline, steady::now() + 5s);
    for (;;) {
        const bool all = std::all_of(workers.begin(), workers.end(),
                                     [](const auto& w) { return w->finished.load(); });
        if (all) {
            break;
        }
        if (steady::now() >= wait_until) {
            hard_hit = hard_hit || steady::now() >= hard_deadline;
            for (auto& w : workers) {
                w->ctx.stop();
            }
            break;
        }
        std::this_thread::sleep_for(10ms);
    }
    for (auto& t : pool) {
        t.join();
    }

    // Merge (the threads have ended: their state is ours now).
    counters sum;
    latency_histogram latency;
    latency_histogram connack;
    latency_histogram ack;
    std::map<std::string, std::uint64_t> failures;
    std::int64_t first_attempt = -1;
    std::int64_t last_connack = -1;
    for (auto& w : workers) {
        sum += w->stats.c;
        latency.merge(w->stats.latency);
        connack.merge(w->stats.connack);
        ack.merge(w->stats.ack);
        for (const auto& [reason, n] : w->stats.failures) {
            failures[reason] += n;
        }
        if (w->stats.first_attempt_ns >= 0) {
            first_attempt = first_attempt < 0 ? w->stats.first_attempt_ns
                                              : std::min(first_attempt, w->stats.first_attempt_ns);
        }
        last_connack = std::max(last_connack, w->stats.last_connack_ns);
    }

    // Loss: every stream this run published, against every unit whose filter matches it.
    struct expected_stream {
        stream_key key;
        std::string topic;
        stream_counts counts;
    };
    std::vector<expected_stream> streams;
    for (auto& w : workers) {
        for (auto& c : w->clients) {
            const auto& p = c->plan();
            const auto& role = sc.roles[p.role];
            const std::uint64_t id = static_cast<std::uint64_t>(rc.run_tag) << 32 | p.global;
            if (role.publish && c->main_stream().sent > 0) {
                streams.push_back({{id, 0}, p.publish_topic, c->main_stream()});
            }
            if (role.reply) {
                const auto& replies = c->reply_streams();
                for (std::uint32_t t = 0; t < replies.size(); ++t) {
                    if (replies[t].sent > 0) {
                        streams.push_back({{id, t + 1},
                                           role.reply->topic.render(p.local, p.client_id, t),
                                           replies[t]});
                    }
                }
            }
        }
    }
    std::uint64_t lost = 0;
    for (const auto& u : units) {
        const bool subscribed = std::any_of(u->members.begin(), u->members.end(),
                                            [](const client* c) { return c->subscribed(); });
        if (!subscribed) {
            continue; // its connection or subscription failed: counted there, not as loss
        }
        for (const auto& s : streams) {
            if (!protocol::topic_matches(u->filter, s.topic)) {
                continue;
            }
            const auto it = u->windows.find(s.key);
            const std::uint64_t missing =
                it == u->windows.end() ? s.counts.sent : it->second.missing_below(s.counts.sent);
            // Messages never acknowledged were not promised; do not count them as lost.
            const std::uint64_t unacked = s.counts.sent - s.counts.acked;
            lost += missing > unacked ? missing - unacked : 0;
        }
        // Streams of other tern-bench processes: holes between first and last seen.
        for (const auto& [key, window] : u->windows) {
            if (key.publisher >> 32 != rc.run_tag) {
                lost += window.gaps();
            }
        }
    }

    const double measured =
        std::max(0.0, std::chrono::duration<double>(measure_end - rc.measure_start).count());
    const auto rate = [&](std::uint64_t n) {
        return measured > 0 ? static_cast<double>(n) / measured : 0.0;
    };
    json totals{{"connections_ok", sum.connect_ok},
                {"connections_failed", sum.connect_failed},
                {"failures_by_reason", failures},
                {"sent", sum.sent},
                {"acked", sum.acked},
                {"received", sum.received},
                {"lost", lost},
                {"duplicates", sum.duplicates},
                {"reordered", sum.reordered},
                {"foreign", sum.foreign},
                {"send_rate", rate(sum.sent_measured)},
                {"recv_rate", rate(sum.received_measured)},
                {"bytes_sent", sum.bytes_sent},
                {"bytes_received", sum.bytes_received},
                {"errors", sum.errors}};
    if (first_attempt >= 0 && last_connack > first_attempt && sum.connect_ok > 1) {
        totals["connect_rate"] = static_cast<double>(sum.connect_ok) /
                                 (static_cast<double>(last_connack - first_attempt) / 1e9);
    }
    json doc{{"tool", "tern-bench"},
             {"version", TERN_BENCH_VERSION},
             {"mode", o.mode},
             {"scenario", sc.name},
             {"target",
              {{"host", o.host},
               {"port", o.port},
               {"tls", o.tls.enabled},
               {"transport", std::string(net::to_string(o.transport))},
               {"protocol", static_cast<int>(sc.protocol)}}},
             {"started_at", iso8601_utc(start_wall)},
             {"duration_s", measured},
             {"warmup_s", sc.warmup},
             {"totals", std::move(totals)}};
    if (!sc.description.empty()) {
        doc["description"] = sc.description;
    }
    if (latency.count() > 0) {
        doc["latency_us"] = latency_json(latency);
    }
    if (connack.count() > 0) {
        doc["connack_latency_us"] = latency_json(connack);
    }
    if (ack.count() > 0) {
        doc["ack_latency_us"] = latency_json(ack);
    }
    doc["histogram"] = histogram_json(latency);
    doc["timeline"] = std::move(timeline);
    json group_list = json::array();
    for (const auto& u : units) {
        if (!u->shared()) {
            continue;
        }
        std::uint64_t group_total = 0;
        for (const auto* m : u->members) {
            group_total += m->received();
        }
        json members = json::array();
        for (const auto* m : u->members) {
            members.push_back({{"client", m->plan().client_id},
                               {"received", m->received()},
                               {"share", group_total > 0 ? static_cast<double>(m->received()) /
                                                               static_cast<double>(group_total)
                                                         : 0.0}});
        }
        group_list.push_back({{"name", u->share}, {"filter", u->filter}, {"members", members}});
    }
    if (!group_list.empty()) {
        doc["groups"] = std::move(group_list);
    }
    out.result = std::move(doc);

    if (hard_hit) {
        out.exit_code = 1;
        out.error = fmt::format("{}: the run did not end within its hard deadline "
                                "(ramp + warmup + duration + drain + 10 s); results are partial",
                                where);
    } else if (total > 0 && sum.connect_ok == 0) {
        out.exit_code = 1;
        out.error = fmt::format("{}: every connection failed ({})", where, top_reasons(failures));
    } else if (total > 0 && tick > 1 && last_connections == 0 && sum.errors > 0) {
        out.exit_code = 1;
        out.error = fmt::format("{}: every connection was lost ({})", where, top_reasons(failures));
    } else if (sum.connect_failed > 0) {
        out.warnings.push_back(fmt::format("{} of {} connections to {} failed ({})",
                                           sum.connect_failed, total, where,
                                           top_reasons(failures)));
    }
    if (!hard_hit && measured <= 0 && sc.has_publishers()) {
        out.warnings.push_back("publishing ended before the measured window began: rates are 0");
    }
    return out;
}

} // namespace tern::bench
