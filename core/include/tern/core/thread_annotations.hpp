#pragma once
/// Clang thread-safety annotations (STYLE.md §4: "guarded fields carry Clang thread-safety
/// annotations") and a mutex type that carries them. With clang, `-Wthread-safety` is on for
/// every target linking tern::warnings, so reading a TERN_GUARDED_BY field without holding its
/// mutex fails to compile in the fuzz and clang builds; with g++ the macros expand to nothing.
///
/// Thread contract: `core::mutex` and `core::lock` are as thread-safe as std::mutex.

#include <mutex>

#if defined(__clang__)
#define TERN_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define TERN_THREAD_ANNOTATION(x)
#endif

#define TERN_CAPABILITY(x) TERN_THREAD_ANNOTATION(capability(x))
#define TERN_SCOPED_CAPABILITY TERN_THREAD_ANNOTATION(scoped_lockable)
#define TERN_GUARDED_BY(x) TERN_THREAD_ANNOTATION(guarded_by(x))
#define TERN_PT_GUARDED_BY(x) TERN_THREAD_ANNOTATION(pt_guarded_by(x))
#define TERN_REQUIRES(...) TERN_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define TERN_ACQUIRE(...) TERN_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define TERN_RELEASE(...) TERN_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TERN_EXCLUDES(...) TERN_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define TERN_NO_THREAD_SAFETY_ANALYSIS TERN_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace tern::core {

/// std::mutex that clang's analysis understands.
class TERN_CAPABILITY("mutex") mutex {
public:
    void lock() TERN_ACQUIRE() { m_.lock(); }
    void unlock() TERN_RELEASE() { m_.unlock(); }

private:
    std::mutex m_;
};

/// The lock handle: holding one is the only way to reach TERN_GUARDED_BY(m) data of `m`.
class TERN_SCOPED_CAPABILITY lock {
public:
    explicit lock(mutex& m) TERN_ACQUIRE(m) : m_(m) { m_.lock(); }
    ~lock() TERN_RELEASE() { m_.unlock(); }
    lock(const lock&) = delete;
    lock& operator=(const lock&) = delete;

private:
    mutex& m_;
};

} // namespace tern::core
