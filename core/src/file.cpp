#include <tern/core/file.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

namespace tern::core {

std::string file_read_result::describe_failure(const std::string& what) const {
    return fmt::format("cannot {} {}: {}", opened ? "read" : "open", what,
                       std::generic_category().message(error));
}

file_read_result read_whole_file(const std::string& path) {
    file_read_result r;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r.error = errno;
        return r;
    }
    // open(2) on a directory succeeds and read(2) then fails with EISDIR: the reason to show.
    r.opened = true;
    std::string content;
    std::array<char, 16384> buffer{};
    for (;;) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            r.error = errno;
            ::close(fd);
            return r;
        }
        if (n == 0) {
            break;
        }
        content.append(buffer.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    r.content = std::move(content);
    return r;
}

} // namespace tern::core
