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
};

struct Way {
    const char* type;        // the keyslot type apikeyd tries
    const char* credential;  // the credentials entry
    const char* prompt;
    const char* what;
};

constexpr Way kRecoveryKey = {"recovery", "recovery_key", "Recovery key: ", "recovery key"};
constexpr Way kPin = {"tpm2", "pin", "PIN: ", "PIN"};

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
    const Way& way = args.recovery_key ? kRecoveryKey : kPin;

    auto daemon = client::Client::connect_system();
    // Asking for a recovery key that cannot be used would only teach people
    // to type it where it is not needed.
    if (!flag_field(daemon.get_status(), "locked")) {
        std::cout << "apikeyd is not locked; nothing to do." << std::endl;
        return 0;
    }
    SecretText secret;
    read_secret_line(way.prompt, secret, kMaxCredentialLine, way.what);
    if (secret.empty()) {
        throw UsageError("No " + std::string(way.what) + " given");
    }
    client::Dict credentials;
    const auto wipe_secret = put_secret(credentials, way.credential, secret);
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
    command.add_flag("--pin", args->pin, "Unlock with the PIN of a tpm2 keyslot")
        ->disable_flag_override();
    command.allow_extras();
    command.footer(
        "Give exactly one of --recovery-key and --pin. The secret is asked for without\n"
        "echo on a terminal, else it is the first line of standard input. root only.\n\n" +
        command.get_footer());
    return [&command, args] { return run_unlock(command, *args); };
}

}  // namespace apikeyd::cli
