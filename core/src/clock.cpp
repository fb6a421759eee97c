#include <tern/core/clock.hpp>

namespace tern::core {

const clock& default_clock() noexcept {
    static const auto* instance = new steady_clock;
    return *instance;
}

} // namespace tern::core
