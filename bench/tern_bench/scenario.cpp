#include "scenario.hpp"

#include <tern/protocol/topic.hpp>

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace tern::bench {

namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& why) {
    throw config_error(path.empty() ? why : path + ": " + why);
}

std::string join(const std::string& path, const char* key) {
    return path.empty() ? std::string(key) : path + "." + key;
}

void check_fields(const json& obj, const std::string& path,
                  std::initializer_list<const char*> known) {
    if (!obj.is_object()) {
        fail(path, "must be an object");
    }
    for (const auto& [key, value] : obj.items()) {
        bool found = false;
        for (const char* k : known) {
            found = found || key == k;
        }
        if (!found) {
            std::string list;
            for (const char* k : known) {
                list += list.empty() ? "" : ", ";
                list += k;
            }
            fail(path.empty() ? key : path + "." + key, "unknown field (known: " + list + ")");
        }
    }
}

double number(const json& obj, const char* key, const std::string& path, double def, double lo,
              double hi) {
    const auto it = obj.find(key);
    if (it == obj.end()) {
        return def;
    }
    if (!it->is_number()) {
        fail(join(path, key), "must be a number");
    }
    const double v = it->get<double>();
    if (!std::isfinite(v) || v < lo || v > hi) {
        fail(join(path, key), fmt::format("must be between {} and {} (got {})", lo, hi, v));
    }
    return v;
}

std::uint64_t integer(const json& obj, const char* key, const std::string& path, std::uint64_t def,
                      std::uint64_t lo, std::uint64_t hi) {
    const auto it = obj.find(key);
    if (it == obj.end()) {
        return def;
    }
    if (!it->is_number_integer()) {
        fail(join(path, key), "must be an integer");
    }
    if (it->is_number_unsigned() || it->get<std::int64_t>() >= 0) {
        const auto v = it->get<std::uint64_t>();
        if (v >= lo && v <= hi) {
            return v;
        }
    }
    fail(join(path, key), fmt::format("must be between {} and {} (got {})", lo, hi, it->dump()));
}

std::string string(const json& obj, const char* key, const std::string& path, bool required,
                   std::string def = {}) {
    const auto it = obj.find(key);
    if (it == obj.end()) {
        if (required) {
            fail(join(path, key), "missing (required)");
        }
        return def;
    }
    if (!it->is_string()) {
        fail(join(path, key), "must be a string");
    }
    return it->get<std::string>();
}

bool boolean(const json& obj, const char* key, const std::string& path, bool def) {
    const auto it = obj.find(key);
    if (it == obj.end()) {
        return def;
    }
    if (!it->is_boolean()) {
        fail(join(path, key), "must be true or false");
    }
    return it->get<bool>();
}

protocol::qos qos_field(const json& obj, const std::string& path, protocol::qos def) {
    const auto it = obj.find("qos");
    if (it == obj.end()) {
        return def;
    }
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::int64_t>() > 2) {
        fail(join(path, "qos"), "must be 0, 1 or 2 (got " + it->dump() + ")");
    }
    return static_cast<protocol::qos>(it->get<int>());
}

topic_template template_field(const json& obj, const char* key, const std::string& path) {
    const std::string text = string(obj, key, path, true);
    if (text.empty()) {
        fail(join(path, key), "must not be empty");
    }
    try {
        return topic_template(text);
    } catch (const std::invalid_argument& e) {
        fail(join(path, key), e.what());
    }
}

/// A User Name or Password: any string (empty included), with the topic templates' `%`
/// sequences.
std::optional<topic_template> credential_field(const json& obj, const char* key,
                                               const std::string& path) {
    if (!obj.contains(key)) {
        return std::nullopt;
    }
    try {
        return topic_template(string(obj, key, path, true));
    } catch (const std::invalid_argument& e) {
        fail(join(path, key), e.what());
    }
}

/// "batch", "never" or "interval MS" (1..60000), as Tern's persistence_sync takes it.
bool valid_sync_policy(const std::string& text) {
    if (text == "batch" || text == "never") {
        return true;
    }
    constexpr std::string_view interval = "interval ";
    if (!text.starts_with(interval) || text.size() == interval.size() ||
        text.size() > interval.size() + 5) {
        return false;
    }
    std::uint32_t ms = 0;
    for (std::size_t i = interval.size(); i < text.size(); ++i) {
        if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
            return false;
        }
        ms = ms * 10 + static_cast<std::uint32_t>(text[i] - '0');
    }
    return ms >= 1 && ms <= 60000;
}

