#include "daemon/log_throttle.hpp"

#include "daemon/log.hpp"

namespace apikeyd {

std::string LogThrottle::summary(const std::string& who, uint64_t suppressed) const {
    return std::to_string(suppressed) + " more " + what_ + " of " + who +
           " in the last window of " + std::to_string(kWindowUsec / kUsecPerSec) +
           " s were not logged";
}

LogThrottle::Verdict LogThrottle::allow(uint32_t uid) {
    const uint64_t now = clock_.now_usec();
    Verdict verdict;
    auto it = windows_.find(uid);
    if (it == windows_.end()) {
        if (windows_.size() >= kMaxUids) {
            ++untracked_suppressed_;
            return verdict;
        }
        it = windows_.emplace(uid, Window{now}).first;
    }
    Window& window = it->second;
    if (now - window.start_usec >= kWindowUsec) {
        if (window.suppressed != 0) {
            verdict.summary = summary("uid " + std::to_string(uid), window.suppressed);
        }
        window = Window{now};
    }
    if (window.lines < kLinesPerWindow) {
        ++window.lines;
        verdict.log = true;
    } else {
        ++window.suppressed;
    }
    return verdict;
}

void LogThrottle::write(uint32_t uid, std::string_view line) {
    const auto verdict = allow(uid);
    if (verdict.summary) {
        log::write(priority_, *verdict.summary);
    }
    if (verdict.log) {
        log::write(priority_, line);
    }
}

void LogThrottle::write_summaries() {
    for (const auto& summary : take_summaries()) {
        log::write(priority_, summary);
    }
}

std::vector<std::string> LogThrottle::take_summaries() {
    const uint64_t now = clock_.now_usec();
    std::vector<std::string> out;
    for (auto it = windows_.begin(); it != windows_.end();) {
        if (now - it->second.start_usec < kWindowUsec) {
            ++it;
            continue;
        }
        if (it->second.suppressed != 0) {
            out.push_back(summary("uid " + std::to_string(it->first), it->second.suppressed));
        }
        it = windows_.erase(it);
    }
    if (untracked_suppressed_ != 0) {
        out.push_back(summary("other users", untracked_suppressed_));
        untracked_suppressed_ = 0;
    }
    return out;
}

}  // namespace apikeyd
