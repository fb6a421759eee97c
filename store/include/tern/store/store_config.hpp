#pragma once
/// The durable store's configuration directives (mosquitto's names, plus persistence_sync),
/// registered with the broker's configuration parser by the composition root (STYLE.md §1).
///
/// - `persistence true|false`: keep sessions, queued messages and retained messages on disk
///   (default false, as mosquitto).
/// - `persistence_location DIR`: the store is the directory DIR/tern.db (default: the
///   working directory).
/// - `persistence_file NAME`: the Mosquitto database imported from DIR when Tern has no
///   store yet (default mosquitto.db).
/// - `autosave_interval N`, `autosave_on_changes B`: accepted; Tern writes every change as
///   it happens (docs/store.md).
/// - `persistence_sync batch|interval MS|never`: when the write-ahead log is synced
///   (default batch).
///
/// Thread contract: start-up only.

#include <tern/broker/config_registry.hpp>
#include <tern/store/rocksdb_store.hpp>

#include <string>
#include <vector>

namespace tern::store {

struct persistence_config {
    bool enabled = false;
    std::string location; ///< empty: the working directory
    std::string file = "mosquitto.db";
    sync_policy sync = sync_policy::every_batch;
    std::chrono::milliseconds sync_interval{100};
    /// Lines that were accepted with a different meaning, for the start-up log.
    std::vector<std::string> notes;

    /// The store's directory: location/tern.db.
    std::string store_path() const;
    /// The Mosquitto database that may be imported: location/file.
    std::string mosquitto_db_path() const;
};

/// Registers the persistence directives; each fills `config`. Bad values throw
/// broker::directive_error (reported as FILE:LINE by the parser).
void register_directives(broker::config_registry& registry, persistence_config& config);

} // namespace tern::store
