#include "daemon/commit_scheduler.hpp"

#include <gtest/gtest.h>
#include <systemd/sd-event.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/c_handle.hpp"
#include "daemon/store.hpp"
#include "tests/support/temp_dir.hpp"

namespace apikeyd {
namespace {

// A change the store keeps in the open batch, as KeyService makes one.
KeyRecord key_numbered(size_t n) {
    KeyRecord r;
    r.id = "k_" + std::string(12 - std::to_string(n).size(), 'a') + std::to_string(n);
    r.name = "key " + std::to_string(n);
    r.lookup = std::vector<uint8_t>(32, static_cast<uint8_t>(n));
    r.lookup[0] = static_cast<uint8_t>(n >> 8);
    r.mac = std::vector<uint8_t>(32, 0xAB);
    return r;
}

class CommitSchedulerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto opened = Store::open(dir / "apikeyd.db");
        ASSERT_TRUE(opened) << opened.error().message;
        store = std::move(*opened);
        commits = std::make_unique<CommitScheduler>(*store);
        sd_event* raw = nullptr;
        ASSERT_GE(sd_event_new(&raw), 0);
        event.reset(raw);
    }

    // One change as the core makes it: join (or open) the batch, write.
    void change(size_t n) {
        ASSERT_TRUE(commits->begin_change());
        ASSERT_TRUE(store->insert_key(key_numbered(n)));
    }

    // Runs the loop until nothing is left to do at once.
    void run_loop() {
        while (sd_event_run(event.get(), 0) > 0) {
        }
    }

    test::TempDir dir{"apikeyd-commits"};
    std::unique_ptr<Store> store;
    std::unique_ptr<CommitScheduler> commits;
    CHandle<sd_event, sd_event_unref> event;
};

TEST_F(CommitSchedulerTest, WithoutALoopEveryChangeIsDurableAtOnce) {
    change(1);
    EXPECT_FALSE(commits->in_batch()) << "nothing would ever commit a batch";
    bool durable = false;
    commits->after_durable([&](const Result<void>& outcome) { durable = outcome.ok(); });
    EXPECT_TRUE(durable);
}

TEST_F(CommitSchedulerTest, ChangesWaitForTheCommitTheLoopMakesWhenIdle) {
    ASSERT_TRUE(commits->attach(event.get()));
    std::vector<bool> outcomes;
    for (size_t n = 1; n <= 3; ++n) {
        change(n);
        commits->after_durable(
            [&](const Result<void>& outcome) { outcomes.push_back(outcome.ok()); });
    }
    EXPECT_TRUE(commits->in_batch());
    EXPECT_TRUE(outcomes.empty()) << "nothing is answered before the COMMIT";
    run_loop();
    EXPECT_FALSE(commits->in_batch());
    EXPECT_EQ(outcomes, (std::vector<bool>{true, true, true}));
    EXPECT_EQ(*store->count_keys(std::nullopt), 3u);
}

TEST_F(CommitSchedulerTest, AFullBatchIsCommittedBeforeTheNextChangeJoinsIt) {
    ASSERT_TRUE(commits->attach(event.get()));
    size_t answered = 0;
    for (size_t n = 0; n < CommitScheduler::kMaxBatch; ++n) {
        change(n);
        commits->after_durable([&](const Result<void>&) { ++answered; });
    }
    EXPECT_EQ(answered, 0u);
    change(CommitScheduler::kMaxBatch);
    EXPECT_EQ(answered, CommitScheduler::kMaxBatch) << "the first 64 were committed together";
    EXPECT_TRUE(commits->in_batch()) << "the 65th opened the next batch";
}

TEST_F(CommitSchedulerTest, TheDeadlineCommitsABatchTheLoopNeverGetsIdleFor) {
    ASSERT_TRUE(commits->attach(event.get()));
    // The last batch had two changes, so one alone waits for its partner...
    change(1);
    change(2);
    run_loop();
    bool durable = false;
    const auto start = std::chrono::steady_clock::now();
    change(3);
    commits->after_durable([&](const Result<void>& outcome) { durable = outcome.ok(); });
    run_loop();
    // Only meaningful while the deadline has not passed (a slow machine).
    if (std::chrono::steady_clock::now() - start <
        std::chrono::microseconds(CommitScheduler::kMaxWaitUsec)) {
        EXPECT_FALSE(durable) << "the idle commit waits for as many changes as last time";
    }
    // ...until the deadline.
    ASSERT_GE(sd_event_run(event.get(), 10 * CommitScheduler::kMaxWaitUsec), 0);
    run_loop();
    EXPECT_TRUE(durable);
}

TEST_F(CommitSchedulerTest, AWaiterThatThrowsLeavesNoOtherUnanswered) {
    ASSERT_TRUE(commits->attach(event.get()));
    change(1);
    commits->after_durable([](const Result<void>&) { throw std::runtime_error("boom"); });
    bool second = false;
    commits->after_durable([&](const Result<void>&) { second = true; });
    EXPECT_NO_THROW(run_loop()) << "nothing unwinds into sd-event";
    EXPECT_TRUE(second);
}

}  // namespace
}  // namespace apikeyd
