// The pkcs11 keyslot through the whole daemon: a private dbus-daemon, the
// real apikeyd, and a SoftHSM2 token store of its own per test
// (tests/support/softhsm.*), with RSA-2048 and EC P-256 token keys made by
// pkcs11-tool. Seals on a first start (--pkcs11-uri, --pkcs11-pin-file),
// unwraps at every later start with the systemd credential pkcs11-pin,
// comes up locked without a PIN, with a wrong one (tried once) or without
// the token, and unlocks with Unlock("pkcs11") or a recovery key. The PIN is
// never in the log or the state directory.

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dbus/client.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/keyslot_fixture.hpp"
#include "tests/support/softhsm.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using nlohmann::json;

constexpr const char* kAccessDenied = "org.apikeyd1.Error.AccessDenied";
constexpr const char* kInvalidArgument = "org.apikeyd1.Error.InvalidArgument";
constexpr const char* kNotFound = "org.apikeyd1.Error.NotFound";

// Distinctive, so that finding them anywhere means they leaked.
constexpr const char* kPin = "4711-token-pin";
constexpr const char* kOtherPin = "5822-other-pin";
constexpr const char* kToken = "apikeyd-test";
constexpr const char* kOtherToken = "apikeyd-other";

constexpr int kExitDaemonError = 3;

std::string token_uri(const std::string& label) {
    return "pkcs11:token=" + label + ";id=%01?module-path=" + SoftHsm::module_path().string();
}

class Pkcs11Daemon : public KeyslotDaemonTest {
  protected:
    void SetUp() override {
        if (!require_root()) {
            return;
        }
        hsm_.emplace();
    }

    SoftHsm& hsm() { return *hsm_; }

    void make_token(const std::string& label, const std::string& pin, SoftHsm::KeyType type) {
        hsm().init_token(label, pin);
        hsm().generate_key(label, pin, type, "01", "apikeyd");
    }

    // The daemon with SoftHSM's store and a credentials directory; sealed to
    // `kToken` on its first start when `sealed_to_token`, else to a software
    // slot.
    void start_daemon(bool sealed_to_token) {
        write_file(pin_file_, std::string(kPin) + "\n");
        DaemonOptions options;
        options.software_keyslot = !sealed_to_token;
        if (sealed_to_token) {
            options.first_start_args = {"--pkcs11-uri=" + token_uri(kToken),
                                        "--pkcs11-pin-file=" + pin_file_.string()};
        }
        options.environment = {hsm().environment_entry(),
                               "CREDENTIALS_DIRECTORY=" + credentials_.path().string()};
        start(std::move(options));
    }

    // What systemd's LoadCredential=pkcs11-pin:... would hand the next start.
    void set_credential(const std::string& pin) {
        write_file(credentials_.path() / "pkcs11-pin", pin + "\n");
    }
    void remove_credential() { std::filesystem::remove(credentials_.path() / "pkcs11-pin"); }

    Dict only_keyslot() {
        const auto slots = keyslots();
        if (slots.size() != 1) {
            throw std::runtime_error("expected one keyslot: " + to_json(slots).dump());
        }
        return slots.front();
    }

    Dict pkcs11_options(const std::string& uri, const std::string& pin) {
        return Dict{{"uri", uri}, {"pin", pin}};
    }

    // Neither PIN in the daemon's log or any file of its state directory.
    void expect_pins_nowhere() {
        const std::string log = daemon().log();
        for (const char* pin : {kPin, kOtherPin}) {
            EXPECT_EQ(log.find(pin), std::string::npos) << "a PIN reached the log:\n" << log;
            for (const auto& entry :
                 std::filesystem::recursive_directory_iterator(daemon().state_dir())) {
                if (entry.is_regular_file()) {
                    EXPECT_EQ(read_file(entry.path()).find(pin), std::string::npos)
                        << "a PIN is in " << entry.path();
                }
            }
        }
    }

  private:
    std::optional<SoftHsm> hsm_;
    TempDir files_{"apikeyd-pkcs11-files"};
    std::filesystem::path pin_file_ = files_.path() / "pin";
    TempDir credentials_{"apikeyd-credentials"};
};

TEST_F(Pkcs11Daemon, RsaTokenSealsOnFirstStartAndUnwrapsAtTheNext) {
    make_token(kToken, kPin, SoftHsm::KeyType::Rsa2048);
    start_daemon(true);
    const auto slot = only_keyslot();
    EXPECT_EQ(field<std::string>(slot, "type"), "pkcs11");
    EXPECT_TRUE(mentions(field<std::string>(slot, "uri"), "token=apikeyd-test"));
    // SoftHSM allows raw RSA, so the OAEP-SHA-256 round trip works.
    EXPECT_EQ(field<std::string>(slot, "mechanism"), "rsa-oaep-sha256");
    EXPECT_TRUE(field<bool>(slot, "pin"));
    EXPECT_FALSE(std::filesystem::exists(daemon().state_dir() / "software-keyslot.key"));

    const auto key = root().create_key("sealed-by-token", "", {}, {});
    set_credential(kPin);
    restart_daemon();
    expect_unlocked(key);
    EXPECT_EQ(last_status_notification(), "STATUS=Serving");
    expect_pins_nowhere();
}

