#include "options.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <map>
#include <vector>

namespace tern::bench {

namespace {

// Which modes accept an option (bit per mode).
enum mode_bit : unsigned { m_conn = 1, m_pub = 2, m_sub = 4, m_run = 8, m_all = 15 };

unsigned mode_bit_of(const std::string& mode) {
    if (mode == "conn") {
        return m_conn;
    }
    if (mode == "pub") {
        return m_pub;
    }
    if (mode == "sub") {
        return m_sub;
    }
    return m_run;
}

struct option_info {
    bool takes_value;
    unsigned modes;
};

const std::map<std::string, option_info>& known_options() {
    static const std::map<std::string, option_info> options{
        {"host", {true, m_all}},          {"port", {true, m_all}},
        {"protocol", {true, m_all}},      {"username", {true, m_all}},
        {"password", {true, m_all}},      {"keepalive", {true, m_all}},
        {"clean", {false, m_all}},        {"no-clean", {false, m_all}},
        {"client-prefix", {true, m_all}}, {"connect-timeout", {true, m_all}},
        {"tls", {false, m_all}},          {"cafile", {true, m_all}},
        {"cert", {true, m_all}},          {"key", {true, m_all}},
        {"sni", {true, m_all}},           {"alpn", {true, m_all}},
        {"insecure", {false, m_all}},     {"clients", {true, m_conn | m_pub | m_sub}},
        {"connect-rate", {true, m_all}},  {"topic", {true, m_pub}},
        {"filter", {true, m_sub}},        {"share", {true, m_sub}},
        {"rate", {true, m_pub}},          {"size", {true, m_pub}},
        {"qos", {true, m_pub | m_sub}},   {"retain", {false, m_pub}},
        {"count", {true, m_pub | m_sub}}, {"inflight", {true, m_pub}},
        {"duration", {true, m_all}},      {"warmup", {true, m_all}},
        {"ramp", {true, m_all}},          {"drain", {true, m_all}},
        {"threads", {true, m_all}},       {"json", {false, m_all}},
        {"report", {true, m_all}},        {"progress", {false, m_all}},
        {"quiet", {false, m_all}},        {"transport", {true, m_all}},
        {"ws-path", {true, m_all}},
    };
    return options;
}

const std::map<char, std::string>& short_options() {
    static const std::map<char, std::string> options{
        {'p', "port"}, {'c', "clients"}, {'t', "topic"},    {'q', "qos"},
        {'s', "size"}, {'r', "rate"},    {'d', "duration"}, {'n', "count"},
    };
    return options;
}

double to_number(const std::string& name, const std::string& text, double lo, double hi) {
    double v = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc{} || ptr != end || !std::isfinite(v)) {
        throw config_error(fmt::format("--{}: \"{}\" is not a number", name, text));
    }
    if (v < lo || v > hi) {
        throw config_error(
            fmt::format("--{}: must be between {} and {} (got {})", name, lo, hi, text));
    }
    return v;
}

std::uint64_t to_integer(const std::string& name, const std::string& text, std::uint64_t lo,
                         std::uint64_t hi) {
    std::uint64_t v = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc{} || ptr != end) {
        throw config_error(fmt::format("--{}: \"{}\" is not a whole number", name, text));
    }
    if (v < lo || v > hi) {
        throw config_error(
            fmt::format("--{}: must be between {} and {} (got {})", name, lo, hi, text));
    }
    return v;
}

protocol::qos to_qos(const std::string& text) {
    return static_cast<protocol::qos>(to_integer("qos", text, 0, 2));
}

topic_template to_template(const std::string& name, const std::string& text) {
    if (text.empty()) {
        throw config_error("--" + name + ": must not be empty");
    }
    try {
        return topic_template(text);
    } catch (const std::invalid_argument& e) {
        throw config_error("--" + name + ": " + e.what());
    }
}

} // namespace

