#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/errors.hpp"
#include "cli/output.hpp"
#include "cli/terminal.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

// Far above a recovery key (39 characters) or a PIN apikeyd accepts (256
// bytes); only keeps a stray file on stdin from being read whole.
constexpr size_t kMaxCredentialLine = 4096;

struct UnlockArgs {
    bool recovery_key = false;
    bool pin = false;
    std::string type;     // for --pin: tpm2 or pkcs11; empty = whichever takes a PIN
    std::string keyslot;  // only this slot; empty = every slot of the type, in order
};

struct Way {
    const char* type;        // the keyslot type apikeyd tries
    const char* credential;  // the credentials entry
    const char* prompt;
    const char* what;
};

constexpr Way kRecoveryKey = {"recovery", "recovery_key", "Recovery key: ", "recovery key"};
constexpr Way kTpm2Pin = {"tpm2", "pin", "PIN: ", "PIN"};
constexpr Way kPkcs11Pin = {"pkcs11", "pin", "PIN of the token: ", "PIN"};

// A PIN is for the slots that take one; when both kinds do, the person says
// which, since a PIN sent to the wrong kind costs that hardware a try.
const Way& pin_way(const client::Dict& status, const std::string& type) {
    if (type == kTpm2Pin.type) {
        return kTpm2Pin;
    }
    if (type == kPkcs11Pin.type) {
        return kPkcs11Pin;
    }
    if (!type.empty()) {
        throw UsageError("A " + type + " keyslot takes no PIN");
    }
    bool tpm2 = false;
    bool pkcs11 = false;
    for (const auto& slot : dicts_field(status, "keyslots")) {
        if (flag_field(slot, "pin")) {
            tpm2 = tpm2 || text_field(slot, "type") == kTpm2Pin.type;
            pkcs11 = pkcs11 || text_field(slot, "type") == kPkcs11Pin.type;
        }
    }
    if (tpm2 && pkcs11) {
        throw UsageError(
            "Both a tpm2 and a pkcs11 keyslot take a PIN; say which with --type tpm2 or "
            "--type pkcs11");
    }
    if (!tpm2 && !pkcs11) {
        throw UsageError("No keyslot takes a PIN; unlock with --recovery-key");
    }
    return tpm2 ? kTpm2Pin : kPkcs11Pin;
}

int run_unlock(const CLI::App& command, const UnlockArgs& args) {
    // Whatever was given is not repeated: it may well be the recovery key.
    if (command.remaining_size() != 0) {
        throw UsageError(
            "unlock takes no arguments; the recovery key or PIN is read from the terminal or "
            "standard input, never from the command line");
    }
    if (args.recovery_key == args.pin) {
        throw UsageError(args.pin ? "Give one of --recovery-key and --pin, not both"
                                  : "Say how to unlock: --recovery-key or --pin");
    }
    if (!args.type.empty() && !args.pin) {
        throw UsageError("--type goes with --pin");
    }

    auto daemon = client::Client::connect_system();
    const client::Dict status = daemon.get_status();
    // Asking for a recovery key that cannot be used would only teach people
    // to type it where it is not needed.
    if (!flag_field(status, "locked")) {
        std::cout << "apikeyd is not locked; nothing to do." << std::endl;
        return 0;
    }
    std::string type = args.type;
    if (!args.keyslot.empty() && args.pin && type.empty()) {
        for (const auto& slot : dicts_field(status, "keyslots")) {
            if (text_field(slot, "id") == args.keyslot) {
                type = text_field(slot, "type");
            }
        }
    }
    const Way& way = args.recovery_key ? kRecoveryKey : pin_way(status, type);
    SecretText secret;
    read_secret_line(way.prompt, secret, kMaxCredentialLine, way.what);
    if (secret.empty()) {
        throw UsageError("No " + std::string(way.what) + " given");
    }
    client::Dict credentials;
    const auto wipe_secret = put_secret(credentials, way.credential, secret);
    if (!args.keyslot.empty()) {
        credentials.emplace("keyslot", args.keyslot);
    }
    daemon.unlock(way.type, credentials);
    std::cout << "apikeyd is unlocked." << std::endl;
    return 0;
}

}  // namespace

Runner setup_unlock(CLI::App& command) {
    auto args = std::make_shared<UnlockArgs>();
    // Without disable_flag_override, "--recovery-key=KEY" would be refused
    // with a message that repeats KEY.
    command
        .add_flag("--recovery-key", args->recovery_key,
                  "Unlock with the recovery key of a recovery keyslot")
        ->disable_flag_override();
    command.add_flag("--pin", args->pin, "Unlock with the PIN of a tpm2 or pkcs11 keyslot")
        ->disable_flag_override();
    command
        .add_option("--type", args->type,
                    "With --pin: the kind of keyslot the PIN is for, when both kinds take one")
        ->check(CLI::IsMember({"tpm2", "pkcs11"}));
    command
        .add_option("--keyslot", args->keyslot,
                    "Try only this keyslot (see 'apikeyctl keyslot list'); by default the slots "
                    "are tried in order and a refused PIN ends the attempt")
        ->type_name("ID");
    command.allow_extras();
    command.footer(
        "Give exactly one of --recovery-key and --pin. The secret is asked for without\n"
        "echo on a terminal, else it is the first line of standard input. root only.\n\n" +
        command.get_footer());
    return [&command, args] { return run_unlock(command, *args); };
}

}  // namespace apikeyd::cli
