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

struct AddPkcs11Args {
    std::string uri;
    bool json = false;
};

int run_add_pkcs11(const CLI::App& command, const AddPkcs11Args& args) {
    // A PIN given as an argument would be in the process list; it is not repeated.
    if (command.remaining_size() != 0) {
        throw UsageError(
            "keyslot add pkcs11 takes no arguments besides --uri; the PIN is read from the "
            "terminal or standard input, never from the command line");
    }
    auto daemon = client::Client::connect_system();
    // The token has its PIN already, so it is asked for once: a wrong one
    // fails the enrolment (and costs the token one try), it makes no slot.
    SecretText pin;
    read_secret_line("PIN of the token: ", pin, kMaxPinInput, "PIN");
    if (pin.empty()) {
        throw UsageError("The PIN is empty");
    }
    client::Dict options{{"uri", args.uri}};
    const auto wipe_pin = put_secret(options, "pin", pin);
    const client::AddedKeyslot added = daemon.add_keyslot("pkcs11", options);
    print_added_keyslot(daemon, "pkcs11", added.id, args.json);
    return 0;
}

}  // namespace

Runner setup_keyslot_add_pkcs11(CLI::App& command) {
    auto args = std::make_shared<AddPkcs11Args>();
    command
        .add_option("--uri", args->uri,
                    "The token key to seal with, as an RFC 7512 URI, e.g. "
                    "'pkcs11:token=PIV%20Card;id=%03' (a PIN in the URI is refused)")
        ->type_name("URI")
        ->required();
    command.add_flag("--json", args->json, "Print {\"id\"} as JSON");
    command.allow_extras();
    command.footer(
        "The token's user PIN is asked for without echo on a terminal, else it is the first\n"
        "line of standard input. apikeyd logs in once to prove it can unwrap the master key.\n"
        "root only.\n\n" +
        command.get_footer());
    return [&command, args] { return run_add_pkcs11(command, *args); };
}

}  // namespace apikeyd::cli
