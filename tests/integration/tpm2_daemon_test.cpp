// The tpm2 keyslot through the whole daemon: a private dbus-daemon, the real
// apikeyd started with --tpm2-device, and a real swtpm of its own per test
// (tests/support/swtpm.*). Seals on a first start and unseals on the next,
// comes up locked when a PCR moved, the TPM was cleared or a PIN is needed,
// unlocks with the recovery key or the PIN without a restart, re-enrols, and
// leaves keyslot management to root. The TPM's own view (PCRs, the
// dictionary-attack counter, the sealed object) is read with tpm2-tools.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dbus/client.hpp"
#include "tests/support/as_nobody.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/keyslot_fixture.hpp"
#include "tests/support/private_bus.hpp"
#include "tests/support/process.hpp"
#include "tests/support/swtpm.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/timing.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kLocked = "org.apikeyd1.Error.Locked";
constexpr const char* kAccessDenied = "org.apikeyd1.Error.AccessDenied";
constexpr const char* kInvalidArgument = "org.apikeyd1.Error.InvalidArgument";

// ------------------------------------------------------- tpm2-tools ---

// A tpm2-tools command against the test's swtpm. Fails the test (and
// returns the result anyway) when it does not exit 0.
ProcessResult tpm2_tool(const Swtpm& tpm, const std::vector<std::string>& argv) {
    auto env = base_environment();
    env.push_back("TPM2TOOLS_TCTI=" + tpm.tcti());
    const auto result = run_process(argv, "", env, scaled(30s));
    EXPECT_EQ(result.exit_code, 0) << argv[0] << ": " << result.describe();
    return result;
}

// TPM2_PT_LOCKOUT_COUNTER: the dictionary-attack failures the TPM counts.
uint64_t lockout_counter(const Swtpm& tpm) {
    const auto r = tpm2_tool(tpm, {"tpm2_getcap", "properties-variable"});
    static constexpr std::string_view kName = "TPM2_PT_LOCKOUT_COUNTER:";
    const size_t at = r.out.find(kName);
    if (at == std::string::npos) {
        throw std::runtime_error("no TPM2_PT_LOCKOUT_COUNTER in: " + r.describe());
    }
    // " 0x3": strtoull with base 16 takes the 0x.
    return std::stoull(r.out.substr(at + kName.size()), nullptr, 16);
}

// Extends sha256 PCR 16 (the debug PCR; swtpm's startup-clear resets it).
void extend_pcr16(const Swtpm& tpm) {
    tpm2_tool(tpm, {"tpm2_pcrextend", "16:sha256=" + std::string(64, 'a')});
}

// The sealed blob of keyslot `id` as the daemon stored it, read from its
// SQLite database with Debian's Python (the test binary has no SQLite).
// The daemon holds the database exclusively while it runs (nothing else
// can even read it then), so it is stopped for the read and started again.
std::vector<uint8_t> stored_sealed_blob(Daemon& daemon, const std::string& id) {
    if (const int status = daemon.stop(); status != 0) {
        throw std::runtime_error("apikeyd exited with " + std::to_string(status) + ": " +
                                 daemon.log());
    }
    const std::filesystem::path state_dir = daemon.state_dir();
    const auto r = run_process(
        {"/usr/bin/python3", "-c",
         "import sqlite3, sys\n"
         "db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n"
         "row = db.execute('SELECT hex(sealed) FROM keyslots WHERE id = ?', (sys.argv[2],))"
         ".fetchone()\n"
         "print(row[0] if row else '')\n",
         (state_dir / "apikeyd.db").string(), id},
        "", base_environment(), scaled(30s));
    daemon.start();
    if (r.exit_code != 0) {
        throw std::runtime_error("cannot read the keyslot from the database: " + r.describe());
    }
    std::vector<uint8_t> blob;
    for (size_t i = 0; i + 1 < r.out.size() && r.out[i] != '\n'; i += 2) {
        blob.push_back(static_cast<uint8_t>(std::stoi(r.out.substr(i, 2), nullptr, 16)));
    }
    return blob;
}

