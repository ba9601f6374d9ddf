#include "daemon/rate_limiter.hpp"

#include <algorithm>

namespace apikeyd {
namespace {
// Buckets of callers that have fully refilled carry no information; past this
// many tracked callers they are dropped so the map cannot grow without bound.
constexpr size_t kMaxTrackedCallers = 4096;
}  // namespace

UidBudget::UidBudget(const Clock& clock, double burst, double refill_per_minute)
    : clock_(clock), burst_(burst), refill_per_usec_(refill_per_minute / (60.0 * kUsecPerSec)) {}

UidBudget::Bucket& UidBudget::refreshed(uint32_t uid) {
    const uint64_t now = clock_.now_usec();
    auto [it, inserted] = buckets_.try_emplace(uid, Bucket{burst_, now});
    Bucket& bucket = it->second;
    if (!inserted && now > bucket.updated_usec) {
        bucket.tokens =
            std::min(burst_, bucket.tokens +
                                 static_cast<double>(now - bucket.updated_usec) * refill_per_usec_);
    }
    bucket.updated_usec = now;
    return bucket;
}

bool UidBudget::spent(uint32_t uid) {
    const auto it = buckets_.find(uid);
    return it != buckets_.end() && refreshed(uid).tokens < 1.0;
}

bool UidBudget::try_spend(uint32_t uid) {
    if (buckets_.size() >= kMaxTrackedCallers) {
        forget_idle_callers();
    }
    Bucket& bucket = refreshed(uid);
    if (bucket.tokens < 1.0) {
        return false;
    }
    bucket.tokens -= 1.0;
    return true;
}

void UidBudget::spend(uint32_t uid) {
    if (buckets_.size() >= kMaxTrackedCallers) {
        forget_idle_callers();
    }
    Bucket& bucket = refreshed(uid);
    bucket.tokens = std::max(0.0, bucket.tokens - 1.0);
}

void UidBudget::forget_idle_callers() {
    const uint64_t now = clock_.now_usec();
    std::erase_if(buckets_, [&](const auto& entry) {
        const Bucket& b = entry.second;
        const double refilled =
            b.tokens + static_cast<double>(now - std::min(now, b.updated_usec)) * refill_per_usec_;
        return refilled >= burst_;
    });
}

bool KeyRateLimiter::take(const std::string& key_id, uint64_t limit) {
    const uint64_t minute = clock_.now_usec() / (60 * kUsecPerSec);
    // Windows of past minutes say nothing any more; dropping them all at
    // once keeps the map as small as the keys used this minute.
    if (windows_.size() > 10'000) {
        std::erase_if(windows_, [&](const auto& entry) { return entry.second.minute != minute; });
    }
    auto [it, inserted] = windows_.try_emplace(key_id, Window{minute, 0});
    if (it->second.minute != minute) {
        it->second = Window{minute, 0};
    }
    if (it->second.used >= limit) {
        return false;
    }
    ++it->second.used;
    return true;
}

}  // namespace apikeyd