std::string usage_text() {
    return R"(Usage: tern-bench conn|pub|sub [options]
       tern-bench run SCENARIO.json [options]

Load generator for MQTT 3.1.1/5 brokers (bench/README.md has the details).

Modes:
  conn                 open --clients connections at --connect-rate, hold them --duration
  pub                  --clients publishers on --topic
  sub                  --clients subscribers on --filter (or members of --share GROUP)
  run SCENARIO.json    publishers, subscribers and idle connections from a scenario file

Target:
  --host HOST          broker host (default 127.0.0.1)
  -p, --port PORT      broker port (default 1883; tls 8883, ws 8080, wss 8443)
  --protocol 4|5       MQTT 3.1.1 or 5 (default 4)
  --username U, --password P
                       CONNECT credentials; in run mode for roles without their own
                       ("username"/"password" in the scenario, %i templated)
  --keepalive S        keep-alive seconds (default 60, 0 = off)
  --clean / --no-clean clean session / clean start (default --clean)
  --client-prefix P    client ids P-<mode>-<index>-<run tag> (default tb)
  --connect-timeout S  TCP + TLS + CONNACK deadline per connection (default 10)
  --transport T        tcp (default), tls, ws (MQTT over WebSocket) or wss (over TLS)
  --ws-path P          ws/wss: the WebSocket request path (default /mqtt)
  --tls                the same as --transport tls (with --transport wss: allowed)
                       TLS (tls, wss): --cafile F, --cert F, --key F (client certificate),
                       --sni NAME, --alpn PROTO, --insecure (no certificate verification)

Load:
  -c, --clients N      connections (default: conn 100, pub 1, sub 1)
  --connect-rate R     connects per second across all threads (default 1000, 0 = unbounded)
  -t, --topic T        publish topic; %i = client index, %c = client id (default tern-bench/%i)
  --filter F           subscription filter (default tern-bench/#)
  --share GROUP        subscribe as members of $share/GROUP/F
  -r, --rate R         messages/s per publisher (default 0: as fast as flow control allows)
  -s, --size B         payload bytes, at least 32 (the header; default 64)
  -q, --qos 0|1|2      publish / subscription QoS (default 0)
  --retain             publish with the retain flag
  -n, --count M        stop after M messages per publisher (pub) / received per subscriber (sub)
  --inflight W         QoS 1/2 window per publisher (default 64)

Timing (seconds):
  --ramp S             spread connects over S (default 0)
  --warmup S           after the ramp, excluded from statistics (default 0)
  -d, --duration S     measured time (default 10)
  --drain S            wait for stragglers / acknowledgements afterwards (default 2 for run
                       and pub, 0 otherwise)
  A run that outlasts ramp + warmup + duration + drain + 10 s is stopped (exit 1).

Output:
  --threads N          worker threads, one io_context each (default: hardware threads)
  --json               print the result document (JSON) instead of the summary table
  --report FILE.html   also write an HTML report
  --progress / --quiet force / silence the per-second progress line (default: on a terminal)
  --help, --version

Exit status: 0 success, 1 the run failed (unreachable broker, every connection failed, hard
deadline), 2 usage error or invalid scenario.
)";
}