TEST_F(Pkcs11Daemon, EcTokenSealsOnFirstStartAndUnwrapsAtTheNext) {
    make_token(kToken, kPin, SoftHsm::KeyType::EcP256);
    start_daemon(true);
    EXPECT_EQ(field<std::string>(only_keyslot(), "mechanism"), "ecdh-p256-hkdf-sha256-aes256gcm");
    const auto key = root().create_key("sealed-by-ec-token", "", {}, {});
    set_credential(kPin);
    restart_daemon();
    expect_unlocked(key);
    expect_pins_nowhere();
}

TEST_F(Pkcs11Daemon, WithoutAPinItStartsLockedAndUnlockTakesThePin) {
    make_token(kToken, kPin, SoftHsm::KeyType::EcP256);
    start_daemon(true);
    const auto key = root().create_key("kept", "", {}, {});
    restart_daemon();  // no credential this time
    expect_locked(key, "needs its PIN");
    EXPECT_TRUE(mentions(lock_reason(), "token=apikeyd-test")) << lock_reason();

    const auto wrong = catch_bus_error([&] { root().unlock("pkcs11", {{"pin", kOtherPin}}); });
    EXPECT_EQ(wrong.name, kAccessDenied);
    EXPECT_TRUE(mentions(wrong.message, "wrong PIN")) << wrong.message;
    EXPECT_TRUE(locked());
    root().unlock("pkcs11", {{"pin", kPin}});
    expect_unlocked(key);
    expect_pins_nowhere();
}

TEST_F(Pkcs11Daemon, AWrongPinIsTriedOncePerStartThenItStaysLocked) {
    make_token(kToken, kPin, SoftHsm::KeyType::Rsa2048);
    start_daemon(true);
    const auto key = root().create_key("kept", "", {}, {});
    set_credential(kOtherPin);
    restart_daemon();
    expect_locked(key, "wrong PIN");
    // One login, one refusal, no retry loop: the log tells it once.
    const std::string log = daemon().log();
    size_t refusals = 0;
    for (size_t at = log.find("wrong PIN"); at != std::string::npos;
         at = log.find("wrong PIN", at + 1)) {
        ++refusals;
    }
    EXPECT_EQ(refusals, 1u) << log;

    root().unlock("pkcs11", {{"pin", kPin}});
    expect_unlocked(key);
    expect_pins_nowhere();
}

TEST_F(Pkcs11Daemon, ARefusedPinGoesToNoFurtherTokenButUnlockCanNameTheSlot) {
    make_token(kToken, kPin, SoftHsm::KeyType::Rsa2048);
    make_token(kOtherToken, kOtherPin, SoftHsm::KeyType::EcP256);
    start_daemon(true);
    const auto key = root().create_key("kept", "", {}, {});
    const auto other =
        root().add_keyslot("pkcs11", pkcs11_options(token_uri(kOtherToken), kOtherPin)).id;

    // The credential is the second token's PIN: the first token refuses it,
    // and the second is not offered it (a PIN meant elsewhere would cost a
    // try on every token).
    set_credential(kOtherPin);
    restart_daemon();
    expect_locked(key, "wrong PIN");
    EXPECT_TRUE(mentions(lock_reason(), "token=apikeyd-other")) << lock_reason();
    EXPECT_TRUE(mentions(lock_reason(), "needs its PIN")) << lock_reason();

    // Unlock stops at the first refusal too, unless told which slot.
    EXPECT_EQ(bus_error_name([&] {
                  root().unlock("pkcs11", {{"pin", kOtherPin}});
              }),
              kAccessDenied);
    EXPECT_TRUE(locked());
    root().unlock("pkcs11", {{"pin", kOtherPin}, {"keyslot", other}});
    expect_unlocked(key);
    expect_pins_nowhere();
}

TEST_F(Pkcs11Daemon, TokenGoneLocksNamingItAndTheRecoveryKeyUnlocks) {
    make_token(kToken, kPin, SoftHsm::KeyType::Rsa2048);
    start_daemon(true);
    const auto key = root().create_key("kept", "", {}, {});
    auto recovery = root().add_keyslot("recovery", {});
    ASSERT_TRUE(is_recovery_key(recovery.recovery_key));

    // Either slot unlocks: first the token, with its PIN.
    set_credential(kPin);
    restart_daemon();
    expect_unlocked(key);

    hsm().delete_token(kToken);
    restart_daemon();
    expect_locked(key, "token=apikeyd-test");
    EXPECT_TRUE(daemon().running());
    // Then the recovery key, with the token gone.
    root().unlock("recovery", {{"recovery_key", recovery.recovery_key}});
    expect_unlocked(key);
    expect_pins_nowhere();
}

