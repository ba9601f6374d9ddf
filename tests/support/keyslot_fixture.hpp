#pragma once
// The fixture of the keyslot integration tests (tpm2 on swtpm, pkcs11 on
// SoftHSM): a private bus, the real apikeyd started the way the derived
// fixture says (after it has started its hardware), a root client, and the
// checks every keyslot test makes: locked with a reason, unlocked so that a
// key verifies, what the keyslots look like.

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dbus/client.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/private_bus.hpp"
#include "tests/support/process.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {

class KeyslotDaemonTest : public ::testing::Test {
  protected:
    // True when the test can run; else it has been skipped with the reason.
    bool require_root();
    // Starts the bus, the daemon with `options` and the root client.
    void start(DaemonOptions options);
    // Stops them before the derived fixture's hardware goes away.
    void TearDown() override;

    PrivateBus& bus() { return *bus_; }
    Daemon& daemon() { return *daemon_; }
    client::Client& root() { return *root_; }
    ProcessResult cli(const std::vector<std::string>& args, const std::string& stdin_text = "");

    // SIGTERM (a clean exit is expected) and start again.
    void restart_daemon();

    Dict status() { return root().get_status(); }
    bool locked() { return field<bool>(status(), "locked"); }
    std::string lock_reason();
    std::vector<Dict> keyslots() { return field<std::vector<Dict>>(status(), "keyslots"); }
    std::vector<std::string> keyslot_ids(const std::string& type);
    std::optional<Dict> keyslot(const std::string& id) { return find_by_id(keyslots(), id); }

    // Locked: GetStatus says so and why (mentioning `reason_mentions`), the
    // key methods answer Locked, and systemd was told.
    void expect_locked(const client::CreatedKey& key, const std::string& reason_mentions);
    // Unlocked: GetStatus says so, `key` verifies, and systemd was told.
    void expect_unlocked(const client::CreatedKey& key);
    // The STATUS= of the daemon's latest sd_notify.
    std::string last_status_notification();

  private:
    std::optional<PrivateBus> bus_;
    std::optional<Daemon> daemon_;
    std::optional<client::Client> root_;
};

// "abcd-efgh-...": 8 groups of 4 characters of a-z and 2-7.
bool is_recovery_key(const std::string& text);

// Case-insensitive substring test, for messages.
bool mentions(const std::string& text, const std::string& word);

}  // namespace apikeyd::test