broker_spec broker_field(const json& obj) {
    check_fields(obj, "broker",
                 {"acl_file", "password_file", "generate_password_file", "persistence",
                  "persistence_sync", "brokers"});
    broker_spec b;
    b.acl_file = string(obj, "acl_file", "broker", false);
    b.password_file = string(obj, "password_file", "broker", false);
    b.generate_password_file = boolean(obj, "generate_password_file", "broker", false);
    b.persistence = boolean(obj, "persistence", "broker", false);
    b.persistence_sync = string(obj, "persistence_sync", "broker", false);
    if (obj.contains("persistence_sync")) {
        if (!valid_sync_policy(b.persistence_sync)) {
            fail("broker.persistence_sync",
                 "must be \"batch\", \"interval MS\" (1 to 60000) or \"never\" (got \"" +
                     b.persistence_sync + "\")");
        }
        if (!b.persistence) {
            fail("broker.persistence_sync", "needs \"persistence\": true");
        }
    }
    if (const auto it = obj.find("brokers"); it != obj.end()) {
        if (!it->is_array() || it->empty()) {
            fail("broker.brokers", "must be a non-empty list of broker names");
        }
        for (const auto& name : *it) {
            if (!name.is_string() || (name != "tern" && name != "mosquitto")) {
                fail("broker.brokers",
                     "knows \"tern\" and \"mosquitto\" (got " + name.dump() + ")");
            }
            b.brokers.push_back(name.get<std::string>());
        }
    }
    if (obj.contains("acl_file") && b.acl_file.empty()) {
        fail("broker.acl_file", "must not be empty");
    }
    if (obj.contains("password_file") && b.password_file.empty()) {
        fail("broker.password_file", "must not be empty");
    }
    if (b.generate_password_file && !b.password_file.empty()) {
        fail("broker.generate_password_file", "and broker.password_file exclude each other");
    }
    return b;
}

} // namespace

std::uint64_t scenario::total_clients() const noexcept {
    std::uint64_t n = 0;
    for (const auto& r : roles) {
        n += r.clients;
    }
    return n;
}

bool scenario::has_publishers() const noexcept {
    for (const auto& r : roles) {
        if (r.publish || r.reply) {
            return true;
        }
    }
    return false;
}

bool scenario::has_subscribers() const noexcept {
    for (const auto& r : roles) {
        if (r.subscribe) {
            return true;
        }
    }
    return false;
}

