#include "daemon/rate_limiter.hpp"

#include <gtest/gtest.h>

#include "tests/unit/fake_clock.hpp"

namespace apikeyd {
namespace {

TEST(FailureRateLimiter, BlocksACallerAfterItsBurstOfFailures) {
    test::FakeClock clock;
    FailureRateLimiter limiter(clock, 100, 100);
    for (int i = 0; i < 100; ++i) {
        ASSERT_FALSE(limiter.blocked(1000)) << "blocked after " << i << " failures";
        limiter.record_failure(1000);
    }
    EXPECT_TRUE(limiter.blocked(1000));
}

TEST(FailureRateLimiter, OtherCallersAreUnaffected) {
    test::FakeClock clock;
    FailureRateLimiter limiter(clock, 10, 10);
    for (int i = 0; i < 10; ++i) {
        limiter.record_failure(1000);
    }
    EXPECT_TRUE(limiter.blocked(1000));
    EXPECT_FALSE(limiter.blocked(1001));
    EXPECT_FALSE(limiter.blocked(0));
}

TEST(FailureRateLimiter, CoolsDownAtTheRefillRate) {
    test::FakeClock clock;
    FailureRateLimiter limiter(clock, 60, 60);  // one failure back per second
    for (int i = 0; i < 60; ++i) {
        limiter.record_failure(7);
    }
    EXPECT_TRUE(limiter.blocked(7));
    clock.advance_sec(1);
    EXPECT_FALSE(limiter.blocked(7));
    limiter.record_failure(7);
    EXPECT_TRUE(limiter.blocked(7));
    clock.advance_sec(60);
    for (int i = 0; i < 60; ++i) {
        ASSERT_FALSE(limiter.blocked(7));
        limiter.record_failure(7);
    }
    EXPECT_TRUE(limiter.blocked(7));
}

}  // namespace
}  // namespace apikeyd
