#include <tern/store/store_config.hpp>

#include <fmt/format.h>

#include <charconv>
#include <filesystem>

namespace tern::store {

namespace {

bool parse_bool(const broker::config_line& l) {
    if (l.args.size() == 1 && (l.args[0] == "true" || l.args[0] == "false")) {
        return l.args[0] == "true";
    }
    throw broker::directive_error(fmt::format("{} expects true or false", l.name));
}

std::uint64_t parse_number(const broker::config_line& l, std::string_view text) {
    std::uint64_t v = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc{} || ptr != end) {
        throw broker::directive_error(fmt::format("{}: '{}' is not a number", l.name, text));
    }
    return v;
}

} // namespace

std::string persistence_config::store_path() const {
    return (std::filesystem::path(location.empty() ? "." : location) / "tern.db").string();
}

std::string persistence_config::mosquitto_db_path() const {
    return (std::filesystem::path(location.empty() ? "." : location) / file).string();
}

void register_directives(broker::config_registry& registry, persistence_config& config) {
    registry.add("persistence",
                 [&config](const broker::config_line& l) { config.enabled = parse_bool(l); });
    registry.add("persistence_location", [&config](const broker::config_line& l) {
        if (l.rest.empty()) {
            throw broker::directive_error("persistence_location expects a directory");
        }
        config.location = std::string(l.rest);
    });
    registry.add("persistence_file", [&config](const broker::config_line& l) {
        if (l.rest.empty() || l.rest.find('/') != std::string_view::npos) {
            throw broker::directive_error(
                "persistence_file expects a file name (the directory is persistence_location)");
        }
        config.file = std::string(l.rest);
    });
    registry.add("autosave_interval", [&config](const broker::config_line& l) {
        if (l.args.size() != 1) {
            throw broker::directive_error("autosave_interval expects a number of seconds");
        }
        (void)parse_number(l, l.args[0]);
        config.notes.push_back(fmt::format(
            "{}:{}: autosave_interval accepted: Tern writes every change to its store as it "
            "happens, so there is nothing to save periodically",
            l.file, l.number));
    });
    registry.add("autosave_on_changes", [&config](const broker::config_line& l) {
        (void)parse_bool(l);
        config.notes.push_back(
            fmt::format("{}:{}: autosave_on_changes accepted: Tern writes every change as it "
                        "happens",
                        l.file, l.number));
    });
    registry.add("persistence_sync", [&config](const broker::config_line& l) {
        if (l.args.size() == 1 && l.args[0] == "batch") {
            config.sync = sync_policy::every_batch;
        } else if (l.args.size() == 1 && l.args[0] == "never") {
            config.sync = sync_policy::never;
        } else if (l.args.size() == 2 && l.args[0] == "interval") {
            const auto ms = parse_number(l, l.args[1]);
            if (ms < 1 || ms > 60000) {
                throw broker::directive_error(
                    "persistence_sync interval expects 1 to 60000 milliseconds");
            }
            config.sync = sync_policy::interval;
            config.sync_interval = std::chrono::milliseconds(ms);
        } else {
            throw broker::directive_error(
                "persistence_sync expects batch, interval MILLISECONDS or never");
        }
    });
}

} // namespace tern::store
