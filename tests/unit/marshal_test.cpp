// The reply size guard of every list reply: a reply past kMaxReplyBytes is
// never built, and the largest reply the limits allow stays under it.

#include "dbus/marshal.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "daemon/caller.hpp"
#include "daemon/validation.hpp"
#include "dbus/sdbus.hpp"

namespace apikeyd::bus {
namespace {

// sd-bus makes messages only for a bus that has started; one end of a
// socketpair is bus enough, since nothing is sent.
class MarshalTest : public ::testing::Test {
  protected:
    void SetUp() override {
        int fds[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        peer_ = fds[1];
        sd_bus* raw = nullptr;
        ASSERT_GE(sd_bus_new(&raw), 0);
        bus_.reset(raw);
        ASSERT_GE(sd_bus_set_fd(raw, fds[0], fds[0]), 0);
        ASSERT_GE(sd_bus_start(raw), 0);
    }
    void TearDown() override { close(peer_); }

    sdbus::MessagePtr message() {
        sd_bus_message* raw = nullptr;
        EXPECT_GE(sd_bus_message_new_signal(bus_.get(), &raw, "/t", "t.T", "S"), 0);
        return sdbus::MessagePtr(raw);
    }

  private:
    sdbus::BusPtr bus_;
    int peer_ = -1;
};

// A key with every text field at its limit, in 4-byte characters.
KeyInfo largest_key(size_t n) {
    const std::string wide = "\U0001F511";
    const auto repeat = [&](size_t chars) {
        std::string out;
        for (size_t i = 0; i < chars; ++i) {
            out += wide;
        }
        return out;
    };
    KeyInfo info;
    info.id = "k_" + std::to_string(1'000'000'000'000 + n);
    info.name = repeat(limits::kMaxNameChars);
    info.description = repeat(limits::kMaxDescriptionChars);
    info.revoke_reason = repeat(limits::kMaxRevokeReasonChars);
    info.state = "revoked";
    for (size_t i = 0; i < limits::kMaxScopes; ++i) {
        info.scopes.push_back(std::string(limits::kMaxScopeLength - 3, 'a') +
                              std::to_string(100 + i));
    }
    return info;
}

TEST_F(MarshalTest, AFullListKeysPageAtEveryLimitFitsInOneReply) {
    std::vector<KeyInfo> page;
    for (size_t i = 0; i < KeyService::kMaxKeysListed; ++i) {
        page.push_back(largest_key(i));
    }
    auto m = message();
    EXPECT_GE(write(m.get(), page), 0);
}

TEST_F(MarshalTest, AListPastTheReplyLimitIsRefusedBeforeItIsBuilt) {
    std::vector<KeyInfo> keys;
    const KeyInfo one = largest_key(0);
    // Twice what a page may hold: past the limit about halfway.
    for (size_t i = 0; i < 2 * KeyService::kMaxKeysListed + 100; ++i) {
        keys.push_back(one);
    }
    auto m = message();
    EXPECT_EQ(write(m.get(), keys), -EMSGSIZE);

    std::vector<UsageEvent> events(60'000);
    for (auto& event : events) {
        event.action = "verify";
        event.result = "ok";
        event.caller_exe = std::string(kMaxCallerTextBytes, 'x');
    }
    auto e = message();
    EXPECT_EQ(write(e.get(), events), -EMSGSIZE);
}

}  // namespace
}  // namespace apikeyd::bus
