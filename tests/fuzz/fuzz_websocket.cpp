// libFuzzer target for the WebSocket codec (net/websocket_frame): the first byte picks
//   even: the deframer — the input (after a 1-byte cut seed) fed whole and fed in cuts derived
//         from the seed must give the same MQTT stream, the same error and the same pings;
//   odd:  the HTTP upgrade answer — never crashes; an accepted answer is a 101 whose accept key
//         is the key's, a refusal is an HTTP error status with a body.
#include <tern/net/websocket_frame.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace ws = tern::net::websocket;

namespace {

void invariant(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FUZZ INVARIANT VIOLATED: %s\n", what);
        std::abort();
    }
}

struct outcome {
    std::string payload;
    ws::frame_error error = ws::frame_error::none;
    std::vector<std::string> pings;
    bool closed = false;
};

outcome run(std::vector<std::uint8_t> bytes, std::uint8_t seed) {
    ws::deframer d(1U << 20);
    outcome o;
    std::size_t at = 0;
    std::size_t step = seed == 0 ? bytes.size() : seed;
    while (at < bytes.size()) {
        const std::size_t n = std::min(step == 0 ? bytes.size() : step, bytes.size() - at);
        const auto r = d.feed(bytes.data() + at, n);
        invariant(r.payload <= n, "payload larger than the chunk");
        o.payload.append(reinterpret_cast<const char*>(bytes.data() + at), r.payload);
        for (auto& p : d.take_pings()) {
            invariant(p.size() <= 125, "ping payload over 125 bytes");
            o.pings.push_back(std::move(p));
        }
        if (r.error != ws::frame_error::none) {
            o.error = r.error;
            break;
        }
        at += n;
        step = 1 + (step * 7 + seed) % 61; // vary the cuts
    }
    o.closed = d.close_received().has_value();
    return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    if ((data[0] & 1) == 0) {
        const std::vector<std::uint8_t> bytes(data + 2, data + size);
        const auto whole = run(bytes, 0);
        const auto cut = run(bytes, data[1]);
        // An error stops the cut run at the chunk that holds it, and that chunk's payload is
        // not reported; compare only what both saw before any error.
        if (whole.error == ws::frame_error::none && cut.error == ws::frame_error::none) {
            invariant(whole.payload == cut.payload, "cut changed the stream");
            invariant(whole.pings == cut.pings, "cut changed the pings");
            invariant(whole.closed == cut.closed, "cut changed the close");
        } else {
            invariant(whole.error == cut.error, "cut changed the error");
        }
        return 0;
    }
    const std::string_view request(reinterpret_cast<const char*>(data + 1), size - 1);
    const auto a = ws::answer_upgrade(request);
    if (a.accepted) {
        invariant(a.response.starts_with("HTTP/1.1 101 "), "accepted without 101");
        invariant(a.protocol == "mqtt" || a.protocol == "mqttv3.1", "non-MQTT subprotocol");
    } else {
        invariant(a.response.starts_with("HTTP/1.1 4"), "refusal without a 4xx status");
        invariant(!a.error.empty(), "refusal without a reason");
    }
    return 0;
}
