/// fuzz_store_records: the session store's record decoders (store/src/records.cpp) on arbitrary
/// bytes, as a damaged or foreign store would hand them over. The first byte picks the record
/// kind; the rest is the value or key. Each decoder must return a value or nullopt, never crash,
/// hang or hit undefined behaviour, and what it accepts must be stable:
///   - a decoded message, subscription or delivery encodes to bytes that decode to the same
///     thing (topic, payload, QoS, RETAIN, properties; every option; every field);
///   - a decoded session has a will that is empty or itself a message record;
///   - a key parser accepts exactly the lengths its format has, and the parts it returns
///     build the same key again.

#include <tern/store/records.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void fail(const char* what) noexcept {
    std::fprintf(stderr, "FUZZ INVARIANT VIOLATED: %s\n", what);
    std::fflush(stderr);
    std::abort();
}

#define RECORDS_FUZZ_STR2(x) #x
#define RECORDS_FUZZ_STR(x) RECORDS_FUZZ_STR2(x)
#define RECORDS_FUZZ_CHECK(cond)                                                                   \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(__FILE__ ":" RECORDS_FUZZ_STR(__LINE__) ": " #cond);                              \
        }                                                                                          \
    } while (false)

// Fixed clocks: the same input always takes the same path.
const auto wall_now = std::chrono::system_clock::time_point(std::chrono::seconds(1796282000));
const auto now = std::chrono::steady_clock::time_point(std::chrono::hours(1));

void message(std::string_view value) {
    const auto m = tern::store::decode_message(value, wall_now, now);
    if (!m) {
        return;
    }
    RECORDS_FUZZ_CHECK(*m != nullptr);
    RECORDS_FUZZ_CHECK((*m)->received_at <= now);
    // Encoded at the instant it was decoded, it comes back as old as it was.
    const auto age = now - (*m)->received_at;
    const auto again_bytes = tern::store::encode_message(
        **m, wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(age));
    const auto again = tern::store::decode_message(again_bytes, wall_now, now);
    RECORDS_FUZZ_CHECK(again.has_value());
    const auto& a = (*m)->publish;
    const auto& b = (*again)->publish;
    RECORDS_FUZZ_CHECK(a.topic == b.topic);
    RECORDS_FUZZ_CHECK(a.payload == b.payload);
    RECORDS_FUZZ_CHECK(a.qos == b.qos);
    RECORDS_FUZZ_CHECK(a.retain == b.retain);
    // The two properties a server never forwards are not kept (encode_message drops them).
    auto kept = a.props;
    kept.topic_alias.reset();
    kept.subscription_identifiers.clear();
    RECORDS_FUZZ_CHECK(kept == b.props);
}

void session(std::string_view value) {
    const auto s = tern::store::decode_session(value);
    if (!s) {
        return;
    }
    if (!s->will.empty()) {
        // The will is kept as a message record; the store decodes it at recovery (and counts
        // it corrupt when it does not decode): only that it does not crash matters here.
        (void)tern::store::decode_message(s->will, wall_now, now);
    }
}

void subscription(std::string_view value) {
    const auto sub = tern::store::decode_subscription(value);
    if (!sub) {
        return;
    }
    const auto again = tern::store::decode_subscription(tern::store::encode_subscription(*sub));
    RECORDS_FUZZ_CHECK(again.has_value());
    RECORDS_FUZZ_CHECK(*again == *sub);
}

void delivery(std::string_view value) {
    const auto d = tern::store::decode_delivery(value);
    if (!d) {
        return;
    }
    const auto again = tern::store::decode_delivery(tern::store::encode_delivery(*d));
    RECORDS_FUZZ_CHECK(again.has_value());
    RECORDS_FUZZ_CHECK(again->qos == d->qos);
    RECORDS_FUZZ_CHECK(again->retain == d->retain);
    RECORDS_FUZZ_CHECK(again->packet_id == d->packet_id);
    RECORDS_FUZZ_CHECK(again->released == d->released);
    RECORDS_FUZZ_CHECK(again->subscription_ids == d->subscription_ids);
}

void keys(std::string_view key) {
    using namespace tern::store;
    if (const auto v = decode_u64(key)) {
        RECORDS_FUZZ_CHECK(encode_u64(*v) == key);
    }
    const auto session_key = key_session(key);
    RECORDS_FUZZ_CHECK(session_key.has_value() == (key.size() >= 8));
    if (const auto id = delivery_key_message(key)) {
        RECORDS_FUZZ_CHECK(session_key.has_value());
        RECORDS_FUZZ_CHECK(delivery_key(*session_key, *id) == key);
    }
    if (const auto packet = inbound_key_packet(key)) {
        RECORDS_FUZZ_CHECK(session_key.has_value());
        RECORDS_FUZZ_CHECK(inbound_key(*session_key, *packet) == key);
    }
    if (const auto id = body_key_message(key)) {
        RECORDS_FUZZ_CHECK(body_key(*id) == key);
    }
    const auto ref_message = ref_key_message(key);
    const auto ref_session = ref_key_session(key);
    RECORDS_FUZZ_CHECK(ref_message.has_value() == (key.size() == 16));
    RECORDS_FUZZ_CHECK(ref_session.has_value() == ref_message.has_value());
    if (ref_message) {
        RECORDS_FUZZ_CHECK(ref_key(*ref_message, *ref_session) == key);
    }
    if (session_key) {
        const auto filter = subscription_key_filter(key);
        RECORDS_FUZZ_CHECK(subscription_key(*session_key, filter) == key);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 5) {
    case 0:
        message(rest);
        break;
    case 1:
        session(rest);
        break;
    case 2:
        subscription(rest);
        break;
    case 3:
        delivery(rest);
        break;
    default:
        keys(rest);
        break;
    }
    return 0;
}
