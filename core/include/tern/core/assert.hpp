#pragma once
/// Assertions (STYLE.md §7). `TERN_ASSERT(cond)` checks an invariant in debug builds and costs
/// nothing in release builds; `TERN_RELEASE_ASSERT(cond, msg)` checks in every build and aborts
/// with the condition, `msg`, file and line when continuing would be unsafe (memory corruption,
/// a broken ownership invariant). Neither is ever used on peer input or on the environment: those
/// are errors, returned as values and logged.
///
/// Thread contract: thread-safe (the failure path writes one line to stderr and aborts).

namespace tern::core {

/// Writes "tern: assertion failed: COND (MSG) at FILE:LINE" to stderr, then aborts.
[[noreturn]] void assertion_failed(const char* condition, const char* message, const char* file,
                                   int line) noexcept;

} // namespace tern::core

#define TERN_RELEASE_ASSERT(cond, msg)                                                             \
    do {                                                                                           \
        if (!(cond)) [[unlikely]] {                                                                \
            ::tern::core::assertion_failed(#cond, msg, __FILE__, __LINE__);                        \
        }                                                                                          \
    } while (false)

#ifdef NDEBUG
#define TERN_ASSERT(cond)                                                                          \
    do {                                                                                           \
        (void)sizeof(cond);                                                                        \
    } while (false)
#else
#define TERN_ASSERT(cond) TERN_RELEASE_ASSERT(cond, "")
#endif
