#include "tests/support/keyslot_fixture.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "tests/support/cli.hpp"

namespace apikeyd::test {
namespace {

constexpr const char* kLocked = "org.apikeyd1.Error.Locked";

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
    return s;
}

}  // namespace

bool mentions(const std::string& text, const std::string& word) {
    return upper(text).find(upper(word)) != std::string::npos;
}

bool is_recovery_key(const std::string& text) {
    if (text.size() != 39) {
        return false;
    }
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool ok = i % 5 == 4 ? c == '-' : (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool KeyslotDaemonTest::require_root() {
    if (geteuid() == 0) {
        return true;
    }
    // GTEST_SKIP returns from this function only; the caller's SetUp returns
    // on false.
    [] {
        GTEST_SKIP() << "integration tests run as root: the bus policy lets only root (or the "
                        "apikeyd user) own org.apikeyd1, and tests drop to nobody";
    }();
    return false;
}

void KeyslotDaemonTest::start(DaemonOptions options) {
    bus_.emplace();
    daemon_.emplace(*bus_, std::move(options));
    root_.emplace(client::Client::connect_address(bus_->address()));
}

void KeyslotDaemonTest::TearDown() {
    root_.reset();
    daemon_.reset();
    bus_.reset();
}

ProcessResult KeyslotDaemonTest::cli(const std::vector<std::string>& args,
                                     const std::string& stdin_text) {
    return run_cli(bus_->address(), args, stdin_text);
}

void KeyslotDaemonTest::restart_daemon() {
    ASSERT_EQ(daemon().stop(), 0) << daemon().log();
    daemon().start();
}

std::string KeyslotDaemonTest::lock_reason() {
    const auto s = status();
    return s.contains("lock_reason") ? field<std::string>(s, "lock_reason") : "";
}

std::vector<std::string> KeyslotDaemonTest::keyslot_ids(const std::string& type) {
    std::vector<std::string> ids;
    for (const auto& slot : keyslots()) {
        if (field<std::string>(slot, "type") == type) {
            ids.push_back(field<std::string>(slot, "id"));
        }
    }
    return ids;
}

void KeyslotDaemonTest::expect_locked(const client::CreatedKey& key,
                                      const std::string& reason_mentions) {
    const auto s = status();
    EXPECT_TRUE(field<bool>(s, "locked")) << to_json(s).dump() << daemon().log();
    const auto reason = s.contains("lock_reason") ? field<std::string>(s, "lock_reason") : "";
    EXPECT_TRUE(mentions(reason, reason_mentions))
        << "lock_reason should mention '" << reason_mentions << "': " << reason;
    EXPECT_EQ(bus_error_name([&] { root().verify_key(key.key, ""); }), kLocked);
    EXPECT_EQ(bus_error_name([&] { root().get_key(key.id); }), kLocked);
    EXPECT_EQ(bus_error_name([&] { root().create_key("while-locked", "", {}, {}); }), kLocked);
    EXPECT_TRUE(mentions(last_status_notification(), "locked"))
        << testing::PrintToString(daemon().notifications());
}

void KeyslotDaemonTest::expect_unlocked(const client::CreatedKey& key) {
    const auto s = status();
    EXPECT_FALSE(field<bool>(s, "locked")) << to_json(s).dump() << daemon().log();
    EXPECT_FALSE(s.contains("lock_reason")) << to_json(s).dump();
    const auto v = root().verify_key(key.key, "");
    EXPECT_TRUE(v.valid) << to_json(v.info).dump();
    EXPECT_EQ(v.id, key.id);
    EXPECT_EQ(last_status_notification(), "STATUS=Serving")
        << testing::PrintToString(daemon().notifications());
}

std::string KeyslotDaemonTest::last_status_notification() {
    const auto notes = daemon().notifications();
    const auto it = std::find_if(notes.rbegin(), notes.rend(),
                                 [](const std::string& n) { return n.starts_with("STATUS="); });
    return it == notes.rend() ? "" : *it;
}

}  // namespace apikeyd::test