scenario parse_scenario(const json& doc) {
    check_fields(doc, "",
                 {"name", "description", "protocol", "qos", "size", "duration", "warmup", "ramp",
                  "drain", "connect_rate", "keepalive", "roles", "broker"});
    scenario s;
    s.name = string(doc, "name", "", false, "scenario");
    s.description = string(doc, "description", "", false);
    const auto level = integer(doc, "protocol", "", 4, 4, 5);
    s.protocol = level == 5 ? protocol::protocol_version::v5 : protocol::protocol_version::v3_1_1;
    const auto default_qos = qos_field(doc, "", protocol::qos::at_most_once);
    const auto default_size =
        static_cast<std::uint32_t>(integer(doc, "size", "", 64, 32, max_payload_size));
    s.duration = number(doc, "duration", "", s.duration, 0.001, 1e6);
    s.warmup = number(doc, "warmup", "", s.warmup, 0, 1e6);
    s.ramp = number(doc, "ramp", "", s.ramp, 0, 1e6);
    s.drain = number(doc, "drain", "", s.drain, 0, 1e6);
    s.connect_rate = number(doc, "connect_rate", "", s.connect_rate, 0, 1e9);
    s.keepalive = static_cast<std::uint16_t>(integer(doc, "keepalive", "", 60, 0, 65535));
    if (const auto b = doc.find("broker"); b != doc.end()) {
        s.broker = broker_field(*b);
    }

    const auto roles = doc.find("roles");
    if (roles == doc.end()) {
        fail("roles", "missing (required): a list of roles");
    }
    if (!roles->is_array() || roles->empty()) {
        fail("roles", "must be a non-empty list of roles");
    }
    for (std::size_t i = 0; i < roles->size(); ++i) {
        const auto& r = (*roles)[i];
        const std::string path = fmt::format("roles[{}]", i);
        check_fields(r, path,
                     {"name", "clients", "username", "password", "clean_session", "session_expiry",
                      "publish", "subscribe", "reply"});
        role_spec role;
        role.name = string(r, "name", path, true);
        for (const char c : role.name) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
                fail(join(path, "name"), "may only contain letters, digits, '_', '-' and '.'");
            }
        }
        if (role.name.empty()) {
            fail(join(path, "name"), "must not be empty");
        }
        role.clients = static_cast<std::uint32_t>(integer(r, "clients", path, 1, 1, 1'000'000));
        role.username = credential_field(r, "username", path);
        role.password = credential_field(r, "password", path);
        if (r.contains("clean_session")) {
            role.clean_session = boolean(r, "clean_session", path, true);
        }
        if (r.contains("session_expiry")) {
            role.session_expiry =
                static_cast<std::uint32_t>(integer(r, "session_expiry", path, 0, 0, 0xFFFFFFFF));
        }
        if (const auto p = r.find("publish"); p != r.end()) {
            const std::string pp = join(path, "publish");
            check_fields(*p, pp, {"topic", "rate", "qos", "size", "retain", "count", "inflight"});
            publish_spec spec;
            spec.topic = template_field(*p, "topic", pp);
            spec.rate = number(*p, "rate", pp, 0, 0, 1e9);
            spec.qos = qos_field(*p, pp, default_qos);
            spec.size = static_cast<std::uint32_t>(
                integer(*p, "size", pp, default_size, 32, max_payload_size));
            spec.retain = boolean(*p, "retain", pp, false);
            spec.count = integer(*p, "count", pp, 0, 0, std::uint64_t{1} << 62);
            spec.inflight = static_cast<std::uint16_t>(integer(*p, "inflight", pp, 64, 1, 65535));
            role.publish = std::move(spec);
        }
        if (const auto p = r.find("subscribe"); p != r.end()) {
            const std::string pp = join(path, "subscribe");
            check_fields(*p, pp, {"filter", "share", "qos", "count"});
            subscribe_spec spec;
            spec.filter = template_field(*p, "filter", pp);
            spec.share = string(*p, "share", pp, false);
            spec.qos = qos_field(*p, pp, default_qos);
            spec.count = integer(*p, "count", pp, 0, 0, std::uint64_t{1} << 62);
            // "$share/G/F" written out in the filter is the same as share G, filter F.
            if (spec.filter.text().starts_with("$share/")) {
                if (!spec.share.empty()) {
                    fail(join(pp, "filter"), "has a $share/ prefix and \"share\" is set too");
                }
                const auto parsed = protocol::parse_topic_filter(spec.filter.text());
                if (!parsed) {
                    fail(join(pp, "filter"),
                         "not a valid shared subscription filter: " + parsed.error().message());
                }
                spec.share = std::string(parsed->share_group);
                spec.filter = topic_template(parsed->filter);
            }
            role.subscribe = std::move(spec);
        }
        if (const auto p = r.find("reply"); p != r.end()) {
            const std::string pp = join(path, "reply");
            check_fields(*p, pp, {"topic", "qos", "size", "every", "retain"});
            reply_spec spec;
            spec.topic = template_field(*p, "topic", pp);
            spec.qos = qos_field(*p, pp, default_qos);
            spec.size = static_cast<std::uint32_t>(
                integer(*p, "size", pp, default_size, 32, max_payload_size));
            spec.every = static_cast<std::uint32_t>(integer(*p, "every", pp, 1, 1, 1'000'000'000));
            spec.retain = boolean(*p, "retain", pp, false);
            role.reply = std::move(spec);
        }
        s.roles.push_back(std::move(role));
    }
    validate_scenario(s);
    return s;
}

