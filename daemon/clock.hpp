#pragma once
// Wall-clock time in microseconds since the epoch. An interface so that the
// rules that depend on time (expiry, rate limits) can be tested without
// sleeping.

#include <cstdint>

namespace apikeyd {

class Clock {
  public:
    virtual ~Clock() = default;
    virtual uint64_t now_usec() const = 0;
};

class SystemClock final : public Clock {
  public:
    uint64_t now_usec() const override;
};

inline constexpr uint64_t kUsecPerSec = 1'000'000;

}  // namespace apikeyd
