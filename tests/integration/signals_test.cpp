// Who hears KeyCreated, KeyChanged and KeyRevoked: a connection that called
// Subscribe, for the keys of its own user, and root's for every key; nobody
// else, however its match rules read. Subscriptions end with the connection
// and are bounded per user. The second user is nobody, in a child process,
// on a private bus with the project's policy: the signals reaching nobody's
// connection at all shows the policy lets the daemon's unicast signals
// through to any user.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/bus_names.hpp"
#include "tests/support/as_nobody.hpp"
#include "tests/support/bus_connection.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/timing.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kLimitExceeded = "org.apikeyd1.Error.LimitExceeded";
constexpr const char* kNotSubscribed = "org.apikeyd1.Error.NotSubscribed";
// As dbus/subscribers.hpp: subscribed connections per UID.
constexpr int kMaxPerUid = 16;

// A connection with a match rule on the daemon's signals that called
// Subscribe.
BusConnection subscribed_listener(const std::string& address) {
    auto listener = BusConnection::connect(address);
    listener.watch_signals(bus_names::kBusName, bus_names::kInterface);
    const std::string error = listener.call_manager("Subscribe");
    if (!error.empty()) {
        throw std::runtime_error("Subscribe: " + error);
    }
    return listener;
}

using Signals = DaemonTest;

TEST_F(Signals, TheSubscribedOwnerHearsEachChangeOfItsKey) {
    const std::string address = bus().address();
    const auto outcome = run_as_nobody([&] {
        auto listener = subscribed_listener(address);
        auto client = client::Client::connect_address(address);
        const auto key = client.create_key("nobody's", "", {"read"}, {});
        client.update_key(key.id, {{"name", std::string("renamed")}});
        client.revoke_key(key.id, "");
        return json{{"created", listener.wait_for_signal("KeyCreated", key.id, scaled(5s))},
                    {"changed", listener.wait_for_signal("KeyChanged", key.id, scaled(5s))},
                    {"revoked", listener.wait_for_signal("KeyRevoked", key.id, scaled(5s))}};
    });
    ASSERT_TRUE(outcome.ok) << outcome.error;
    EXPECT_EQ(outcome.value, (json{{"created", true}, {"changed", true}, {"revoked", true}}));
}

TEST_F(Signals, AnotherUsersSubscriptionHearsNothingOfTheOwnersKeys) {
    const std::string address = bus().address();
    // Root changes its keys all the while nobody listens.
    std::atomic<bool> stop{false};
    std::vector<std::string> roots_keys;
    std::string traffic_error;
    std::thread traffic([&] {
        try {
            auto client = client::Client::connect_address(address);
            while (!stop) {
                const auto key = client.create_key("root's", "", {}, {});
                client.revoke_key(key.id, "");
                roots_keys.push_back(key.id);
                std::this_thread::sleep_for(20ms);
            }
        } catch (const std::exception& e) {
            traffic_error = e.what();
        }
    });
    const auto outcome = run_as_nobody([&] {
        auto listener = subscribed_listener(address);
        auto client = client::Client::connect_address(address);
        const auto own = client.create_key("nobody's", "", {}, {});
        // The control: this connection does receive the daemon's signals.
        const bool heard_own = listener.wait_for_signal("KeyCreated", own.id, scaled(5s));
        // Then listen on for a while for anything else.
        (void)listener.wait_for_signal("KeyCreated", "never an id", 1500ms);
        json heard = json::array();
        for (const auto& s : listener.signals()) {
            heard.push_back(s.first_arg);
        }
        return json{{"own", own.id}, {"heard_own", heard_own}, {"heard", heard}};
    });
    stop = true;
    traffic.join();

    ASSERT_TRUE(outcome.ok) << outcome.error;
    ASSERT_EQ(traffic_error, "");
    ASSERT_GE(roots_keys.size(), 20u) << "root changed too few keys meanwhile";
    EXPECT_TRUE(outcome.value["heard_own"].get<bool>()) << outcome.value.dump();
    EXPECT_EQ(outcome.value["heard"], json::array({outcome.value["own"]}))
        << "nobody heard of another user's keys: " << outcome.value.dump();
}

TEST_F(Signals, RootsSubscriptionHearsOfEveryUsersKeys) {
    auto listener = subscribed_listener(bus().address());
    const std::string address = bus().address();
    const auto outcome = run_as_nobody([&] {
        auto client = client::Client::connect_address(address);
        const auto key = client.create_key("nobody's", "", {}, {});
        client.revoke_key(key.id, "");
        return json{{"id", key.id}};
    });
    ASSERT_TRUE(outcome.ok) << outcome.error;
    const std::string id = outcome.value["id"];
    EXPECT_TRUE(listener.wait_for_signal("KeyCreated", id, scaled(5s)));
    EXPECT_TRUE(listener.wait_for_signal("KeyRevoked", id, scaled(5s)));
}

TEST_F(Signals, OnlySubscribedConnectionsHearAndEachHearsOnce) {
    auto never = BusConnection::connect(bus().address());
    never.watch_signals(bus_names::kBusName, bus_names::kInterface);
    auto twice = subscribed_listener(bus().address());
    ASSERT_EQ(twice.call_manager("Subscribe"), "") << "subscribing again is a no-op";
    auto left = subscribed_listener(bus().address());
    ASSERT_EQ(left.call_manager("Unsubscribe"), "");
    EXPECT_EQ(left.call_manager("Unsubscribe"), kNotSubscribed);
    EXPECT_EQ(never.call_manager("Unsubscribe"), kNotSubscribed);

    const auto key = root().create_key("announced", "", {}, {});
    root().revoke_key(key.id, "");
    // One sender's signals arrive in order: once KeyRevoked is in, every
    // KeyCreated sent before it is too.
    ASSERT_TRUE(twice.wait_for_signal("KeyRevoked", key.id, scaled(5s)));
    EXPECT_EQ(twice.signals().size(), 2u) << "one subscription, each signal once";
    EXPECT_FALSE(never.wait_for_signal("KeyCreated", key.id, 500ms));
    EXPECT_FALSE(left.wait_for_signal("KeyCreated", key.id, 500ms));
    EXPECT_TRUE(never.signals().empty());
    EXPECT_TRUE(left.signals().empty());
}

// Subscribe, retried while the daemon may not yet have seen closed
// connections leave: "" once it succeeds, else the last error.
std::string subscribe_within(BusConnection& connection, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string error;
    while ((error = connection.call_manager("Subscribe")) == kLimitExceeded &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    return error;
}

TEST_F(Signals, ASubscriptionEndsWithItsConnectionAndEachUserHasSixteen) {
    for (int i = 0; i < 100; ++i) {
        auto once = BusConnection::connect(bus().address());
        ASSERT_EQ(subscribe_within(once, scaled(5s)), "") << "round " << i;
    }
    std::vector<BusConnection> held;
    for (int i = 0; i < kMaxPerUid; ++i) {
        held.push_back(BusConnection::connect(bus().address()));
        ASSERT_EQ(subscribe_within(held.back(), scaled(5s)), "")
            << "subscription " << i + 1 << ": the closed connections still count";
    }
    auto extra = BusConnection::connect(bus().address());
    EXPECT_EQ(extra.call_manager("Subscribe"), kLimitExceeded);

    held.erase(held.begin());
    EXPECT_EQ(subscribe_within(extra, scaled(5s)), "") << "a closed connection frees its place";
    auto another = BusConnection::connect(bus().address());
    EXPECT_EQ(another.call_manager("Subscribe"), kLimitExceeded);
    EXPECT_TRUE(daemon().running());
}

}  // namespace
}  // namespace apikeyd::test