void validate_scenario(const scenario& s) {
    if (s.roles.empty()) {
        fail("roles", "must not be empty");
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < s.roles.size(); ++i) {
        const auto& r = s.roles[i];
        const std::string path = fmt::format("roles[{}]", i);
        if (!names.insert(r.name).second) {
            fail(join(path, "name"), "\"" + r.name + "\" is used by another role");
        }
        // Render with a sample index and client id: what the broker will see.
        const std::string sample_client = "tb-" + r.name + "-0-00000000";
        for (const auto& [field, value] :
             {std::pair{"username", &r.username}, std::pair{"password", &r.password}}) {
            if (*value && (*value)->uses_source()) {
                fail(join(path, field), "%p is only meaningful in reply.topic");
            }
        }
        if (r.username && !protocol::is_valid_utf8(r.username->render(0, sample_client))) {
            fail(join(path, "username"), "must be UTF-8 without U+0000 [MQTT-1.5.4-1..2]");
        }
        if (r.session_expiry && s.protocol == protocol::protocol_version::v3_1_1) {
            fail(join(path, "session_expiry"),
                 "MQTT 3.1.1 has no Session Expiry Interval: use \"clean_session\": false, or "
                 "\"protocol\": 5");
        }
        if (r.password && !r.username && s.protocol == protocol::protocol_version::v3_1_1) {
            fail(join(path, "password"),
                 "MQTT 3.1.1 sends a password only with a user name [MQTT-3.1.2-22]: set "
                 "\"username\" too, or \"protocol\": 5");
        }
        if (r.publish) {
            const auto& t = r.publish->topic;
            if (t.uses_source()) {
                fail(join(path, "publish.topic"), "%p is only meaningful in reply.topic");
            }
            const auto topic = t.render(0, sample_client);
            if (const auto ec = protocol::validate_topic_name(topic)) {
                fail(join(path, "publish.topic"),
                     "\"" + topic + "\" is not a valid topic name (" + ec.message() + ")");
            }
        }
        if (r.subscribe) {
            const auto& sub = *r.subscribe;
            if (sub.filter.uses_source()) {
                fail(join(path, "subscribe.filter"), "%p is only meaningful in reply.topic");
            }
            if (!sub.share.empty()) {
                if (sub.share.find_first_of("+#/") != std::string::npos) {
                    fail(join(path, "subscribe.share"), "must not contain '+', '#' or '/'");
                }
                if (!sub.filter.is_constant()) {
                    fail(join(path, "subscribe.filter"),
                         "must be the same for every member of a shared group (no %i or %c)");
                }
            }
            const auto filter = sub.filter.render(0, sample_client);
            const auto full = sub.share.empty() ? filter : "$share/" + sub.share + "/" + filter;
            const auto parsed = protocol::parse_topic_filter(full);
            if (!parsed) {
                fail(join(path, "subscribe.filter"), "\"" + full +
                                                         "\" is not a valid topic filter (" +
                                                         parsed.error().message() + ")");
            }
        }
        if (r.reply) {
            if (!r.subscribe) {
                fail(join(path, "reply"),
                     "needs a \"subscribe\" (replies answer received messages)");
            }
            const auto topic = r.reply->topic.render(0, sample_client, 0);
            if (const auto ec = protocol::validate_topic_name(topic)) {
                fail(join(path, "reply.topic"),
                     "\"" + topic + "\" is not a valid topic name (" + ec.message() + ")");
            }
        }
    }
}

std::optional<std::string> render_credential(const std::optional<topic_template>& field,
                                             std::uint64_t index, std::string_view client_id,
                                             const std::optional<std::string>& fallback) {
    return field ? field->render(index, client_id) : fallback;
}

scenario load_scenario_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw config_error("scenario " + path + ": cannot open: " + std::strerror(errno));
    }
    std::stringstream text;
    text << in.rdbuf();
    json doc;
    try {
        doc = json::parse(text.str());
    } catch (const json::parse_error& e) {
        std::string what = e.what();
        // Drop nlohmann's "[json.exception.parse_error.101] " prefix: the rest says where.
        if (const auto at = what.find("] "); at != std::string::npos) {
            what = what.substr(at + 2);
        }
        throw config_error("scenario " + path + ": not valid JSON: " + what);
    }
    try {
        auto s = parse_scenario(doc);
        return s;
    } catch (const config_error& e) {
        throw config_error("scenario " + path + ": " + e.what());
    }
}

} // namespace tern::bench
