#pragma once
/// Configuration directives of the modules that plug into the broker (the bridge's
/// `connection` blocks, the admin listener, the durable store): each module registers its
/// directives here and keeps its own configuration, so the parser never lists them (STYLE.md
/// §1). The composition root builds one registry, hands it to load_config_file() /
/// parse_command_line(), and gives each module what it collected.
///
/// A directive the broker's own parser knows always wins; registering one of those names is a
/// programming error. A registered name is looked up before the "not supported by this
/// version" hints, so a module that lands replaces its hint.
///
/// Thread contract: fill and parse on one thread (start-up or reload); not thread-safe.

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tern::broker {

/// One configuration line as a module's handler sees it. Views are valid during the call.
struct config_line {
    std::string_view file;
    std::size_t number = 0; ///< 1-based line number in `file`
    std::string_view name;  ///< the directive
    std::string_view rest;  ///< everything after it, trimmed (paths may contain spaces)
    std::span<const std::string_view> args; ///< `rest` split on white space
};

/// Thrown by a handler for a bad line: the parser reports "FILE:LINE: message" and the
/// configuration is refused.
class directive_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A module's directive handler: applies `line` to the module's own configuration or throws
/// directive_error.
using directive_handler = std::function<void(const config_line& line)>;

/// Runs after every file has been read: cross-directive checks of one module. Returns an error
/// message with the file and line it is about (line 0 for the whole configuration), or nothing.
struct config_problem {
    std::string file;
    std::size_t line = 0;
    std::string message;
};
using config_finisher = std::function<std::optional<config_problem>()>;

class config_registry {
public:
    /// Registers `name` for `handler`. Throws std::logic_error when the name is taken (by the
    /// broker's parser or another module) or empty.
    void add(std::string name, directive_handler handler);
    /// Registers a check that runs once the whole configuration has been read.
    void on_finish(config_finisher finisher);

    /// The handler of `name`, or null. The pointer is valid until the next add().
    const directive_handler* find(std::string_view name) const;
    std::span<const config_finisher> finishers() const noexcept { return finishers_; }

private:
    std::map<std::string, directive_handler, std::less<>> handlers_;
    std::vector<config_finisher> finishers_;
};

/// Whether the broker's own parser handles `name` (a registry refuses such names).
bool is_core_directive(std::string_view name) noexcept;

} // namespace tern::broker
