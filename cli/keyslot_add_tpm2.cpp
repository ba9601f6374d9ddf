#include <unistd.h>

#include <memory>

#include "cli/command.hpp"
#include "cli/errors.hpp"
#include "cli/keyslot_added.hpp"
#include "cli/secret.hpp"
#include "cli/terminal.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

// Above what apikeyd accepts (256 bytes), so that apikeyd says the limit;
// this only bounds the reading.

struct AddTpm2Args {
    std::vector<uint32_t> pcrs;
    bool pin = false;
    std::string tcti;
    bool json = false;
};

void read_new_pin(SecretText& pin) {
    if (!is_tty(STDIN_FILENO)) {
        read_first_line(STDIN_FILENO, pin, kMaxPinInput, "PIN on standard input");
    } else {
        prompt_hidden("PIN for the new tpm2 keyslot: ", pin, kMaxPinInput, "PIN");
        SecretText again;
        prompt_hidden("Repeat the PIN: ", again, kMaxPinInput, "PIN");
        if (pin.view() != again.view()) {
            throw UsageError("The PINs do not match; no keyslot was added");
        }
    }
    // apikeyd reads an empty PIN as "no PIN": refuse it rather than enrol
    // a slot without the PIN that was asked for.
    if (pin.empty()) {
        throw UsageError("The PIN is empty");
    }
}

int run_add_tpm2(const CLI::App& command, const AddTpm2Args& args) {
    // A PIN given as an argument would be in the process list; it is not repeated.
    if (command.remaining_size() != 0) {
        throw UsageError(
            "keyslot add tpm2 takes no arguments; with --pin the PIN is read from the terminal "
            "or standard input, never from the command line");
    }
    auto daemon = client::Client::connect_system();
    SecretText pin;
    if (args.pin) {
        read_new_pin(pin);
    }
    client::Dict options;
    if (!args.pcrs.empty()) {
        options.emplace("pcrs", args.pcrs);
    }
    if (!args.tcti.empty()) {
        options.emplace("tcti", args.tcti);
    }
    client::AddedKeyslot added;
    if (args.pin) {
        const auto wipe_pin = put_secret(options, "pin", pin);
        added = daemon.add_keyslot("tpm2", options);
    } else {
        added = daemon.add_keyslot("tpm2", options);
    }
    print_added_keyslot(daemon, "tpm2", added.id, args.json);
    return 0;
}

}  // namespace

Runner setup_keyslot_add_tpm2(CLI::App& command) {
    auto args = std::make_shared<AddTpm2Args>();
    command
        .add_option("--pcrs", args->pcrs,
                    "Bind to the current values of these sha256 PCRs (0-23), e.g. 7,16; "
                    "default: none")
        ->delimiter(',')
        ->type_name("PCR,...")
        ->check(CLI::Range(0u, 23u).description(""));
    // No "--pin=PIN": the PIN never comes from the command line.
    command
        .add_flag("--pin", args->pin,
                  "Also require a PIN, asked for twice on a terminal or read as the first line of "
                  "standard input")
        ->disable_flag_override();
    command
        .add_option("--tcti", args->tcti,
                    "The TPM to seal with, e.g. device:/dev/tpmrm0 or "
                    "swtpm:host=127.0.0.1,port=2321 (default: apikeyd's default device)")
        ->type_name("TCTI");
    command.add_flag("--json", args->json, "Print {\"id\"} as JSON");
    command.allow_extras();
    return [&command, args] { return run_add_tpm2(command, *args); };
}

}  // namespace apikeyd::cli