TEST_F(Pkcs11Daemon, AddKeyslotChecksItsOptionsThenSealsToTheToken) {
    make_token(kToken, kPin, SoftHsm::KeyType::EcP256);
    start_daemon(false);
    const auto key = root().create_key("kept", "", {}, {});
    const std::string software = field<std::string>(only_keyslot(), "id");

    struct Refusal {
        Dict options;
        const char* error;
        const char* mentions;
    };
    const Refusal refusals[] = {
        {{{"uri", token_uri(kToken)}}, kInvalidArgument, "'pin'"},
        {{{"pin", kPin}}, kInvalidArgument, "'uri'"},
        {{{"uri", token_uri(kToken)}, {"pin", kPin}, {"tcti", "device:/dev/tpmrm0"}},
         kInvalidArgument,
         "tcti"},
        {pkcs11_options("pkcs11:token=apikeyd-test;id=%01?pin-value=1234", kPin), kInvalidArgument,
         "pin-value"},
        {pkcs11_options("pkcs11:token=apikeyd-test;id=%01?module-path=/tmp/evil.so", kPin),
         kInvalidArgument, "module"},
        {pkcs11_options(
             "pkcs11:token=no-such-token;id=%01?module-path=" + SoftHsm::module_path().string(),
             kPin),
         kNotFound, "no-such-token"},
        {pkcs11_options(token_uri(kToken), kOtherPin), kAccessDenied, "wrong PIN"},
    };
    for (const auto& refusal : refusals) {
        const auto caught = catch_bus_error([&] { root().add_keyslot("pkcs11", refusal.options); });
        EXPECT_EQ(caught.name, refusal.error) << to_json(refusal.options).dump();
        EXPECT_TRUE(mentions(caught.message, refusal.mentions))
            << caught.message << " should mention " << refusal.mentions;
        EXPECT_EQ(caught.message.find("1234"), std::string::npos) << caught.message;
    }
    EXPECT_EQ(keyslots().size(), 1u) << "a refused AddKeyslot added a slot";

    const auto added = root().add_keyslot("pkcs11", pkcs11_options(token_uri(kToken), kPin));
    EXPECT_TRUE(added.recovery_key.empty());
    root().remove_keyslot(software);
    set_credential(kPin);
    restart_daemon();
    expect_unlocked(key);
    EXPECT_EQ(keyslot_ids("pkcs11"), std::vector<std::string>{added.id});
    for (const auto& warning : field<std::vector<std::string>>(status(), "warnings")) {
        EXPECT_FALSE(mentions(warning, "software")) << warning;
    }
    expect_pins_nowhere();
}

TEST_F(Pkcs11Daemon, AnEmptyPinCredentialStopsTheStartWithAClearMessage) {
    make_token(kToken, kPin, SoftHsm::KeyType::EcP256);
    start_daemon(true);
    ASSERT_EQ(daemon().stop(), 0);
    set_credential("");
    EXPECT_THROW(daemon().start(), std::runtime_error);
    EXPECT_TRUE(mentions(daemon().log(), "pkcs11-pin: it is empty")) << daemon().log();
}

TEST_F(Pkcs11Daemon, CliAddsAPkcs11SlotAndUnlocksWithThePinFromStdin) {
    make_token(kToken, kPin, SoftHsm::KeyType::Rsa2048);
    start_daemon(false);
    const auto key = root().create_key("kept", "", {}, {});
    const std::string software = field<std::string>(only_keyslot(), "id");

    // The PIN in the URI is refused before anything is read.
    const auto with_pin_in_uri =
        cli({"keyslot", "add", "pkcs11", "--uri", "pkcs11:token=apikeyd-test?pin-value=1234"},
            std::string(kPin) + "\n");
    EXPECT_EQ(with_pin_in_uri.exit_code, kExitDaemonError) << with_pin_in_uri.describe();
    EXPECT_EQ(with_pin_in_uri.err.find("1234"), std::string::npos) << with_pin_in_uri.describe();

    const auto added = cli({"keyslot", "add", "pkcs11", "--uri", token_uri(kToken), "--json"},
                           std::string(kPin) + "\n");
    ASSERT_EQ(added.exit_code, 0) << added.describe() << daemon().log();
    const auto id = json::parse(added.out, nullptr, false).value("id", "");
    EXPECT_EQ(keyslot_ids("pkcs11"), std::vector<std::string>{id});
    const auto listed = cli({"keyslot", "list"});
    EXPECT_TRUE(mentions(listed.out, "mechanism=rsa-oaep-sha256")) << listed.describe();
    ASSERT_EQ(cli({"keyslot", "remove", software}).exit_code, 0);

    restart_daemon();  // no credential: locked
    ASSERT_TRUE(locked());
    const auto status = cli({"status"});
    EXPECT_TRUE(mentions(status.out, "apikeyctl unlock --pin")) << status.describe();
    const auto unlocked = cli({"unlock", "--pin"}, std::string(kPin) + "\n");
    ASSERT_EQ(unlocked.exit_code, 0) << unlocked.describe() << daemon().log();
    expect_unlocked(key);
    expect_pins_nowhere();
}

}  // namespace
}  // namespace apikeyd::test
