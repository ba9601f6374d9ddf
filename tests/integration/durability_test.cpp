// What the daemon acknowledged is on disk: creates, imports and revokes
// survive kill -9; usage counters survive a clean restart and reach the disk
// within about a second. Later starts need no keyslot flag and unlock the
// same master key.

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/support/fixture.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using namespace std::chrono_literals;

using Durability = DaemonTest;

TEST_F(Durability, AcknowledgedChangesSurviveKill9) {
    const auto active = root().create_key("active", "stays", {"read"}, {});
    const auto revoked = root().create_key("revoked", "goes", {"read"}, {});
    const std::vector<uint8_t> secret = {'k', 0x00, 0xff, 'y'};
    const auto imported = root().import_secret("imported", "", secret, {});
    root().revoke_key(revoked.id, "compromised");

    daemon().kill9();
    daemon().start();  // without --insecure-software-keyslot: the state has its keyslot

    EXPECT_EQ(root().list_keys(state_filter("all")).size(), 3u);
    const auto v = root().verify_key(active.key, "read");
    EXPECT_TRUE(v.valid) << "the master key changed or the key was lost: "
                         << to_json(v.info).dump();
    EXPECT_EQ(field<std::string>(root().get_key(active.id), "description"), "stays");

    const auto gone = root().verify_key(revoked.key, "read");
    EXPECT_FALSE(gone.valid);
    EXPECT_EQ(field<std::string>(gone.info, "reason"), "revoked");
    const auto info = root().get_key(revoked.id);
    EXPECT_EQ(field<std::string>(info, "state"), "revoked");
    EXPECT_EQ(field<std::string>(info, "revoke_reason"), "compromised");

    EXPECT_EQ(root().get_secret(imported), secret);
    EXPECT_FALSE(field<bool>(root().get_status(), "locked"));
}

TEST_F(Durability, UsageCountersSurviveACleanRestart) {
    const auto key = root().create_key("counted", "", {}, {});
    const auto secret = root().import_secret("read", "", bytes_of("x"), {});
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(root().verify_key(key.key, "").valid);
    }
    root().get_secret(secret);
    const auto key_before = root().get_key(key.id);
    const auto secret_before = root().get_key(secret);
    ASSERT_EQ(field<uint64_t>(key_before, "use_count"), 3u);

    // At once: SIGTERM must write what the flush timer has not yet written.
    EXPECT_EQ(daemon().stop(), 0) << daemon().log();
    daemon().start();

    const auto key_after = root().get_key(key.id);
    EXPECT_EQ(field<uint64_t>(key_after, "use_count"), 3u);
    EXPECT_EQ(field<uint64_t>(key_after, "last_used_usec"),
              field<uint64_t>(key_before, "last_used_usec"));
    const auto secret_after = root().get_key(secret);
    EXPECT_EQ(field<uint64_t>(secret_after, "use_count"), 1u);
    EXPECT_EQ(field<uint64_t>(secret_after, "last_used_usec"),
              field<uint64_t>(secret_before, "last_used_usec"));
}

TEST_F(Durability, UsageCountersReachTheDiskWithinAboutASecond) {
    const auto key = root().create_key("counted", "", {}, {});
    ASSERT_TRUE(root().verify_key(key.key, "").valid);
    ASSERT_TRUE(root().verify_key(key.key, "").valid);
    // The documented bound is "at least every second"; this waits for it
    // (nothing observable from outside tells when the flush happened).
    std::this_thread::sleep_for(2500ms);
    daemon().kill9();
    daemon().start();
    const auto info = root().get_key(key.id);
    EXPECT_EQ(field<uint64_t>(info, "use_count"), 2u);
    EXPECT_GT(field<uint64_t>(info, "last_used_usec"), 0u);
}

TEST_F(Durability, MaxUsesStillHoldsAfterARestart) {
    const auto key = root().create_key("once", "", {}, {{"max_uses", Value{uint64_t{1}}}});
    ASSERT_TRUE(root().verify_key(key.key, "").valid);
    EXPECT_EQ(daemon().stop(), 0) << daemon().log();
    daemon().start();
    const auto v = root().verify_key(key.key, "");
    EXPECT_FALSE(v.valid);
    EXPECT_EQ(field<std::string>(v.info, "reason"), "exhausted");
}

// Creates that arrive together share one COMMIT (group commit); each reply
// must still mean that its key is on disk.
TEST_F(Durability, ConcurrentCreatesFromManyConnectionsAllSurviveKill9) {
    constexpr size_t kClients = 6;
    constexpr size_t kCreatesEach = 30;
    std::vector<std::vector<client::CreatedKey>> made(kClients);
    std::vector<std::string> failures(kClients);
    std::vector<std::thread> clients;
    for (size_t c = 0; c < kClients; ++c) {
        clients.emplace_back([&, c] {
            try {
                auto connection = client::Client::connect_address(bus().address());
                for (size_t i = 0; i < kCreatesEach; ++i) {
                    made[c].push_back(connection.create_key(
                        "client " + std::to_string(c) + " key " + std::to_string(i), "", {"read"},
                        {}));
                }
            } catch (const std::exception& e) {
                failures[c] = e.what();
            }
        });
    }
    for (auto& t : clients) {
        t.join();
    }
    daemon().kill9();
    for (const auto& failure : failures) {
        ASSERT_EQ(failure, "");
    }
    daemon().start();

    EXPECT_EQ(root().list_keys(state_filter("all")).size(), kClients * kCreatesEach);
    for (const auto& keys : made) {
        ASSERT_EQ(keys.size(), kCreatesEach);
        for (const auto& key : keys) {
            EXPECT_TRUE(root().verify_key(key.key, "read").valid) << key.id << " was lost";
        }
    }
}

}  // namespace
}  // namespace apikeyd::test
