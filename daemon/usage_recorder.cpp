#include "daemon/usage_recorder.hpp"

#include <algorithm>

namespace apikeyd {

void UsageRecorder::count_use(const std::string& key_id, uint64_t now_usec) {
    auto& pending = uses_[key_id];
    pending.uses += 1;
    pending.last_used_usec = std::max(pending.last_used_usec, now_usec);
}

uint64_t UsageRecorder::pending_uses(const std::string& key_id) const {
    const auto it = uses_.find(key_id);
    return it == uses_.end() ? 0 : it->second.uses;
}

uint64_t UsageRecorder::pending_last_used(const std::string& key_id) const {
    const auto it = uses_.find(key_id);
    return it == uses_.end() ? 0 : it->second.last_used_usec;
}

void UsageRecorder::record(const Caller& caller, std::string_view key_id, std::string_view action,
                           std::string_view result, uint64_t now_usec) {
    auto& tally = days_[{std::string(key_id), now_usec / kUsecPerDay}];
    (result == "ok" ? tally.ok : tally.refused) += 1;
    if (!event_budget_.try_spend(caller.uid)) {
        ++tally.unrecorded;
        return;
    }
    if (events_.size() >= kMaxPendingEvents) {
        ++tally.unrecorded;
        ++dropped_events_;
        return;
    }
    events_.push_back(Store::NewEvent{std::string(key_id), now_usec, std::string(action),
                                      std::string(result), caller.uid, caller.pid, caller.exe,
                                      caller.unit});
}

Result<void> UsageRecorder::flush(uint64_t now_usec) {
    if (!has_pending()) {
        return {};
    }
    std::vector<Store::UsageDelta> uses;
    uses.reserve(uses_.size());
    for (const auto& [id, pending] : uses_) {
        uses.push_back({id, pending.uses, pending.last_used_usec});
    }
    std::vector<Store::DayCount> days;
    days.reserve(days_.size());
    for (const auto& [key, tally] : days_) {
        days.push_back({key.first, key.second, tally.ok, tally.refused, tally.unrecorded});
    }
    const uint64_t today = now_usec / kUsecPerDay;
    Store::UsageBatch batch{uses,
                            events_,
                            days,
                            kEventsKeptPerKey,
                            kEventsKeptPerCaller,
                            today > kDaysKept ? today - kDaysKept : 0};
    if (auto ok = store_.apply_usage(batch); !ok) {
        return ok;
    }
    uses_.clear();
    events_.clear();
    days_.clear();
    return {};
}

}  // namespace apikeyd
