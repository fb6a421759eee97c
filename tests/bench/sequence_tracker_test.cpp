// tern-bench loss / duplicate / reordering accounting, and the payload header it reads.
#include "payload.hpp"
#include "sequence_tracker.hpp"

#include <catch2/catch.hpp>

#include <vector>

using tern::bench::sequence_window;

TEST_CASE("in-order delivery: no loss, no duplicates, no reordering", "[bench][sequence]") {
    sequence_window w(0);
    for (std::uint64_t s = 0; s < 10'000; ++s) {
        const auto r = w.record(s);
        REQUIRE_FALSE(r.duplicate);
        REQUIRE_FALSE(r.reordered);
    }
    CHECK(w.unique() == 10'000);
    CHECK(w.missing_below(10'000) == 0);
    CHECK(w.gaps() == 0);
    // Messages sent but never received at the tail are missing too.
    CHECK(w.missing_below(10'005) == 5);
}

TEST_CASE("duplicates are counted once each, inside and behind the window", "[bench][sequence]") {
    sequence_window w(0);
    w.record(0);
    w.record(1);
    w.record(3);
    CHECK(w.record(3).duplicate); // in the window (2 is still a hole)
    CHECK(w.record(0).duplicate); // below the base
    CHECK(w.duplicates() == 2);
    CHECK(w.unique() == 3);
}

TEST_CASE("reordering and loss", "[bench][sequence]") {
    sequence_window w(0);
    for (const std::uint64_t s : {0U, 2U, 1U, 3U, 5U, 6U}) {
        w.record(s);
    }
    CHECK(w.reordered() == 1); // 1 after 2
    CHECK(w.duplicates() == 0);
    CHECK(w.missing_below(7) == 1); // 4
    CHECK(w.gaps() == 1);
    w.record(4); // late, not lost after all
    CHECK(w.missing_below(7) == 0);
    CHECK(w.reordered() == 2);
}

TEST_CASE("a wide hole grows the window instead of guessing", "[bench][sequence]") {
    sequence_window w(0);
    w.record(0);
    w.record(100'000); // 99'999 overtaken messages
    CHECK(w.missing_below(100'001) == 99'999);
    for (std::uint64_t s = 1; s < 100'000; ++s) {
        REQUIRE_FALSE(w.record(s).duplicate);
    }
    CHECK(w.missing_below(100'001) == 0);
    CHECK(w.reordered() == 99'999);
    CHECK(w.record(50'000).duplicate);
}

TEST_CASE("beyond the largest window the oldest holes are given up as missing",
          "[bench][sequence]") {
    sequence_window w(0);
    const std::uint64_t far = sequence_window::max_bits * 3;
    w.record(0);
    w.record(far);
    CHECK(w.missing_below(far + 1) == far - 1);
    // One of the given-up numbers arrives after all: it counts once, as reordered.
    const auto r = w.record(7);
    CHECK_FALSE(r.duplicate);
    CHECK(r.reordered);
    CHECK(w.unique() == 3);
    CHECK(w.missing_below(far + 1) == far - 2);
}

TEST_CASE("an unknown origin starts at the first number seen", "[bench][sequence]") {
    sequence_window w; // a subscriber that joined a running publisher
    w.record(500);
    w.record(501);
    w.record(503);
    CHECK(w.gaps() == 1);
    CHECK(w.missing_below(504) == 1);
    const auto early = w.record(499); // sent before we heard the stream: counted, reordered
    CHECK_FALSE(early.duplicate);
    CHECK(early.reordered);
}

TEST_CASE("a stream never heard from misses everything sent", "[bench][sequence]") {
    sequence_window w(0);
    CHECK(w.missing_below(42) == 42);
    sequence_window unknown;
    CHECK(unknown.missing_below(42) == 0);
}

TEST_CASE("payload header round trip and foreign payloads", "[bench][payload]") {
    using namespace tern::bench;
    std::vector<std::uint8_t> buf(64, 0xEE);
    const payload_header h{0xDEADBEEF, 17, 3, 0x0102030405060708ULL, 1'700'000'000'123'456'789ULL};
    write_payload_header(buf.data(), h);
    const auto back = read_payload_header(
        std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()));
    REQUIRE(back);
    CHECK(back->run_tag == h.run_tag);
    CHECK(back->publisher == h.publisher);
    CHECK(back->stream == h.stream);
    CHECK(back->sequence == h.sequence);
    CHECK(back->sent_ns == h.sent_ns);
    CHECK(back->publisher_id() == (std::uint64_t{0xDEADBEEF} << 32 | 17));
    CHECK(buf[0] == 'T'); // "TNB1" on the wire
    CHECK(buf[3] == '1');

    CHECK_FALSE(read_payload_header("hello world, this is not a tern-bench payload!"));
    CHECK_FALSE(
        read_payload_header(std::string_view(reinterpret_cast<const char*>(buf.data()), 31)));
}
