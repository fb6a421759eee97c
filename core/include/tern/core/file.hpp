#pragma once
/// Reading a whole configuration-sized file (the broker's config, password and ACL files), with
/// the failure as a value that says whether the file could not be opened or not be read.
///
/// Thread contract: thread-safe (no shared state). Blocking I/O: start-up and reload only.

#include <optional>
#include <string>

namespace tern::core {

struct file_read_result {
    /// The bytes; nullopt on failure.
    std::optional<std::string> content;
    /// errno of the failing open(2) or read(2).
    int error = 0;
    /// True when open(2) succeeded (so read(2) failed: a directory gives EISDIR).
    bool opened = false;

    /// "cannot open WHAT: REASON" or "cannot read WHAT: REASON", e.g.
    /// "cannot open ACL file: No such file or directory".
    std::string describe_failure(const std::string& what) const;
};

/// Reads the file at `path` whole.
file_read_result read_whole_file(const std::string& path);

} // namespace tern::core
