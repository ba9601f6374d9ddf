// Managing and monitoring a key over D-Bus, on the real daemon: UpdateKey,
// RotateKey with a grace period, the KeyChanged signal, Sign, IdentifyKey,
// and GetUsage / GetUsageByDay with the caller the bus saw.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "common/bus_names.hpp"
#include "common/key_format.hpp"
#include "tests/support/bus_connection.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/timing.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kInvalidArgument = "org.apikeyd1.Error.InvalidArgument";
constexpr const char* kRevoked = "org.apikeyd1.Error.Revoked";

std::string reason_of(const client::Verification& v) {
    return v.info.contains("reason") ? field<std::string>(v.info, "reason") : "";
}

using Manage = DaemonTest;

TEST_F(Manage, UpdateAndRotateAnnounceKeyChanged) {
    auto watcher = BusConnection::connect(bus().address());
    watcher.watch_signals(bus_names::kBusName, bus_names::kInterface);
    ASSERT_EQ(watcher.call_manager("Subscribe"), "");
    const auto key = root().create_key("watched", "", {"read"}, {});
    root().update_key(key.id, {{"name", std::string("renamed")}});
    EXPECT_TRUE(watcher.wait_for_signal("KeyChanged", key.id, scaled(5000ms)));
    EXPECT_EQ(field<std::string>(root().get_key(key.id), "name"), "renamed");

    root().rotate_key(key.id, 0);
    const auto changed = [&] {
        size_t n = 0;
        for (const auto& s : watcher.signals()) {
            n += s.member == "KeyChanged" && s.first_arg == key.id;
        }
        return n;
    };
    // One sender's signals arrive in order: once KeyRevoked is in, the
    // rotation's KeyChanged is too.
    root().revoke_key(key.id, "");
    ASSERT_TRUE(watcher.wait_for_signal("KeyRevoked", key.id, scaled(5000ms)));
    EXPECT_EQ(changed(), 2u);
}

TEST_F(Manage, RotationGivesANewTextAndTheOldOneWorksDuringTheGrace) {
    const auto key = root().create_key("rotated", "", {}, {{"prefix", std::string("svc")}});
    const std::string fresh = root().rotate_key(key.id, 2);
    ASSERT_TRUE(key_format::parse(fresh));
    EXPECT_TRUE(fresh.starts_with("svc_"));
    EXPECT_NE(fresh, key.key);
    EXPECT_TRUE(root().verify_key(fresh, "").valid);
    EXPECT_TRUE(root().verify_key(key.key, "").valid);
    const auto info = root().get_key(key.id);
    EXPECT_GT(field<uint64_t>(info, "rotated_usec"), 0u);
    EXPECT_GT(field<uint64_t>(info, "grace_until_usec"), field<uint64_t>(info, "rotated_usec"));
    // After the grace the old text is "rotated", not "unknown".
    EXPECT_TRUE(eventually([&] { return reason_of(root().verify_key(key.key, "")) == "rotated"; },
                           scaled(10000ms)));
    EXPECT_TRUE(root().verify_key(fresh, "").valid);
    EXPECT_EQ(bus_error_name([&] { root().rotate_key(key.id, 91ULL * 24 * 3600); }),
              kInvalidArgument);
}

TEST_F(Manage, UpdateKeyNamesWhatItRefuses) {
    const auto key = root().create_key("strict", "", {}, {});
    const auto refusal = [&](const Dict& changes) {
        return catch_bus_error([&] { root().update_key(key.id, changes); });
    };
    auto unknown = refusal({{"expire_in_sec", uint64_t{60}}});
    EXPECT_EQ(unknown.name, kInvalidArgument);
    EXPECT_NE(unknown.message.find("'expire_in_sec'"), std::string::npos) << unknown.message;
    auto wrong_type = refusal({{"scopes", std::string("read")}});
    EXPECT_NE(wrong_type.message.find("type 'as'"), std::string::npos) << wrong_type.message;
    auto nothing = refusal({});
    EXPECT_NE(nothing.message.find("Nothing to change"), std::string::npos) << nothing.message;

    root().update_key(key.id, {{"scopes", std::vector<std::string>{"models:*"}},
                               {"max_uses", uint64_t{2}},
                               {"rate_limit_per_min", uint32_t{100}}});
    const auto info = root().get_key(key.id);
    EXPECT_EQ(field<std::vector<std::string>>(info, "scopes"),
              std::vector<std::string>{"models:*"});
    EXPECT_EQ(field<uint64_t>(info, "max_uses"), 2u);
    EXPECT_EQ(field<uint32_t>(info, "rate_limit_per_min"), 100u);
    EXPECT_TRUE(root().verify_key(key.key, "models:read").valid);
    root().revoke_key(key.id, "");
    EXPECT_EQ(refusal({{"name", std::string("late")}}).name, kRevoked);
}

