#include <tern/core/assert.hpp>

#include <cstdio>
#include <cstdlib>

namespace tern::core {

void assertion_failed(const char* condition, const char* message, const char* file,
                      int line) noexcept {
    if (message != nullptr && message[0] != '\0') {
        std::fprintf(stderr, "tern: assertion failed: %s (%s) at %s:%d\n", condition, message, file,
                     line);
    } else {
        std::fprintf(stderr, "tern: assertion failed: %s at %s:%d\n", condition, file, line);
    }
    std::fflush(stderr);
    std::abort();
}

} // namespace tern::core
