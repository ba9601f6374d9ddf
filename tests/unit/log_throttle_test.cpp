#include "daemon/log_throttle.hpp"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/fake_clock.hpp"

namespace apikeyd {
namespace {

// How many of `count` refusals of `uid` may be logged now.
uint32_t logged_of(LogThrottle& throttle, uint32_t uid, uint32_t count) {
    uint32_t logged = 0;
    for (uint32_t i = 0; i < count; ++i) {
        logged += throttle.allow(uid).log ? 1 : 0;
    }
    return logged;
}

TEST(LogThrottle, LetsAUserWriteItsShareThenCountsAndSummarises) {
    test::FakeClock clock;
    LogThrottle throttle(clock, "refusals", log::Priority::Warning);
    EXPECT_EQ(logged_of(throttle, 1000, 1000), LogThrottle::kLinesPerWindow);
    EXPECT_TRUE(throttle.take_summaries().empty()) << "the window has not ended";

    clock.advance_sec(LogThrottle::kWindowUsec / kUsecPerSec);
    const auto summaries = throttle.take_summaries();
    ASSERT_EQ(summaries.size(), 1u);
    EXPECT_NE(summaries[0].find("980 more refusals of uid 1000"), std::string::npos)
        << summaries[0];
    EXPECT_EQ(logged_of(throttle, 1000, 5), 5u) << "a new window, a new share";
}

TEST(LogThrottle, OneUsersFloodLeavesOthersTheirShare) {
    test::FakeClock clock;
    LogThrottle throttle(clock, "refusals", log::Priority::Warning);
    EXPECT_EQ(logged_of(throttle, 1000, 500), LogThrottle::kLinesPerWindow);
    EXPECT_EQ(logged_of(throttle, 1001, 3), 3u);
}

TEST(LogThrottle, ANewWindowOpensWithLastWindowsSummary) {
    test::FakeClock clock;
    LogThrottle throttle(clock, "refusals", log::Priority::Warning);
    logged_of(throttle, 7, LogThrottle::kLinesPerWindow + 2);
    clock.advance_sec(LogThrottle::kWindowUsec / kUsecPerSec + 1);
    const auto verdict = throttle.allow(7);
    EXPECT_TRUE(verdict.log);
    ASSERT_TRUE(verdict.summary);
    EXPECT_NE(verdict.summary->find("2 more refusals of uid 7"), std::string::npos);
}

TEST(LogThrottle, FollowsABoundedNumberOfUsers) {
    test::FakeClock clock;
    LogThrottle throttle(clock, "refusals", log::Priority::Warning);
    for (uint32_t uid = 0; uid < LogThrottle::kMaxUids; ++uid) {
        ASSERT_TRUE(throttle.allow(uid).log);
    }
    EXPECT_FALSE(throttle.allow(LogThrottle::kMaxUids).log) << "past the bound: counted only";
    const auto summaries = throttle.take_summaries();
    ASSERT_EQ(summaries.size(), 1u);
    EXPECT_NE(summaries[0].find("1 more refusals of other users"), std::string::npos);
}

}  // namespace
}  // namespace apikeyd
