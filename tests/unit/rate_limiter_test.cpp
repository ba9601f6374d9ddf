#include "daemon/rate_limiter.hpp"

#include <gtest/gtest.h>

#include "tests/unit/fake_clock.hpp"

namespace apikeyd {
namespace {

TEST(UidBudget, BlocksACallerAfterItsBurstOfFailures) {
    test::FakeClock clock;
    UidBudget limiter(clock, 100, 100);
    for (int i = 0; i < 100; ++i) {
        ASSERT_FALSE(limiter.spent(1000)) << "blocked after " << i << " failures";
        limiter.spend(1000);
    }
    EXPECT_TRUE(limiter.spent(1000));
}

TEST(UidBudget, OtherCallersAreUnaffected) {
    test::FakeClock clock;
    UidBudget limiter(clock, 10, 10);
    for (int i = 0; i < 10; ++i) {
        limiter.spend(1000);
    }
    EXPECT_TRUE(limiter.spent(1000));
    EXPECT_FALSE(limiter.spent(1001));
    EXPECT_FALSE(limiter.spent(0));
}

TEST(UidBudget, CoolsDownAtTheRefillRate) {
    test::FakeClock clock;
    UidBudget limiter(clock, 60, 60);  // one failure back per second
    for (int i = 0; i < 60; ++i) {
        limiter.spend(7);
    }
    EXPECT_TRUE(limiter.spent(7));
    clock.advance_sec(1);
    EXPECT_FALSE(limiter.spent(7));
    limiter.spend(7);
    EXPECT_TRUE(limiter.spent(7));
    clock.advance_sec(60);
    for (int i = 0; i < 60; ++i) {
        ASSERT_FALSE(limiter.spent(7));
        limiter.spend(7);
    }
    EXPECT_TRUE(limiter.spent(7));
}

TEST(UidBudget, TrySpendTakesOnlyWhatIsLeft) {
    test::FakeClock clock;
    UidBudget budget(clock, 3, 60);
    EXPECT_TRUE(budget.try_spend(5));
    EXPECT_TRUE(budget.try_spend(5));
    EXPECT_TRUE(budget.try_spend(5));
    EXPECT_FALSE(budget.try_spend(5));
    EXPECT_FALSE(budget.try_spend(5));
    clock.advance_sec(1);
    EXPECT_TRUE(budget.try_spend(5));
    EXPECT_FALSE(budget.try_spend(5));
}

}  // namespace
}  // namespace apikeyd