TEST_F(Manage, SignGivesTheHmacOfTheImportedSecret) {
    const std::string secret = "whsec_0123456789";
    const auto id = root().import_secret("webhook", "", bytes_of(secret), {});
    const std::string body = "{\"action\":\"opened\"}";
    const auto mac = root().sign(id, "hmac-sha256", bytes_of(body));
    unsigned char expected[32];
    size_t size = 0;
    ASSERT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                        reinterpret_cast<const unsigned char*>(body.data()), body.size(), expected,
                        sizeof expected, &size),
              nullptr);
    EXPECT_EQ(mac, std::vector<uint8_t>(expected, expected + size));
    EXPECT_EQ(field<uint64_t>(root().get_key(id), "use_count"), 1u);
    EXPECT_EQ(bus_error_name([&] { root().sign(id, "sha1", {}); }), kInvalidArgument);
}

TEST_F(Manage, IdentifyKeyNamesTheKeyWithoutCountingAUse) {
    const auto key = root().create_key("leaked", "", {}, {});
    const auto found = root().identify_key(key.key);
    EXPECT_TRUE(found.known);
    EXPECT_EQ(found.id, key.id);
    EXPECT_EQ(field<std::string>(found.info, "state"), "active");
    EXPECT_EQ(field<std::string>(found.info, "text"), "current");
    EXPECT_EQ(field<uint64_t>(root().get_key(key.id), "use_count"), 0u);

    std::string typo = key.key;
    typo.back() = typo.back() == 'A' ? 'B' : 'A';
    const auto unknown = root().identify_key(typo);
    EXPECT_FALSE(unknown.known);
    EXPECT_EQ(field<std::string>(unknown.info, "reason"), "malformed");
}

TEST_F(Manage, UsageShowsWhoCalledAndCountsPerDay) {
    const auto key = root().create_key("audited", "", {"read"}, {});
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(root().verify_key(key.key, "read").valid);
    }
    EXPECT_FALSE(root().verify_key(key.key, "write").valid);

    const auto events = root().get_usage(key.id, {});
    ASSERT_EQ(events.size(), 5u) << to_json(events).dump();
    EXPECT_EQ(field<std::string>(events[0], "action"), "verify");
    EXPECT_EQ(field<std::string>(events[0], "result"), "scope");
    EXPECT_EQ(field<std::string>(events[4], "action"), "create");
    EXPECT_EQ(field<uint32_t>(events[0], "caller_uid"), 0u);
    EXPECT_EQ(field<uint32_t>(events[0], "caller_pid"), static_cast<uint32_t>(getpid()));
    EXPECT_EQ(field<std::string>(events[0], "caller_exe"),
              std::filesystem::read_symlink("/proc/self/exe").string());
    EXPECT_EQ(root().get_usage(key.id, {{"limit", uint32_t{2}}}).size(), 2u);
    EXPECT_EQ(bus_error_name([&] {
                  root().get_usage(key.id, {{"limit", uint32_t{0}}});
              }),
              kInvalidArgument);

    // Changes and refusals are logged as one structured line each; uses
    // that worked are counted, not logged; key text never is.
    const std::string log = daemon().log();
    EXPECT_NE(log.find("event=create id=" + key.id + " uid=0"), std::string::npos) << log;
    EXPECT_NE(log.find("event=verify id=" + key.id), std::string::npos) << log;
    EXPECT_NE(log.find("result=scope"), std::string::npos) << log;
    EXPECT_EQ(log.find("event=verify id=" + key.id + " uid=0 pid=" + std::to_string(getpid()) +
                       " result=ok"),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find(key.key), std::string::npos) << "key text in the log";

    const auto days = root().get_usage_by_day(key.id, {{"days", uint32_t{7}}});
    ASSERT_EQ(days.size(), 1u) << to_json(days).dump();
    EXPECT_EQ(field<uint64_t>(days[0], "ok"), 4u);
    EXPECT_EQ(field<uint64_t>(days[0], "refused"), 1u);
    const time_t now = time(nullptr);
    struct tm utc {};
    gmtime_r(&now, &utc);
    char today[16];
    strftime(today, sizeof today, "%Y-%m-%d", &utc);
    EXPECT_EQ(field<std::string>(days[0], "date"), today);
}

TEST_F(Manage, ManyVerificationsAreAllCountedAndTheExcessSaidUnrecorded) {
    const auto key = root().create_key("busy", "", {}, {});
    for (int i = 0; i < 1500; ++i) {
        ASSERT_TRUE(root().verify_key(key.key, "").valid);
    }
    const auto events = root().get_usage(key.id, {{"limit", uint32_t{1000}}});
    EXPECT_GE(events.size(), 600u) << "a caller's event budget: 600 at once";
    EXPECT_LT(events.size(), 1000u) << "and 600 more a minute";
    EXPECT_EQ(field<std::string>(events.back(), "action"), "create") << "the oldest are kept";
    const auto days = root().get_usage_by_day(key.id, {});
    ASSERT_EQ(days.size(), 1u);
    EXPECT_EQ(field<uint64_t>(days[0], "ok"), 1501u) << "the day counters keep every event";
    EXPECT_EQ(field<uint64_t>(days[0], "unrecorded"), 1501u - events.size());
}

}  // namespace
}  // namespace apikeyd::test
