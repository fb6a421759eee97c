// The RocksDB session store on its own, in a scratch directory: which records a delivery
// writes (a ref only for a delivery left on disk), when a message body is collected, what a
// restart with messages still in memory leaves (recovery adds the missing refs), and the
// format record (an older store is upgraded, a newer one refused). After each scenario the
// database is opened directly with RocksDB to count what is on disk.

#include <tern/store/records.hpp>
#include <tern/store/rocksdb_store.hpp>

#include <rocksdb/db.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace tern;
using namespace std::chrono_literals;

namespace {

class scratch_dir {
public:
    scratch_dir() {
        std::string pattern = "/tmp/tern-store-test-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = pattern;
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    std::string store() const { return path_ + "/tern.db"; }

private:
    std::string path_;
};

std::unique_ptr<store::rocksdb_store> open_store(const std::string& path) {
    std::string error;
    auto s = store::rocksdb_store::open({.path = path}, error);
    INFO(error);
    REQUIRE(s);
    return s;
}

/// A new store, recovered (nothing to recover) as the broker does before it runs.
std::unique_ptr<store::rocksdb_store> open_empty_store(const std::string& path) {
    auto s = open_store(path);
    const auto state = s->recover(std::chrono::steady_clock::now());
    REQUIRE(state.sessions.empty());
    return s;
}

/// Submits `batch` and waits (bounded) until the store has made it durable.
void commit(store::rocksdb_store& s, broker::store_batch& batch) {
    const auto ticket = batch.submit();
    REQUIRE(ticket != 0);
    for (int i = 0; i < 500 && s.durable_ticket() < ticket; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    REQUIRE(s.durable_ticket() >= ticket);
}

/// Lets the writer finish a round after the one that carried earlier changes (it collects
/// bodies after each round): one more durable batch.
void one_more_round(store::rocksdb_store& s) {
    auto b = s.make_batch(0);
    b->inbound_qos2_added(999, 1);
    commit(s, *b);
}

void wait_collected(store::rocksdb_store& s, std::uint64_t n) {
    for (int i = 0; i < 500 && s.stats().bodies_collected < n; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    CHECK(s.stats().bodies_collected == n);
}

broker::message_ptr named(store::rocksdb_store& s, const std::string& topic,
                          const std::string& payload) {
    auto m = std::const_pointer_cast<broker::message>(broker::make_owned_message(
        topic, payload, protocol::qos::at_least_once, false, std::chrono::steady_clock::now()));
    s.name_message(*m);
    return m;
}

void save_session(broker::store_batch& b, const std::string& client_id, std::uint64_t key) {
    broker::stored_session rec;
    rec.client_id = client_id;
    rec.key = key;
    rec.expiry_interval = 3600;
    rec.version = protocol::protocol_version::v5;
    rec.offline_since = std::chrono::system_clock::now();
    b.session_saved(rec);
}

broker::stored_delivery queued_at_qos1() {
    broker::stored_delivery d;
    d.qos = protocol::qos::at_least_once;
    return d;
}

/// The store's database opened with RocksDB itself, every column family (the store must be
/// closed).
class raw_db {
public:
    raw_db(const std::string& path, bool read_only) {
        REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names_).ok());
        std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
        for (const auto& n : names_) {
            descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
        }
        rocksdb::DB* raw = nullptr;
        const auto st =
            read_only ? rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, descriptors,
                                                     &handles_, &raw)
                      : rocksdb::DB::Open(rocksdb::DBOptions(), path, descriptors, &handles_, &raw);
        REQUIRE(st.ok());
        db_.reset(raw);
    }
    ~raw_db() {
        for (auto* h : handles_) {
            (void)db_->DestroyColumnFamilyHandle(h);
        }
    }
    raw_db(const raw_db&) = delete;
    raw_db& operator=(const raw_db&) = delete;

    std::map<std::string, std::size_t> count_records() const {
        std::map<std::string, std::size_t> counts;
        for (std::size_t i = 0; i < handles_.size(); ++i) {
            std::unique_ptr<rocksdb::Iterator> it(
                db_->NewIterator(rocksdb::ReadOptions(), handles_[i]));
            std::size_t n = 0;
            for (it->SeekToFirst(); it->Valid(); it->Next()) {
                ++n;
            }
            counts[names_[i]] = n;
        }
        return counts;
    }
    std::uint64_t format() const {
        std::string v;
        REQUIRE(db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), "format", &v).ok());
        const auto f = store::decode_u64(v);
        REQUIRE(f);
        return *f;
    }
    void set_format(std::uint64_t f) {
        rocksdb::WriteOptions wo;
        wo.sync = true;
        REQUIRE(db_->Put(wo, db_->DefaultColumnFamily(), "format", store::encode_u64(f)).ok());
    }

private:
    std::vector<std::string> names_;
    std::vector<rocksdb::ColumnFamilyHandle*> handles_;
    std::unique_ptr<rocksdb::DB> db_;
};

std::map<std::string, std::size_t> count_records(const std::string& path) {
    return raw_db(path, true).count_records();
}

