// apikeyctl with a TPM-sealed daemon (a real swtpm per test): `status` shows
// the lock and how to lift it, `unlock --recovery-key` / `unlock --pin` take
// the secret from standard input (never from argv), and the firmware-update
// how-to (recover, add a fresh tpm2 slot, remove the stale one) works through
// `keyslot add` / `keyslot remove`.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dbus/client.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/keyslot_fixture.hpp"
#include "tests/support/private_bus.hpp"
#include "tests/support/swtpm.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using nlohmann::json;

constexpr int kExitUsage = 2;
constexpr int kExitDaemonError = 3;

// The last word of the "State" line of `apikeyctl status`.
std::string state_of(const std::string& status_text) {
    std::istringstream lines(status_text);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.starts_with("State")) {
            return line.substr(line.find_last_of(" \t") + 1);
        }
    }
    return "";
}

class Tpm2Cli : public KeyslotDaemonTest {
  protected:
    void SetUp() override {
        if (!require_root()) {
            return;
        }
        tpm_.emplace();
        DaemonOptions options;
        options.software_keyslot = false;
        options.first_start_args = {"--tpm2-device=" + tpm_->tcti()};
        start(std::move(options));
    }

    Swtpm& tpm() { return *tpm_; }

    // `apikeyctl status` (text and --json) of a locked daemon.
    void expect_status_locked(const std::string& hint) {
        const auto text = cli({"status"});
        ASSERT_EQ(text.exit_code, 0) << text.describe();
        EXPECT_EQ(state_of(text.out), "locked") << text.describe();
        EXPECT_NE(text.out.find("Lock reason"), std::string::npos) << text.describe();
        EXPECT_NE(text.out.find(hint), std::string::npos) << text.describe();
        const auto as_json = cli({"status", "--json"});
        ASSERT_EQ(as_json.exit_code, 0) << as_json.describe();
        const auto parsed = json::parse(as_json.out, nullptr, false);
        ASSERT_TRUE(parsed.is_object()) << as_json.describe();
        EXPECT_EQ(parsed.value("locked", false), true) << as_json.describe();
        EXPECT_FALSE(parsed.value("lock_reason", "").empty()) << as_json.describe();
    }

  private:
    std::optional<Swtpm> tpm_;
};

TEST_F(Tpm2Cli, RecoveryKeyUnlocksAfterTheTpmWasClearedThenReenrol) {
    const auto key = root().create_key("kept", "", {"read"}, {});
    const auto stale = keyslot_ids("tpm2");
    ASSERT_EQ(stale.size(), 1u);

    const auto added = cli({"keyslot", "add", "recovery"});
    ASSERT_EQ(added.exit_code, 0) << added.describe();
    ASSERT_FALSE(added.out.empty());
    const std::string recovery_key = added.out.substr(0, added.out.find('\n'));
    EXPECT_EQ(added.out, recovery_key + "\n") << "the recovery key alone goes to stdout";
    EXPECT_TRUE(is_recovery_key(recovery_key)) << recovery_key;
    EXPECT_EQ(added.err.find(recovery_key), std::string::npos) << added.describe();
    ASSERT_EQ(keyslot_ids("recovery").size(), 1u);

    const auto list = cli({"keyslot", "list"});
    ASSERT_EQ(list.exit_code, 0) << list.describe();
    EXPECT_NE(list.out.find(stale[0]), std::string::npos) << list.describe();
    EXPECT_NE(list.out.find(keyslot_ids("recovery")[0]), std::string::npos) << list.describe();
    EXPECT_NE(list.out.find(tpm().tcti()), std::string::npos) << list.describe();

    ASSERT_EQ(daemon().stop(), 0) << daemon().log();
    tpm().wipe_state();
    daemon().start();
    ASSERT_TRUE(locked());
    expect_status_locked("apikeyctl unlock --recovery-key");

    // Never from argv: refused, and not repeated back.
    const auto in_argv = cli({"unlock", "--recovery-key", recovery_key});
    EXPECT_EQ(in_argv.exit_code, kExitUsage) << in_argv.describe();
    EXPECT_EQ((in_argv.out + in_argv.err).find(recovery_key), std::string::npos)
        << in_argv.describe();
    EXPECT_TRUE(locked());

    std::string wrong = recovery_key;
    wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
    const auto refused = cli({"unlock", "--recovery-key"}, wrong + "\n");
    EXPECT_EQ(refused.exit_code, kExitDaemonError) << refused.describe();
    EXPECT_EQ((refused.out + refused.err).find(wrong), std::string::npos) << refused.describe();
    EXPECT_TRUE(locked());

    const auto unlocked = cli({"unlock", "--recovery-key"}, recovery_key + "\n");
    ASSERT_EQ(unlocked.exit_code, 0) << unlocked.describe() << daemon().log();
    EXPECT_FALSE(locked());
    EXPECT_TRUE(root().verify_key(key.key, "read").valid);
    const auto again = cli({"unlock", "--recovery-key"}, recovery_key + "\n");
    EXPECT_EQ(again.exit_code, 0) << again.describe();
    EXPECT_NE(again.out.find("not locked"), std::string::npos) << again.describe();
    const auto status = cli({"status"});
    EXPECT_EQ(state_of(status.out), "unlocked") << status.describe();

    // The how-to after a firmware update or a cleared TPM.
    const auto fresh = cli({"keyslot", "add", "tpm2", "--tcti", tpm().tcti(), "--json"});
    ASSERT_EQ(fresh.exit_code, 0) << fresh.describe();
    const auto fresh_id = json::parse(fresh.out, nullptr, false).value("id", "");
    const auto removed = cli({"keyslot", "remove", stale[0]});
    ASSERT_EQ(removed.exit_code, 0) << removed.describe();
    EXPECT_EQ(keyslot_ids("tpm2"), std::vector<std::string>{fresh_id});
    restart_daemon();
    EXPECT_FALSE(locked()) << daemon().log();
    EXPECT_TRUE(root().verify_key(key.key, "read").valid);
}

TEST_F(Tpm2Cli, PinFromStdinUnlocksAPinSlot) {
    const auto key = root().create_key("kept", "", {}, {});
    const auto unbound = keyslot_ids("tpm2");
    ASSERT_EQ(unbound.size(), 1u);
    const auto added =
        cli({"keyslot", "add", "tpm2", "--tcti", tpm().tcti(), "--pin", "--json"}, "8642-pin\n");
    ASSERT_EQ(added.exit_code, 0) << added.describe();
    const auto pin_slot = json::parse(added.out, nullptr, false).value("id", "");
    ASSERT_FALSE(pin_slot.empty()) << added.describe();
    ASSERT_EQ(cli({"keyslot", "add", "recovery"}).exit_code, 0);
    ASSERT_EQ(cli({"keyslot", "remove", unbound[0]}).exit_code, 0);
    restart_daemon();
    ASSERT_TRUE(locked());
    expect_status_locked("apikeyctl unlock --pin");

    const auto refused = cli({"unlock", "--pin"}, "0000-pin\n");
    EXPECT_EQ(refused.exit_code, kExitDaemonError) << refused.describe();
    EXPECT_TRUE(locked());
    const auto unlocked = cli({"unlock", "--pin"}, "8642-pin\n");
    ASSERT_EQ(unlocked.exit_code, 0) << unlocked.describe() << daemon().log();
    EXPECT_FALSE(locked());
    EXPECT_TRUE(root().verify_key(key.key, "").valid);
    EXPECT_EQ(daemon().log().find("8642-pin"), std::string::npos) << "the PIN reached the log";
}

}  // namespace
}  // namespace apikeyd::test
