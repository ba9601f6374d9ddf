#pragma once
// Caps the log lines one user's refusals can cause: a refused call is a
// line, and a local user can make thousands a second. Each UID gets
// kLinesPerWindow lines per window; what it causes beyond that is counted,
// and said in one summary line once the window has ended.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/clock.hpp"

namespace apikeyd {

class LogThrottle {
  public:
    static constexpr uint32_t kLinesPerWindow = 20;
    static constexpr uint64_t kWindowUsec = 60 * kUsecPerSec;
    // UIDs followed at once; past that, the lines of UIDs not followed are
    // suppressed and counted together.
    static constexpr size_t kMaxUids = 4096;

    struct Verdict {
        bool log = false;
        // The summary of this UID's last window, to write first.
        std::optional<std::string> summary;
    };

    explicit LogThrottle(const Clock& clock) : clock_(clock) {}

    // Whether a refusal line for `uid` may be written now.
    Verdict allow(uint32_t uid);
    // The summaries of windows that have ended, and forgets those UIDs.
    std::vector<std::string> take_summaries();

    // Writes `line` at warning priority if allow(uid) lets it, after the
    // summary of the UID's last window.
    void warning(uint32_t uid, std::string_view line);
    // Writes take_summaries() at warning priority.
    void write_summaries();

  private:
    struct Window {
        uint64_t start_usec = 0;
        uint32_t lines = 0;
        uint64_t suppressed = 0;
    };
    static std::string summary(const std::string& who, uint64_t suppressed);

    const Clock& clock_;
    std::unordered_map<uint32_t, Window> windows_;
    uint64_t untracked_suppressed_ = 0;
};

}  // namespace apikeyd
