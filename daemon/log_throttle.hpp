#pragma once
// Caps the log lines one user can cause of one kind (refusals, changes):
// each is a line, and a local user can make thousands a second. Each UID
// gets kLinesPerWindow lines per window; what it causes beyond that is
// counted, and said in one summary line once the window has ended.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "daemon/clock.hpp"
#include "daemon/log.hpp"

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

    // `what` names the lines in summaries ("refusals"); they and the
    // summaries are written at `priority`.
    LogThrottle(const Clock& clock, std::string what, log::Priority priority)
        : clock_(clock), what_(std::move(what)), priority_(priority) {}

    // Whether a refusal line for `uid` may be written now.
    Verdict allow(uint32_t uid);
    // The summaries of windows that have ended, and forgets those UIDs.
    std::vector<std::string> take_summaries();

    // Writes `line` if allow(uid) lets it, after the summary of the UID's
    // last window.
    void write(uint32_t uid, std::string_view line);
    void write_summaries();

  private:
    struct Window {
        uint64_t start_usec = 0;
        uint32_t lines = 0;
        uint64_t suppressed = 0;
    };
    std::string summary(const std::string& who, uint64_t suppressed) const;

    const Clock& clock_;
    std::string what_;
    log::Priority priority_;
    std::unordered_map<uint32_t, Window> windows_;
    uint64_t untracked_suppressed_ = 0;
};

}  // namespace apikeyd