// Loads a stored tpm2 blob (TPM2B_PUBLIC || TPM2B_PRIVATE) under the SRK
// made from the documented template, as anyone with the TPM and the database
// could, and tries TPM2_Unseal with a plain password session. Returns the
// tool's result; its stdout is the unsealed data (hex) when it worked. Every
// transient handle is flushed afterwards: swtpm has three.
ProcessResult unseal_with_tools(const Swtpm& tpm, const std::vector<uint8_t>& blob) {
    TempDir dir("apikeyd-tools");
    if (blob.size() < 4) {
        throw std::runtime_error("the sealed blob is too short");
    }
    const size_t pub_size = 2 + (static_cast<size_t>(blob[0]) << 8 | blob[1]);
    if (pub_size + 2 > blob.size()) {
        throw std::runtime_error("the sealed blob does not parse");
    }
    const auto as_text = [](auto first, auto last) { return std::string(first, last); };
    write_file(dir / "pub", as_text(blob.begin(), blob.begin() + static_cast<ptrdiff_t>(pub_size)));
    write_file(dir / "priv", as_text(blob.begin() + static_cast<ptrdiff_t>(pub_size), blob.end()));
    const auto flush_transient = [&] { tpm2_tool(tpm, {"tpm2_flushcontext", "-t"}); };
    // Without a resource manager the tools leave what they load in the TPM.
    tpm2_tool(
        tpm, {"tpm2_createprimary", "-Q", "-C", "o", "-g", "sha256", "-G", "ecc256:null:aes128cfb",
              "-a", "restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda",
              "-c", (dir / "srk.ctx").string()});
    flush_transient();
    tpm2_tool(tpm,
              {"tpm2_load", "-Q", "-C", (dir / "srk.ctx").string(), "-u", (dir / "pub").string(),
               "-r", (dir / "priv").string(), "-c", (dir / "object.ctx").string()});
    flush_transient();
    auto env = base_environment();
    env.push_back("TPM2TOOLS_TCTI=" + tpm.tcti());
    const auto unsealed = run_process(
        {"sh", "-c", "tpm2_unseal -c \"$1\" -o \"$2\" && od -An -v -tx1 \"$2\" | tr -d ' \\n'",
         "sh", (dir / "object.ctx").string(), (dir / "unsealed").string()},
        "", env, scaled(30s));
    flush_transient();
    tpm2_tool(tpm, {"tpm2_flushcontext", "-s"});
    return unsealed;
}

std::string to_hex(const std::string& bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += kDigits[c >> 4];
        out += kDigits[c & 15];
    }
    return out;
}