command_line parse_command_line(int argc, const char* const* argv) {
    command_line cl;
    std::vector<std::string> args(argv + 1, argv + argc);
    for (const auto& a : args) {
        if (a == "--help") {
            cl.what = command_line::action::help;
            return cl;
        }
        if (a == "--version") {
            cl.what = command_line::action::version;
            return cl;
        }
    }
    if (args.empty()) {
        throw config_error("missing MODE (conn, pub, sub or run SCENARIO.json); see --help");
    }
    auto& o = cl.options;
    o.mode = args[0];
    if (o.mode != "conn" && o.mode != "pub" && o.mode != "sub" && o.mode != "run") {
        throw config_error("unknown mode \"" + o.mode + "\" (conn, pub, sub or run); see --help");
    }
    std::size_t i = 1;
    if (o.mode == "run") {
        if (args.size() < 2 || args[1].starts_with("-")) {
            throw config_error("run: missing SCENARIO.json");
        }
        o.scenario_file = args[1];
        i = 2;
    }

    // Collect the options first (last one wins), then apply them.
    std::map<std::string, std::string> given;
    for (; i < args.size(); ++i) {
        std::string arg = args[i];
        std::string name;
        std::optional<std::string> value;
        if (arg.starts_with("--")) {
            name = arg.substr(2);
            if (const auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
            }
        } else if (arg.size() == 2 && arg[0] == '-' && short_options().contains(arg[1])) {
            name = short_options().at(arg[1]);
        } else {
            throw config_error("unexpected argument \"" + arg + "\"; see --help");
        }
        const auto known = known_options().find(name);
        if (known == known_options().end()) {
            throw config_error("unknown option --" + name + "; see --help");
        }
        if ((known->second.modes & mode_bit_of(o.mode)) == 0) {
            throw config_error("--" + name + " does not apply to " + o.mode +
                               (o.mode == "run" ? " (set it in the scenario file)" : ""));
        }
        if (known->second.takes_value) {
            if (!value) {
                if (i + 1 >= args.size()) {
                    throw config_error("--" + name + ": missing value");
                }
                value = args[++i];
            }
        } else if (value) {
            throw config_error("--" + name + " takes no value");
        }
        if (name == "no-clean") {
            given.erase("clean");
        } else if (name == "clean") {
            given.erase("no-clean");
        }
        given[name] = value.value_or("");
    }
    auto has = [&](const char* name) { return given.contains(name); };
    auto get = [&](const char* name) { return given.at(name); };

    if (has("host")) {
        o.host = get("host");
        if (o.host.empty()) {
            throw config_error("--host: must not be empty");
        }
    }
    using kind = net::client_transport_kind;
    o.transport = has("tls") ? kind::tls : kind::tcp;
    if (has("transport")) {
        const auto k = net::parse_client_transport_kind(get("transport"));
        if (!k) {
            throw config_error("--transport: \"" + get("transport") +
                               "\" is not one of tcp, tls, ws, wss");
        }
        if (has("tls") && !net::uses_tls(*k)) {
            throw config_error("--tls contradicts --transport " + get("transport") +
                               (*k == kind::ws ? " (use --transport wss)" : ""));
        }
        o.transport = *k;
    }
    o.tls.enabled = net::uses_tls(o.transport);
    o.tls.insecure = has("insecure");
    for (const char* f : {"cafile", "cert", "key", "sni", "alpn", "insecure"}) {
        if (has(f) && !o.tls.enabled) {
            throw config_error(std::string("--") + f + " needs --tls (or --transport tls|wss)");
        }
    }
    if (has("ws-path")) {
        if (o.transport != kind::ws && o.transport != kind::wss) {
            throw config_error("--ws-path needs --transport ws or wss");
        }
        o.ws_path = get("ws-path");
        if (o.ws_path.empty() || o.ws_path[0] != '/' ||
            o.ws_path.find_first_of(" \r\n") != std::string::npos) {
            throw config_error("--ws-path: must start with '/' and contain no spaces");
        }
    }
    o.tls.cafile = has("cafile") ? get("cafile") : "";
    o.tls.cert = has("cert") ? get("cert") : "";
    o.tls.key = has("key") ? get("key") : "";
    o.tls.sni = has("sni") ? get("sni") : "";
    o.tls.alpn = has("alpn") ? get("alpn") : "";
    if (o.tls.cert.empty() != o.tls.key.empty()) {
        throw config_error("--cert and --key go together");
    }
    if (o.tls.alpn.size() > 255) {
        throw config_error("--alpn: at most 255 bytes");
    }
    o.port = o.transport == kind::tls   ? 8883
             : o.transport == kind::ws  ? 8080
             : o.transport == kind::wss ? 8443
                                        : 1883;
    if (has("port")) {
        o.port = static_cast<std::uint16_t>(to_integer("port", get("port"), 1, 65535));
    }
    if (has("username")) {
        o.username = get("username");
    }
    if (has("password")) {
        o.password = get("password");
    }
    o.clean = !has("no-clean");
    if (has("client-prefix")) {
        o.client_prefix = get("client-prefix");
        if (o.client_prefix.empty() || o.client_prefix.find_first_of("+#/") != std::string::npos) {
            throw config_error("--client-prefix: must be non-empty without '+', '#' or '/'");
        }
    }
    if (has("connect-timeout")) {
        o.connect_timeout = to_number("connect-timeout", get("connect-timeout"), 0.01, 3600);
    }
    if (has("threads")) {
        o.threads = static_cast<unsigned>(to_integer("threads", get("threads"), 1, 1024));
    }
    o.json = has("json");
    o.report = has("report") ? get("report") : "";
    if (has("report") && o.report.empty()) {
        throw config_error("--report: missing file name");
    }
    o.progress = has("progress");
    o.quiet = has("quiet");
    if (o.progress && o.quiet) {
        throw config_error("--progress and --quiet contradict each other");
    }

    auto& sc = o.sc;
    if (o.mode == "run") {
        sc = load_scenario_file(o.scenario_file);
    } else {
        sc.name = o.mode;
        role_spec role;
        role.name = o.mode;
        role.clients = o.mode == "conn" ? 100 : 1;
        if (has("clients")) {
            role.clients =
                static_cast<std::uint32_t>(to_integer("clients", get("clients"), 1, 1'000'000));
        }
        const auto q = has("qos") ? to_qos(get("qos")) : protocol::qos::at_most_once;
        if (o.mode == "pub") {
            publish_spec p;
            p.topic = to_template("topic", has("topic") ? get("topic") : "tern-bench/%i");
            p.rate = has("rate") ? to_number("rate", get("rate"), 0, 1e9) : 0;
            p.qos = q;
            if (has("size")) {
                p.size = static_cast<std::uint32_t>(
                    to_integer("size", get("size"), 0, max_payload_size));
                if (p.size < 32) {
                    throw config_error("--size: must be at least 32 (the payload header)");
                }
            }
            p.retain = has("retain");
            p.count =
                has("count") ? to_integer("count", get("count"), 1, std::uint64_t{1} << 62) : 0;
            if (has("inflight")) {
                p.inflight =
                    static_cast<std::uint16_t>(to_integer("inflight", get("inflight"), 1, 65535));
            }
            role.publish = std::move(p);
        } else if (o.mode == "sub") {
            subscribe_spec s;
            s.filter = to_template("filter", has("filter") ? get("filter") : "tern-bench/#");
            s.share = has("share") ? get("share") : "";
            if (has("share") && s.share.empty()) {
                throw config_error("--share: missing group name");
            }
            s.qos = q;
            s.count =
                has("count") ? to_integer("count", get("count"), 1, std::uint64_t{1} << 62) : 0;
            role.subscribe = std::move(s);
        }
        sc.roles.push_back(std::move(role));
        sc.drain = (o.mode == "pub") ? 2 : 0;
    }
    // Command-line values override the scenario's.
    if (has("duration")) {
        sc.duration = to_number("duration", get("duration"), 0.001, 1e6);
    }
    if (has("warmup")) {
        sc.warmup = to_number("warmup", get("warmup"), 0, 1e6);
    }
    if (has("ramp")) {
        sc.ramp = to_number("ramp", get("ramp"), 0, 1e6);
    }
    if (has("drain")) {
        sc.drain = to_number("drain", get("drain"), 0, 1e6);
    }
    if (has("connect-rate")) {
        sc.connect_rate = to_number("connect-rate", get("connect-rate"), 0, 1e9);
    }
    if (has("keepalive")) {
        sc.keepalive =
            static_cast<std::uint16_t>(to_integer("keepalive", get("keepalive"), 0, 65535));
    }
    if (has("protocol")) {
        const auto level = to_integer("protocol", get("protocol"), 4, 5);
        sc.protocol =
            level == 5 ? protocol::protocol_version::v5 : protocol::protocol_version::v3_1_1;
    }
    try {
        validate_scenario(sc);
    } catch (const config_error& e) {
        if (o.mode == "run") {
            throw config_error("scenario " + o.scenario_file + ": " + e.what());
        }
        // Name the option rather than the scenario field for the built-in modes.
        std::string what = e.what();
        for (const auto& [field, option] : {std::pair{"roles[0].publish.topic", "--topic"},
                                            std::pair{"roles[0].subscribe.filter", "--filter"},
                                            std::pair{"roles[0].subscribe.share", "--share"}}) {
            if (what.starts_with(field)) {
                what = option + what.substr(std::string_view(field).size());
            }
        }
        throw config_error(what);
    }
    return cl;
}

} // namespace tern::bench
