#pragma once
// Budgets per caller UID (token buckets): `burst` at once, refilled at
// `refill_per_minute`. One caller spending its budget leaves every other
// caller's untouched. KeyService keeps two: failed verifications (the
// brute-force guard: a spent budget answers "rate_limited") and stored
// usage events (a spent budget still counts uses, without storing each).

#include <cstdint>
#include <string>
#include <unordered_map>

#include "daemon/clock.hpp"

namespace apikeyd {

class UidBudget {
  public:
    UidBudget(const Clock& clock, double burst, double refill_per_minute);

    // True while `uid` has nothing left to spend.
    bool spent(uint32_t uid);
    void spend(uint32_t uid);
    // Spends one if there is one to spend.
    bool try_spend(uint32_t uid);

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
