#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/terminal.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct AddRecoveryArgs {
    bool json = false;
};

// Like a created key, the recovery key goes out once, with write(2) from a
// wiped buffer, and is the only thing on stdout.
void print_recovery_key(const client::AddedKeyslot& added, const AddRecoveryArgs& args) {
    SecretText out;
    if (args.json) {
        out.append("{\n  \"id\": ");
        append_json_string(out, added.id);
        out.append(",\n  \"recovery_key\": ");
        append_json_string(out, added.recovery_key);
        out.append("\n}\n");
        write_all(STDOUT_FILENO, out.view());
        return;
    }
    std::cerr << "Added recovery keyslot " << printable(added.id) << "." << std::endl;
    out.append(added.recovery_key);
    out.append("\n");
    write_all(STDOUT_FILENO, out.view());
    std::cerr << "Write this recovery key down and keep it somewhere safe; it will not be shown "
                 "again. It unlocks apikeyd if the TPM is cleared or its PCRs change."
              << std::endl;
}

int run_add_recovery(const AddRecoveryArgs& args) {
    auto daemon = client::Client::connect_system();
    client::AddedKeyslot added = daemon.add_keyslot("recovery", {});
    WipeOnExit wipe_key(added.recovery_key);
    print_recovery_key(added, args);
    return 0;
}

}  // namespace

Runner setup_keyslot_add_recovery(CLI::App& command) {
    auto args = std::make_shared<AddRecoveryArgs>();
    command.add_flag("--json", args->json, "Print {\"id\", \"recovery_key\"} as JSON");
    command.footer(
        "The recovery key is the only thing written to standard output, and it is shown\n"
        "this once: apikeyd keeps only what it takes to check it.\n\n" +
        command.get_footer());
    return [args] { return run_add_recovery(*args); };
}

}  // namespace apikeyd::cli