std::string from_hex(const std::string& hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

// --------------------------------------------------------------- fixture ---

class Tpm2Daemon : public KeyslotDaemonTest {
  protected:
    void SetUp() override {
        if (!require_root()) {
            return;
        }
        tpm_.emplace();
        DaemonOptions options;
        options.software_keyslot = false;
        // Only the first start is told about the TPM; later starts find the
        // TCTI in the keyslot.
        options.first_start_args = {"--tpm2-device=" + tpm_->tcti()};
        start(std::move(options));
    }

    Swtpm& tpm() { return *tpm_; }

    // The one tpm2 slot of a fresh daemon: the one its first start made.
    std::string first_tpm2_slot() {
        const auto ids = keyslot_ids("tpm2");
        if (ids.size() != 1) {
            throw std::runtime_error("expected one tpm2 keyslot: " + to_json(status()).dump());
        }
        return ids.front();
    }

    Dict tpm2_options(std::vector<uint32_t> pcrs = {}, const std::string& pin = "") {
        Dict options{{"tcti", tpm().tcti()}};
        if (!pcrs.empty()) {
            options.emplace("pcrs", std::move(pcrs));
        }
        if (!pin.empty()) {
            options.emplace("pin", pin);
        }
        return options;
    }

  private:
    std::optional<Swtpm> tpm_;
};

// ----------------------------------------------------------------- tests ---

TEST_F(Tpm2Daemon, FirstStartSealsWithTheTpmAndARestartUnseals) {
    auto s = status();
    EXPECT_FALSE(field<bool>(s, "locked")) << daemon().log();
    const auto slots = field<std::vector<Dict>>(s, "keyslots");
    ASSERT_EQ(slots.size(), 1u) << to_json(s).dump();
    EXPECT_EQ(field<std::string>(slots[0], "type"), "tpm2");
    EXPECT_EQ(field<std::string>(slots[0], "tcti"), tpm().tcti());
    EXPECT_EQ(field<std::vector<uint32_t>>(slots[0], "pcrs"), std::vector<uint32_t>{});
    EXPECT_FALSE(field<bool>(slots[0], "pin"));
    EXPECT_GT(field<uint64_t>(slots[0], "created_usec"), 0u);
    EXPECT_FALSE(std::filesystem::exists(daemon().state_dir() / "software-keyslot.key"));
    EXPECT_FALSE(mentions(daemon().log(), "INSECURE")) << daemon().log();
    for (const auto& warning : field<std::vector<std::string>>(s, "warnings")) {
        EXPECT_FALSE(mentions(warning, "software")) << warning;
    }

    const auto key = root().create_key("sealed", "", {"read"}, {});
    restart_daemon();  // no --tpm2-device this time: the slot knows its TCTI
    expect_unlocked(key);
    EXPECT_EQ(last_status_notification(), "STATUS=Serving");
    EXPECT_EQ(keyslot_ids("tpm2"), std::vector<std::string>{field<std::string>(slots[0], "id")});

    // A power cycle of the TPM (orderly) changes nothing for a slot without PCRs.
    ASSERT_EQ(daemon().stop(), 0) << daemon().log();
    tpm().restart();
    daemon().start();
    expect_unlocked(key);
    EXPECT_FALSE(std::filesystem::exists(daemon().state_dir() / "software-keyslot.key"));
}

TEST_F(Tpm2Daemon, MasterKeyIsNeverInTheStateDirectory) {
    // The slot has no PCRs and no PIN, so whoever holds the TPM and the
    // database can unseal it, as the test does here with tpm2-tools: that
    // gives the master key to look for.
    const std::string slot = first_tpm2_slot();
    const auto key = root().create_key("some-key", "", {}, {});
    root().import_secret("some-secret", "", bytes_of("not the master key"), {});
    const auto blob = stored_sealed_blob(daemon(), slot);
    ASSERT_FALSE(blob.empty());
    const auto unsealed = unseal_with_tools(tpm(), blob);
    ASSERT_EQ(unsealed.exit_code, 0) << unsealed.describe();
    const std::string master = from_hex(unsealed.out);
    ASSERT_EQ(master.size(), 32u) << unsealed.describe();
    ASSERT_NE(master, std::string(32, '\0'));

    // What the daemon keeps for the slot is the TPM's sealed object, and the
    // state directory holds no other copy of the key: not in the database,
    // its WAL and shared memory, nor in any other file, in binary or hex.
    auto expect_absent = [&](const std::string& when) {
        size_t files = 0;
        for (const auto& entry :
             std::filesystem::recursive_directory_iterator(daemon().state_dir())) {
            if (!entry.is_regular_file()) {
                continue;
            }
            ++files;
            const std::string content = read_file(entry.path());
            EXPECT_EQ(content.find(master), std::string::npos) << when << ": " << entry.path();
            EXPECT_FALSE(mentions(content, to_hex(master))) << when << ": " << entry.path();
        }
        EXPECT_GE(files, 1u) << when;
        EXPECT_FALSE(mentions(daemon().log(), to_hex(master))) << "in the daemon's log, " << when;
        EXPECT_FALSE(std::filesystem::exists(daemon().state_dir() / "software-keyslot.key"));
    };
    expect_absent("while the daemon runs");
    ASSERT_EQ(daemon().stop(), 0) << daemon().log();
    expect_absent("after it stopped");
    // The tools flushed what they loaded: the daemon still unseals.
    daemon().start();
    expect_unlocked(key);
}

TEST_F(Tpm2Daemon, PcrBoundSlotLocksAfterAnExtendAndRecoveryUnlocksThenReenrols) {
    const auto key = root().create_key("kept", "", {"read"}, {});
    const std::string unbound = first_tpm2_slot();
    const auto recovery = root().add_keyslot("recovery", {});
    EXPECT_TRUE(is_recovery_key(recovery.recovery_key)) << recovery.recovery_key;
    const auto bound = root().add_keyslot("tpm2", tpm2_options({16}));
    EXPECT_EQ(bound.recovery_key, "");
    const auto bound_info = keyslot(bound.id);
    ASSERT_TRUE(bound_info) << to_json(status()).dump();
    EXPECT_EQ(field<std::vector<uint32_t>>(*bound_info, "pcrs"), std::vector<uint32_t>{16});
    EXPECT_EQ(field<std::string>(*bound_info, "tcti"), tpm().tcti());
    root().remove_keyslot(unbound);
    EXPECT_FALSE(keyslot(unbound));

    restart_daemon();
    expect_unlocked(key);

    // No other way into the PCR-bound object: a password session is refused
    // by the TPM even before the PCR moved (its userWithAuth is clear).
    const auto bypass = unseal_with_tools(tpm(), stored_sealed_blob(daemon(), bound.id));
    EXPECT_NE(bypass.exit_code, 0) << bypass.describe();
    // TPM_RC_AUTH_UNAVAILABLE, not a resource or load problem of the tools.
    EXPECT_TRUE(mentions(bypass.err, "0x12F")) << bypass.describe();
    EXPECT_EQ(bypass.out, "") << "a password session unsealed a PCR-bound object";

    extend_pcr16(tpm());
    restart_daemon();
    expect_locked(key, "PCR");

    // A wrong recovery key (well-formed, and one that is not) is refused.
    std::string wrong = recovery.recovery_key;
    wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
    const auto refused = catch_bus_error([&] {
        root().unlock("recovery", {{"recovery_key", wrong}});
    });
    EXPECT_EQ(refused.name, kAccessDenied) << refused.message;
    EXPECT_EQ(refused.message.find(recovery.recovery_key), std::string::npos);
    EXPECT_EQ(bus_error_name([&] {
                  root().unlock("recovery", {{"recovery_key", "nonsense"}});
              }),
              kInvalidArgument);
    EXPECT_TRUE(locked());
    EXPECT_EQ(bus_error_name([&] { root().verify_key(key.key, ""); }), kLocked);

    // The right one unlocks at once, without a restart.
    root().unlock("recovery", {{"recovery_key", recovery.recovery_key}});
    expect_unlocked(key);
    EXPECT_EQ(bus_error_name([&] {
                  root().unlock("recovery", {{"recovery_key", recovery.recovery_key}});
              }),
              kInvalidArgument)
        << "unlocking an unlocked daemon";
    const auto created_while_recovered = root().create_key("after-recovery", "", {}, {});

    // Re-enrol: a fresh slot on today's PCR values, the stale one removed.
    const auto fresh = root().add_keyslot("tpm2", tpm2_options({16}));
    root().remove_keyslot(bound.id);
    EXPECT_EQ(keyslot_ids("tpm2"), std::vector<std::string>{fresh.id});
    EXPECT_EQ(keyslot_ids("recovery"), std::vector<std::string>{recovery.id});
    restart_daemon();
    expect_unlocked(key);
    expect_unlocked(created_while_recovered);
}

TEST_F(Tpm2Daemon, ClearedTpmLeavesTheDaemonLockedUntilRecovery) {
    const auto key = root().create_key("kept", "", {}, {});
    const std::string stale = first_tpm2_slot();
    const auto recovery = root().add_keyslot("recovery", {});

    // What a TPM2_Clear, or moving the disk to another machine, looks like:
    // a TPM with other seeds on the same TCTI.
    ASSERT_EQ(daemon().stop(), 0) << daemon().log();
    tpm().wipe_state();
    daemon().start();
    const auto s = status();
    EXPECT_TRUE(field<bool>(s, "locked")) << to_json(s).dump();
    const auto reason = s.contains("lock_reason") ? field<std::string>(s, "lock_reason") : "";
    EXPECT_TRUE(mentions(reason, "another TPM") || mentions(reason, "cleared")) << reason;
    expect_locked(key, stale);  // the reason names the slot that failed
    // Locked, nobody can tell which slot still works: no slot is removed
    // (it might be the only way back in) and none is added.
    EXPECT_EQ(bus_error_name([&] { root().remove_keyslot(recovery.id); }), kLocked);
    EXPECT_EQ(bus_error_name([&] { root().add_keyslot("tpm2", tpm2_options()); }), kLocked);
    EXPECT_EQ(keyslots().size(), 2u) << to_json(status()).dump();

    root().unlock("recovery", {{"recovery_key", recovery.recovery_key}});
    expect_unlocked(key);

    // Enrol on the new TPM and drop the stale slot: the next start unseals.
    const auto fresh = root().add_keyslot("tpm2", tpm2_options());
    root().remove_keyslot(stale);
    restart_daemon();
    expect_unlocked(key);
    EXPECT_EQ(keyslot_ids("tpm2"), std::vector<std::string>{fresh.id});
}

// Any one slot unlocks: with two recovery keys (say, one per administrator)
// the second one works as well as the first.
TEST_F(Tpm2Daemon, SecondOfTwoRecoveryKeysUnlocks) {
    const auto key = root().create_key("kept", "", {}, {});
    const auto first = root().add_keyslot("recovery", {});
    const auto second = root().add_keyslot("recovery", {});
    ASSERT_NE(first.recovery_key, second.recovery_key);
    ASSERT_EQ(daemon().stop(), 0) << daemon().log();
    tpm().wipe_state();
    daemon().start();
    ASSERT_TRUE(locked());

    const auto with_second = catch_bus_error([&] {
        root().unlock("recovery", {{"recovery_key", second.recovery_key}});
    });
    EXPECT_FALSE(with_second.thrown) << "the second recovery key was refused: " << with_second.name
                                     << ": " << with_second.message;
    if (with_second.thrown) {
        // Still check the first one, so that the failure above is the only one.
        root().unlock("recovery", {{"recovery_key", first.recovery_key}});
    }
    expect_unlocked(key);
}

TEST_F(Tpm2Daemon, PinSlotNeedsThePinAndTheTpmCountsAWrongOne) {
    const auto key = root().create_key("kept", "", {}, {});
    const std::string unbound = first_tpm2_slot();
    const auto recovery = root().add_keyslot("recovery", {});
    const auto with_pin = root().add_keyslot("tpm2", tpm2_options({}, "2468-pin"));
    const auto info = keyslot(with_pin.id);
    ASSERT_TRUE(info);
    EXPECT_TRUE(field<bool>(*info, "pin"));
    EXPECT_EQ(field<std::vector<uint32_t>>(*info, "pcrs"), std::vector<uint32_t>{});
    root().remove_keyslot(unbound);
    EXPECT_EQ(keyslots().size(), 2u) << to_json(status()).dump();
    ASSERT_FALSE(mentions(daemon().log(), "2468-pin")) << "the PIN reached the log";

    restart_daemon();
    expect_locked(key, "PIN");

    // No PIN at all is refused before the TPM is asked: nothing is counted.
    const uint64_t before = lockout_counter(tpm());
    EXPECT_EQ(bus_error_name([&] { root().unlock("tpm2", {}); }), kAccessDenied);
    EXPECT_EQ(lockout_counter(tpm()), before);

    // A wrong PIN is refused, and the TPM counts it as a dictionary-attack failure.
    const auto wrong = catch_bus_error([&] { root().unlock("tpm2", {{"pin", "1357-pin"}}); });
    EXPECT_EQ(wrong.name, kAccessDenied) << wrong.message;
    EXPECT_TRUE(mentions(wrong.message, "PIN")) << wrong.message;
    EXPECT_EQ(lockout_counter(tpm()), before + 1);
    EXPECT_TRUE(locked());
    EXPECT_EQ(bus_error_name([&] { root().verify_key(key.key, ""); }), kLocked);

    // The right one unlocks without a restart.
    root().unlock("tpm2", {{"pin", "2468-pin"}});
    expect_unlocked(key);
    EXPECT_EQ(lockout_counter(tpm()), before + 1) << "the right PIN is not a failure";
    const std::string log = daemon().log();
    EXPECT_FALSE(mentions(log, "2468-pin") || mentions(log, "1357-pin"))
        << "a PIN reached the log:\n"
        << log;
    EXPECT_FALSE(mentions(log, recovery.recovery_key));
}

TEST_F(Tpm2Daemon, PinLockoutIsReportedAndTheRecoveryKeyStillWorks) {
    const auto key = root().create_key("kept", "", {}, {});
    const std::string unbound = first_tpm2_slot();
    const auto recovery = root().add_keyslot("recovery", {});
    root().add_keyslot("tpm2", tpm2_options({}, "2468"));
    root().remove_keyslot(unbound);
    restart_daemon();
    ASSERT_TRUE(locked());

    // swtpm allows 3 failures (TPM2_PT_MAX_AUTH_FAIL); then even the right
    // PIN is refused until the lockout recovers.
    for (const char* pin : {"0001", "0002", "0003"}) {
        EXPECT_EQ(bus_error_name([&] { root().unlock("tpm2", {{"pin", pin}}); }), kAccessDenied);
    }
    EXPECT_EQ(lockout_counter(tpm()), 3u);
    const auto refused = catch_bus_error([&] { root().unlock("tpm2", {{"pin", "2468"}}); });
    EXPECT_EQ(refused.name, kAccessDenied) << refused.message;
    EXPECT_TRUE(mentions(refused.message, "lockout")) << refused.message;
    EXPECT_TRUE(daemon().running());
    EXPECT_TRUE(locked());
    // The log line carries the TPM's code, decoded.
    EXPECT_TRUE(mentions(daemon().log(), "0x921")) << daemon().log();

    // Nothing is lost: the recovery key opens it.
    root().unlock("recovery", {{"recovery_key", recovery.recovery_key}});
    expect_unlocked(key);
}

TEST_F(Tpm2Daemon, TpmGoneAtStartLocksAndUnlockRetriesOnceItIsBack) {
    const auto key = root().create_key("kept", "", {}, {});
    const std::string slot = first_tpm2_slot();
    ASSERT_EQ(daemon().stop(), 0) << daemon().log();
    tpm().stop();
    daemon().start();
    expect_locked(key, "not reachable");
    EXPECT_EQ(bus_error_name([&] { root().add_keyslot("recovery", {}); }), kLocked)
        << "a slot added while locked would seal nothing";

    // The TPM is back (a late device, a restarted swtpm): no restart needed.
    tpm().start();
    root().unlock("tpm2", {});
    expect_unlocked(key);

    // Enrolling while the TPM is away fails with a named error, changes
    // nothing and does not take the daemon down.
    tpm().stop();
    const auto failed = catch_bus_error([&] { root().add_keyslot("tpm2", tpm2_options()); });
    EXPECT_TRUE(failed.name.starts_with("org.apikeyd1.Error.")) << failed.name;
    EXPECT_TRUE(daemon().running());
    EXPECT_EQ(keyslot_ids("tpm2"), std::vector<std::string>{slot});
    tpm().start();
    expect_unlocked(key);
    restart_daemon();
    expect_unlocked(key);
}

TEST_F(Tpm2Daemon, OnlyRootManagesAndUnlocksKeyslots) {
    const auto key = root().create_key("kept", "", {}, {});
    const std::string tpm2_slot = first_tpm2_slot();
    const auto recovery = root().add_keyslot("recovery", {});
    const std::string address = bus().address();
    const std::string tcti = tpm().tcti();
    const auto as_nobody = [&] {
        return run_as_nobody([&] {
            auto calls = client::Client::connect_address(address);
            auto error = [](const std::function<void()>& call) {
                const auto caught = catch_bus_error(call);
                return json{{"name", caught.name}, {"message", caught.message}};
            };
            return json{
                {"add_tpm2", error([&] {
                     calls.add_keyslot("tpm2", {{"tcti", tcti}});
                 })},
                {"add_recovery", error([&] { calls.add_keyslot("recovery", {}); })},
                {"remove", error([&] { calls.remove_keyslot(recovery.id); })},
                {"remove_tpm2", error([&] { calls.remove_keyslot(tpm2_slot); })},
                {"unlock_recovery", error([&] {
                     calls.unlock("recovery", {{"recovery_key", recovery.recovery_key}});
                 })},
                {"unlock_pin", error([&] {
                     calls.unlock("tpm2", {{"pin", "1234"}});
                 })},
            };
        });
    };
    const auto before = to_json(keyslots());

    auto outcome = as_nobody();
    ASSERT_TRUE(outcome.ok) << outcome.error;
    for (const auto& [call, error] : outcome.value.items()) {
        EXPECT_EQ(error["name"], kAccessDenied) << call << ": " << error.dump();
    }
    EXPECT_EQ(to_json(keyslots()), before);

    // Locked, even the right recovery key does not let nobody in.
    ASSERT_EQ(daemon().stop(), 0) << daemon().log();
    tpm().wipe_state();
    daemon().start();
    ASSERT_TRUE(locked());
    outcome = as_nobody();
    ASSERT_TRUE(outcome.ok) << outcome.error;
    for (const auto& [call, error] : outcome.value.items()) {
        EXPECT_EQ(error["name"], kAccessDenied) << call << ": " << error.dump();
    }
    EXPECT_TRUE(locked()) << "nobody unlocked the daemon";
    EXPECT_EQ(to_json(keyslots()), before);
    root().unlock("recovery", {{"recovery_key", recovery.recovery_key}});
    expect_unlocked(key);
}

}  // namespace
}  // namespace apikeyd::test
