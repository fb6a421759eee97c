/// fuzz_mosquitto_db: parse_mosquitto_db on arbitrary bytes (a mosquitto.db, corrupt or not).
/// It must return exactly one of the contents and an error, never crash, hang, leak or hit
/// undefined behaviour, allocate no more than a small multiple of the input (libFuzzer's
/// -rss_limit_mb and -malloc_limit_mb catch a length field trusted too far), and what it
/// returns must be what the import relies on:
///   - an error is never empty and, past the file header, names an offset;
///   - sessions are keyed 1..N (next_key N + 1), with unique client ids and one details entry
///     each; every delivery is QoS 1 or 2, and released only at QoS 2 with a packet id;
///   - retained messages have RETAIN, a payload and distinct topics;
///   - the naming list holds every message of every session exactly once;
///   - parsing the same bytes again gives the same counts (no hidden state).
/// Seeds: tests/fuzz/corpus/fuzz_mosquitto_db/ (a database written by Mosquitto 2.0.11).

#include <tern/store/mosquitto_db.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void fail(const char* what) noexcept {
    std::fprintf(stderr, "FUZZ INVARIANT VIOLATED: %s\n", what);
    std::fflush(stderr);
    std::abort();
}

#define DB_FUZZ_STR2(x) #x
#define DB_FUZZ_STR(x) DB_FUZZ_STR2(x)
#define DB_FUZZ_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(__FILE__ ":" DB_FUZZ_STR(__LINE__) ": " #cond);                                   \
        }                                                                                          \
    } while (false)

// Fixed clocks: the same input always takes the same path (Message Expiry included). The
// wall time is that of the seed file, so its messages are alive.
const auto wall_now = std::chrono::system_clock::time_point(std::chrono::seconds(1796282000));
const auto now = std::chrono::steady_clock::time_point(std::chrono::hours(1));

std::size_t total_messages(const tern::store::mosquitto_db_contents& c) {
    std::size_t n = 0;
    for (const auto& s : c.state.sessions) {
        n += s.messages.size();
    }
    return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    std::string error;
    const auto c = tern::store::parse_mosquitto_db(bytes, wall_now, now, error);
    if (!c) {
        DB_FUZZ_CHECK(!error.empty());
        if (size >= 23 && error.find("not a Mosquitto database") == std::string::npos) {
            DB_FUZZ_CHECK(error.find("offset ") != std::string::npos);
        }
        return 0;
    }
    DB_FUZZ_CHECK(c->version >= tern::store::mosquitto_db_oldest_version &&
                  c->version <= tern::store::mosquitto_db_newest_version);
    const auto& sessions = c->state.sessions;
    DB_FUZZ_CHECK(c->details.size() == sessions.size());
    DB_FUZZ_CHECK(c->state.next_key == sessions.size() + 1);
    std::set<std::string> ids;
    std::set<const tern::broker::message*> in_sessions;
    for (std::size_t i = 0; i < sessions.size(); ++i) {
        const auto& s = sessions[i];
        DB_FUZZ_CHECK(s.key == i + 1);
        DB_FUZZ_CHECK(!s.client_id.empty());
        DB_FUZZ_CHECK(ids.insert(s.client_id).second);
        DB_FUZZ_CHECK(s.expiry_interval != 0);
        std::set<std::string> filters;
        for (const auto& [filter, sub] : s.subscriptions) {
            DB_FUZZ_CHECK(filters.insert(filter).second);
            DB_FUZZ_CHECK(static_cast<unsigned>(sub.options.qos) <= 2);
        }
        for (const auto& [m, d] : s.messages) {
            DB_FUZZ_CHECK(m != nullptr && m->stored == nullptr);
            DB_FUZZ_CHECK(d.qos != tern::protocol::qos::at_most_once);
            DB_FUZZ_CHECK(static_cast<unsigned>(d.qos) <= 2);
            DB_FUZZ_CHECK(!d.released ||
                          (d.qos == tern::protocol::qos::exactly_once && d.packet_id != 0));
            DB_FUZZ_CHECK(!m->publish.topic.empty());
            in_sessions.insert(m.get());
        }
    }
    std::set<std::string_view> topics;
    for (const auto& m : c->state.retained) {
        DB_FUZZ_CHECK(m->publish.retain);
        DB_FUZZ_CHECK(!m->publish.payload.empty());
        DB_FUZZ_CHECK(topics.insert(m->publish.topic).second);
    }
    std::set<const tern::broker::message*> listed;
    for (const auto& m : c->messages) {
        DB_FUZZ_CHECK(listed.insert(m.get()).second);
    }
    DB_FUZZ_CHECK(listed == in_sessions);

    std::string again_error;
    const auto again = tern::store::parse_mosquitto_db(bytes, wall_now, now, again_error);
    DB_FUZZ_CHECK(again && again->state.sessions.size() == sessions.size() &&
                  total_messages(*again) == total_messages(*c) &&
                  again->state.retained.size() == c->state.retained.size());
    return 0;
}
