#pragma once
// Brute-force guard for VerifyKey: a token bucket of failed verifications per
// caller UID. A caller that fails more than about `burst` times in a minute
// is answered "rate_limited" until its bucket refills; other callers (and the
// keys' owners) have buckets of their own and are unaffected.

#include <cstdint>
#include <string>
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

// A key's own limit, rate_limit_per_min: successful verifications per
// calendar minute (a fixed window, so a client can tell when it reopens).
// Only that key is refused; its callers are not penalised.
class KeyRateLimiter {
  public:
    explicit KeyRateLimiter(const Clock& clock) : clock_(clock) {}

    // Takes one use of `key_id` in the current minute; false when `limit`
    // are taken already.
    bool take(const std::string& key_id, uint64_t limit);

  private:
    struct Window {
        uint64_t minute;
        uint64_t used;
    };

    const Clock& clock_;
    std::unordered_map<std::string, Window> windows_;
};

}  // namespace apikeyd
