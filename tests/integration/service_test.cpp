// The daemon as a service: it tells systemd when it is ready and when it
// stops, exits cleanly on SIGTERM, refuses a first start without a keyslot
// choice and a second instance on the same state directory, and starts
// locked (answering Locked) when its keyslot cannot unlock the master key.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>

#include "tests/support/fixture.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/timing.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using namespace std::chrono_literals;

bool contains(const std::vector<std::string>& lines, const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

using Service = DaemonTest;

TEST_F(Service, NotifiesReadyAndStoppingAndExitsCleanlyOnSigterm) {
    // The daemon notifies READY=1 just after it takes its bus name, which is
    // what start() waited for: the datagram may still be on its way.
    EXPECT_TRUE(eventually([&] { return contains(daemon().notifications(), "READY=1"); },
                           scaled(std::chrono::seconds(5))))
        << "no READY=1 on $NOTIFY_SOCKET; got " << testing::PrintToString(daemon().notifications());
    EXPECT_FALSE(contains(daemon().notifications(), "STOPPING=1"));
    EXPECT_EQ(daemon().stop(), 0) << daemon().log();
    EXPECT_TRUE(contains(daemon().notifications(), "STOPPING=1"))
        << testing::PrintToString(daemon().notifications());
}

// A daemon that exited cleanly without its bus would stay down: systemd's
// Restart=on-failure only restarts a failure.
TEST(ServiceBus, ExitsWithAFailureAndSaysWhyWhenItLosesTheBus) {
    PrivateBus bus;
    Daemon daemon(bus);
    bus.kill9();
    const auto exit_code = daemon.wait_for_exit(scaled(std::chrono::seconds(10)));
    ASSERT_TRUE(exit_code) << "apikeyd kept running without its bus; its log:\n" << daemon.log();
    EXPECT_NE(*exit_code, 0) << daemon.log();
    EXPECT_NE(daemon.log().find("<3>Lost the connection to the system bus"), std::string::npos)
        << daemon.log();
}

TEST_F(Service, LogLinesCarrySyslogPriorities) {
    root().create_key("logged", "", {}, {});
    daemon().stop();
    const std::string log = daemon().log();
    ASSERT_FALSE(log.empty());
    size_t start = 0;
    while (start < log.size()) {
        const size_t end = log.find('\n', start);
        const std::string line = log.substr(start, end - start);
        EXPECT_TRUE(line.size() >= 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '7' &&
                    line[2] == '>')
            << "line without a <N> priority prefix: '" << line << "'";
        if (end == std::string::npos) {
            break;
        }
        start = end + 1;
    }
}

TEST_F(Service, RefusesASecondInstanceOnTheSameStateDirectory) {
    const auto key = root().create_key("first", "", {}, {});
    auto env = base_environment();
    env.push_back("DBUS_SYSTEM_BUS_ADDRESS=" + bus().address());
    const auto second =
        run_process({APIKEYD_BINARY, "--state-directory=" + daemon().state_dir().string()}, "", env,
                    scaled(20s));
    EXPECT_FALSE(second.timed_out) << second.describe();
    EXPECT_NE(second.exit_code, 0) << second.describe();
    EXPECT_TRUE(daemon().running());
    EXPECT_TRUE(root().verify_key(key.key, "").valid) << "the first daemon must keep serving";
}

// Every call that touches keys answers Locked; GetStatus still answers.
void expect_locked(client::Client& client, const std::string& key, const std::string& id) {
    const auto status = client.get_status();
    EXPECT_TRUE(field<bool>(status, "locked")) << to_json(status).dump();
    EXPECT_FALSE(field<std::string>(status, "lock_reason").empty()) << to_json(status).dump();
    const struct {
        const char* what;
        std::function<void()> call;
    } calls[] = {
        {"CreateKey", [&] { client.create_key("new", "", {}, {}); }},
        {"ImportSecret", [&] { client.import_secret("new", "", bytes_of("x"), {}); }},
        {"ListKeys", [&] { client.list_keys({}); }},
        {"GetKey", [&] { client.get_key(id); }},
        {"RevokeKey", [&] { client.revoke_key(id, ""); }},
        {"VerifyKey", [&] { client.verify_key(key, ""); }},
        {"GetSecret", [&] { client.get_secret(id); }},
    };
    for (const auto& c : calls) {
        const auto caught = catch_bus_error(c.call);
        EXPECT_EQ(caught.name, "org.apikeyd1.Error.Locked") << c.what << ": " << caught.message;
    }
}

TEST_F(Service, StartsLockedWhenNoKeyslotCanUnlock) {
    const auto key = root().create_key("kept", "", {}, {});
    EXPECT_EQ(daemon().stop(), 0) << daemon().log();
    std::filesystem::remove(daemon().state_dir() / "software-keyslot.key");
    daemon().start();  // it still serves, locked
    expect_locked(root(), key.key, key.id);
}

TEST_F(Service, KeyslotThatYieldsAnotherMasterKeyIsNotTrusted) {
    const auto key = root().create_key("kept", "", {}, {});
    EXPECT_EQ(daemon().stop(), 0) << daemon().log();
    const auto slot = daemon().state_dir() / "software-keyslot.key";
    const std::string original = read_file(slot);
    std::string flipped = original;
    for (auto& c : flipped) {
        c = static_cast<char>(c ^ 0x5a);
    }
    write_file(slot, flipped);
    daemon().start();
    expect_locked(root(), key.key, key.id);

    // Nothing was lost: with the right keyslot back, the key verifies again.
    EXPECT_EQ(daemon().stop(), 0) << daemon().log();
    write_file(slot, original);
    daemon().start();
    EXPECT_FALSE(field<bool>(root().get_status(), "locked"));
    EXPECT_TRUE(root().verify_key(key.key, "").valid);
}

TEST(ServiceStart, RefusesAFirstStartWithoutAKeyslotChoice) {
    if (std::filesystem::exists("/dev/tpmrm0")) {
        GTEST_SKIP() << "a TPM is present: the daemon may choose it by default";
    }
    TempDir dir;
    const auto state = dir / "state";
    auto env = base_environment();
    // No bus at all: the daemon must decide before it needs one.
    env.push_back("DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + (dir / "no_bus").string());
    const auto result =
        run_process({APIKEYD_BINARY, "--state-directory=" + state.string()}, "", env, scaled(20s));
    EXPECT_FALSE(result.timed_out) << result.describe();
    EXPECT_NE(result.exit_code, 0) << result.describe();
    EXPECT_NE(result.err.find("--insecure-software-keyslot"), std::string::npos)
        << "the message must say which keyslot options there are: " << result.describe();
    // Nothing that looks like a master key was left behind.
    if (std::filesystem::exists(state)) {
        EXPECT_FALSE(std::filesystem::exists(state / "software-keyslot.key"));
    }
}

}  // namespace
}  // namespace apikeyd::test