/// Closes the store (what was submitted is written) and counts its records.
std::map<std::string, std::size_t> close_and_count(std::unique_ptr<store::rocksdb_store>& s,
                                                   const std::string& path) {
    s->seal();
    s.reset();
    return count_records(path);
}

/// Ends the store as a crash would, as far as the records go: what was submitted is
/// written, and the messages still in memory afterwards change nothing.
void stop_with_messages_in_memory(std::unique_ptr<store::rocksdb_store>& s,
                                  std::vector<broker::message_ptr>& in_memory) {
    s->seal();
    in_memory.clear();
    s.reset();
}

} // namespace

TEST_CASE("rocksdb store: a delivery made while its message is in memory writes no ref, and "
          "the body goes with the last holder once the delivery is removed",
          "[store][rocksdb]") {
    scratch_dir dir;
    auto s = open_empty_store(dir.store());
    auto m = named(*s, "plant/1", "one");
    auto b = s->make_batch(0);
    save_session(*b, "online", 1);
    b->delivery_saved(1, *m, queued_at_qos1());
    commit(*s, *b);
    b->delivery_removed(1, *m);
    commit(*s, *b);
    m.reset();
    one_more_round(*s);
    wait_collected(*s, 1);
    const auto counts = close_and_count(s, dir.store());
    CHECK(counts.at("deliveries") == 0);
    CHECK(counts.at("refs") == 0);
    CHECK(counts.at("bodies") == 0);
    CHECK(counts.at("sessions") == 1);
}

TEST_CASE("rocksdb store: a message left on disk keeps its body after every message in memory "
          "let go, pages back in, and is collected once its delivery is removed",
          "[store][rocksdb]") {
    scratch_dir dir;
    auto s = open_empty_store(dir.store());
    auto m = named(*s, "plant/2", "two");
    auto b = s->make_batch(0);
    save_session(*b, "offline", 2);
    b->delivery_saved(2, *m, queued_at_qos1());
    b->delivery_left_on_disk(2, *m);
    commit(*s, *b);
    m.reset();
    one_more_round(*s);
    one_more_round(*s);
    CHECK(s->stats().bodies_collected == 0);

    auto page = s->page_in(2, 0, UINT64_MAX, 10, std::chrono::steady_clock::now());
    REQUIRE(page.items.size() == 1);
    CHECK(page.end);
    CHECK(page.items[0].msg->publish.payload == "two");
    b->delivery_removed(2, *page.items[0].msg);
    commit(*s, *b);
    page.items.clear();
    one_more_round(*s);
    wait_collected(*s, 1);
    const auto counts = close_and_count(s, dir.store());
    CHECK(counts.at("deliveries") == 0);
    CHECK(counts.at("refs") == 0);
    CHECK(counts.at("bodies") == 0);
}

TEST_CASE("rocksdb store: a page-in reads message ids in [from, until) only, in id order, and "
          "says when that range has no more",
          "[store][rocksdb]") {
    scratch_dir dir;
    auto s = open_empty_store(dir.store());
    std::vector<broker::message_ptr> messages;
    auto b = s->make_batch(0);
    save_session(*b, "pager", 7);
    for (const auto* payload : {"first", "second", "third"}) {
        messages.push_back(named(*s, "plant/7", payload));
        b->delivery_saved(7, *messages.back(), queued_at_qos1());
        b->delivery_left_on_disk(7, *messages.back());
    }
    commit(*s, *b);
    const auto third = messages[2]->stored->id;
    const auto now = std::chrono::steady_clock::now();
    const auto below = s->page_in(7, 0, third, 10, now);
    REQUIRE(below.items.size() == 2);
    CHECK(below.items[0].msg->publish.payload == "first");
    CHECK(below.items[1].msg->publish.payload == "second");
    CHECK(below.end);
    const auto one = s->page_in(7, 0, UINT64_MAX, 1, now);
    REQUIRE(one.items.size() == 1);
    CHECK_FALSE(one.end);
    CHECK(one.next_from == messages[0]->stored->id + 1);
    const auto rest = s->page_in(7, third, UINT64_MAX, 10, now);
    REQUIRE(rest.items.size() == 1);
    CHECK(rest.items[0].msg->publish.payload == "third");
    CHECK(rest.end);
}

TEST_CASE("rocksdb store: one message for an online and an offline session: the online one's "
          "acknowledgement leaves the body for the offline one",
          "[store][rocksdb]") {
    scratch_dir dir;
    auto s = open_empty_store(dir.store());
    auto m = named(*s, "plant/3", "three");
    auto b = s->make_batch(0);
    save_session(*b, "online", 1);
    save_session(*b, "offline", 2);
    b->delivery_saved(1, *m, queued_at_qos1());
    b->delivery_saved(2, *m, queued_at_qos1());
    b->delivery_left_on_disk(2, *m);
    commit(*s, *b);
    b->delivery_removed(1, *m);
    commit(*s, *b);
    m.reset();
    one_more_round(*s);
    one_more_round(*s);
    CHECK(s->stats().bodies_collected == 0);
    const auto page = s->page_in(2, 0, UINT64_MAX, 10, std::chrono::steady_clock::now());
    REQUIRE(page.items.size() == 1);
    CHECK(page.items[0].msg->publish.payload == "three");
    CHECK(s->page_in(1, 0, UINT64_MAX, 10, std::chrono::steady_clock::now()).items.empty());
}

