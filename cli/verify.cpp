#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/errors.hpp"
#include "cli/output.hpp"
#include "cli/terminal.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

// Far above any key text (apikeyd refuses more than 256 characters itself);
// only keeps a stray file on stdin from being read whole.
constexpr size_t kMaxKeyLine = 4096;

struct VerifyArgs {
    std::string scope;
    bool json = false;
};

int run_verify(const CLI::App& command, const VerifyArgs& args) {
    // Whatever was given is not repeated: it may well be a key, and an argument
    // is already visible to other users in the process list.
    if (command.remaining_size() != 0) {
        throw UsageError(
            "verify takes no arguments; it reads the key from standard input, never from the "
            "command line");
    }
    SecretText key;
    read_secret_line("API key: ", key, kMaxKeyLine, "key");
    if (key.empty()) {
        throw UsageError("No key given");
    }

    auto daemon = client::Client::connect_system();
    const client::Verification result = daemon.verify_key(key.bytes(), args.scope);

    if (args.json) {
        print_json({{"valid", result.valid}, {"id", result.id}, {"info", to_json(result.info)}});
    } else if (result.valid) {
        std::cout << "valid: " << printable(result.id) << " ("
                  << printable(text_field(result.info, "name")) << ")" << std::endl;
    } else {
        const std::string reason = text_field(result.info, "reason");
        std::cout << (reason.empty() ? "invalid" : "invalid: " + printable(reason)) << std::endl;
    }
    return result.valid ? kExitOk : kExitInvalid;
}

}  // namespace

Runner setup_verify(CLI::App& command) {
    auto args = std::make_shared<VerifyArgs>();
    command
        .add_option("-s,--scope", args->scope,
                    "Also require that the key grants SCOPE (e.g. models:read)")
        ->type_name("SCOPE");
    command.add_flag("--json", args->json, "Print {\"valid\", \"id\", \"info\"} as JSON");
    command.allow_extras();
    command.footer(
        "The key is the first line of standard input; on a terminal it is asked for\n"
        "without echo.\n\n" +
        command.get_footer());
    return [&command, args] { return run_verify(command, *args); };
}

}  // namespace apikeyd::cli
