#pragma once
// Batches what every use of a key leaves behind: the use counter, an audit
// event, and the per-day counter, and writes them in one transaction at
// least every second (KeyService::flush_usage, from a timer) and at
// shutdown. Keeps what one caller can make it store bounded: each caller
// UID has a budget of kEventsStoredPerMinute events; beyond it an event
// still counts in its day's ok/refused and `unrecorded`, but is not stored
// one by one. The newest kEventsKeptPerKey events per key, the newest
// kEventsKeptPerCaller per caller UID and kDaysKept days of counters
// survive each flush.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "daemon/caller.hpp"
#include "daemon/clock.hpp"
#include "daemon/rate_limiter.hpp"
#include "daemon/result.hpp"
#include "daemon/store.hpp"

namespace apikeyd {

class UsageRecorder {
  public:
    static constexpr size_t kEventsKeptPerKey = 1000;
    static constexpr size_t kEventsKeptPerCaller = 10'000;
    // At once, and refilled per minute.
    static constexpr double kEventsStoredPerMinute = 600;
    static constexpr uint64_t kDaysKept = 400;
    // Beyond this many unflushed events (a flood within one second, or a
    // store that keeps failing) further events are dropped; counters are
    // still counted. Bounds the daemon's memory.
    static constexpr size_t kMaxPendingEvents = 100'000;
    static constexpr uint64_t kUsecPerDay = 86'400ULL * 1'000'000;

    UsageRecorder(Store& store, const Clock& clock)
        : store_(store), event_budget_(clock, kEventsStoredPerMinute, kEventsStoredPerMinute) {}

    // A successful use (verify, get, sign): the key's use_count and last_used.
    void count_use(const std::string& key_id, uint64_t now_usec);
    // Uses counted but not yet on disk, and the latest of their times.
    uint64_t pending_uses(const std::string& key_id) const;
    uint64_t pending_last_used(const std::string& key_id) const;

    // An event of a key: `result` "ok" or why not. Stored one by one while
    // the caller's event budget lasts.
    void record(const Caller& caller, std::string_view key_id, std::string_view action,
                std::string_view result, uint64_t now_usec);

    // Writes everything pending; on failure it stays pending for the next try.
    Result<void> flush(uint64_t now_usec);
    bool has_pending() const { return !uses_.empty() || !events_.empty() || !days_.empty(); }
    size_t dropped_events() const { return dropped_events_; }

  private:
    struct PendingUse {
        uint64_t uses = 0;
        uint64_t last_used_usec = 0;
    };
    struct DayTally {
        uint64_t ok = 0;
        uint64_t refused = 0;
        uint64_t unrecorded = 0;
    };

    Store& store_;
    UidBudget event_budget_;
    std::unordered_map<std::string, PendingUse> uses_;
    std::vector<Store::NewEvent> events_;
    std::map<std::pair<std::string, uint64_t>, DayTally> days_;
    size_t dropped_events_ = 0;
};

}  // namespace apikeyd
