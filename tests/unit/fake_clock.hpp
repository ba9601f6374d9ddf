#pragma once
// A clock the test moves by hand, so expiry and rate limits are tested
// without sleeping.

#include "daemon/clock.hpp"

namespace apikeyd::test {

class FakeClock final : public Clock {
  public:
    uint64_t now_usec() const override { return now_; }
    void advance_sec(uint64_t seconds) { now_ += seconds * kUsecPerSec; }

  private:
    uint64_t now_ = 1'800'000'000ULL * kUsecPerSec;
};

}  // namespace apikeyd::test
