#pragma once
// Brute-force guard for VerifyKey: a token bucket of failed verifications per
// caller UID. A caller that fails more than about `burst` times in a minute
// is answered "rate_limited" until its bucket refills; other callers (and the
// keys' owners) have buckets of their own and are unaffected.

#include <cstdint>
#include <unordered_map>

#include "daemon/clock.hpp"

namespace apikeyd {

class FailureRateLimiter {
  public:
    explicit FailureRateLimiter(const Clock& clock, double burst = 100.0,
                                double refill_per_minute = 100.0);

    // True while `uid` has no failures left to spend.
    bool blocked(uint32_t uid);
    void record_failure(uint32_t uid);

  private:
    struct Bucket {
        double tokens;
        uint64_t updated_usec;
    };
    Bucket& refreshed(uint32_t uid);
    void forget_idle_callers();

    const Clock& clock_;
    double burst_;
    double refill_per_usec_;
    std::unordered_map<uint32_t, Bucket> buckets_;
};

}  // namespace apikeyd