TEST_CASE("rocksdb store: a restart with queued messages still in memory (no refs): recovery "
          "counts them on disk and adds their refs, so they survive a second restart unread",
          "[store][rocksdb]") {
    scratch_dir dir;
    {
        auto s = open_empty_store(dir.store());
        std::vector<broker::message_ptr> in_memory{named(*s, "plant/4", "a"),
                                                   named(*s, "plant/4", "b")};
        auto b = s->make_batch(0);
        save_session(*b, "resumer", 4);
        for (const auto& m : in_memory) {
            b->delivery_saved(4, *m, queued_at_qos1());
        }
        commit(*s, *b);
        stop_with_messages_in_memory(s, in_memory);
    }
    auto counts = count_records(dir.store());
    CHECK(counts.at("deliveries") == 2);
    CHECK(counts.at("refs") == 0);
    CHECK(counts.at("bodies") == 2);
    for (int restart = 1; restart <= 2; ++restart) {
        INFO("restart " << restart);
        auto s = open_store(dir.store());
        const auto state = s->recover(std::chrono::steady_clock::now());
        REQUIRE(state.sessions.size() == 1);
        CHECK(state.sessions[0].client_id == "resumer");
        CHECK(state.sessions[0].on_disk == 2);
        one_more_round(*s); // bodies a recovery wrongly dropped would be gone by now
        s->seal();
        s.reset();
        counts = count_records(dir.store());
        CHECK(counts.at("deliveries") == 2);
        CHECK(counts.at("refs") == 2);
        CHECK(counts.at("bodies") == 2);
    }
    auto s = open_store(dir.store());
    const auto state = s->recover(std::chrono::steady_clock::now());
    REQUIRE(state.sessions.size() == 1);
    const auto page = s->page_in(state.sessions[0].key, state.sessions[0].on_disk_from, UINT64_MAX,
                                 10, std::chrono::steady_clock::now());
    REQUIRE(page.items.size() == 2);
    CHECK(page.items[0].msg->publish.payload == "a");
    CHECK(page.items[1].msg->publish.payload == "b");
}

TEST_CASE("rocksdb store: recovery drops refs and bodies no delivery names", "[store][rocksdb]") {
    scratch_dir dir;
    {
        auto s = open_empty_store(dir.store());
        std::vector<broker::message_ptr> in_memory{named(*s, "plant/5", "gone")};
        auto b = s->make_batch(0);
        save_session(*b, "ender", 5);
        b->delivery_saved(5, *in_memory[0], queued_at_qos1());
        b->delivery_left_on_disk(5, *in_memory[0]);
        commit(*s, *b);
        b->deliveries_cleared(5);
        commit(*s, *b);
        stop_with_messages_in_memory(s, in_memory);
    }
    {
        auto s = open_store(dir.store());
        const auto state = s->recover(std::chrono::steady_clock::now());
        REQUIRE(state.sessions.size() == 1);
        CHECK(state.sessions[0].on_disk == 0);
        s->seal();
    }
    const auto counts = count_records(dir.store());
    CHECK(counts.at("deliveries") == 0);
    CHECK(counts.at("refs") == 0);
    CHECK(counts.at("bodies") == 0);
}

TEST_CASE("rocksdb store: a format 1 store opens, is upgraded to format 2, and keeps its queue; "
          "a store of a newer format is refused naming its path",
          "[store][rocksdb]") {
    scratch_dir dir;
    {
        auto s = open_empty_store(dir.store());
        std::vector<broker::message_ptr> in_memory{named(*s, "plant/6", "kept")};
        auto b = s->make_batch(0);
        save_session(*b, "old", 6);
        b->delivery_saved(6, *in_memory[0], queued_at_qos1());
        b->delivery_left_on_disk(6, *in_memory[0]); // format 1 wrote a ref for every delivery
        commit(*s, *b);
        stop_with_messages_in_memory(s, in_memory);
    }
    raw_db(dir.store(), false).set_format(1);
    {
        auto s = open_store(dir.store());
        const auto state = s->recover(std::chrono::steady_clock::now());
        REQUIRE(state.sessions.size() == 1);
        CHECK(state.sessions[0].on_disk == 1);
        s->seal();
    }
    CHECK(raw_db(dir.store(), true).format() == store::store_format);
    CHECK(store::store_format == 2);

    raw_db(dir.store(), false).set_format(store::store_format + 1);
    std::string error;
    CHECK_FALSE(store::rocksdb_store::open({.path = dir.store()}, error));
    CHECK(error.find(dir.store()) != std::string::npos);
    CHECK(error.find("newer") != std::string::npos);
    CHECK(raw_db(dir.store(), true).format() == store::store_format + 1); // untouched
}
