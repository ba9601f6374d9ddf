#pragma once
// Bounded waiting for the integration tests. Tests poll for a condition
// instead of sleeping for a guessed time; every wait has an upper bound so a
// broken daemon fails a test instead of hanging the suite.

#include <chrono>
#include <thread>

namespace apikeyd::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// Sanitized builds start and run several times slower; the bounds grow with them.
inline std::chrono::milliseconds scaled(std::chrono::milliseconds bound) {
    return kSanitized ? bound * 4 : bound;
}

// Calls `pred` until it returns true or `timeout` has passed; returns the last answer.
template <class Pred>
bool eventually(Pred&& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) {
            return true;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(interval);
    }
}

}  // namespace apikeyd::test
