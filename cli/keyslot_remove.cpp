#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/args.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/terminal.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct KeyslotRemoveArgs {
    std::string id;
    bool yes = false;
};

// Shows the slot as apikeyd lists it, so that the one removed is the one
// meant. A slot that is not listed is left to apikeyd to refuse.
bool confirmed(client::Client& daemon, const std::string& id) {
    const uint64_t now = now_usec();
    for (const auto& slot : dicts_field(daemon.get_status(), "keyslots")) {
        if (text_field(slot, "id") != id) {
            continue;
        }
        std::cerr << "This keyslot will be removed:\n";
        print_fields(std::cerr,
                     {
                         {"ID", id},
                         {"Type", text_field(slot, "type")},
                         {"Created", full_time(number_field(slot, "created_usec"), now)},
                         {"Details", keyslot_details(slot)},
                     },
                     "  ");
        std::cerr << "The master key can no longer be unlocked with it.\n";
        return confirm("Remove it?");
    }
    return true;
}

int run_keyslot_remove(const KeyslotRemoveArgs& args) {
    auto daemon = client::Client::connect_system();
    if (!args.yes && is_tty(STDIN_FILENO) && !confirmed(daemon, args.id)) {
        std::cerr << "Aborted; no keyslot was removed." << std::endl;
        return 0;
    }
    daemon.remove_keyslot(args.id);
    std::cout << "Removed keyslot " << args.id << "." << std::endl;
    return 0;
}

}  // namespace

Runner setup_keyslot_remove(CLI::App& command) {
    auto args = std::make_shared<KeyslotRemoveArgs>();
    command.add_option("ID", args->id, "The keyslot's id, as keyslot list shows it")
        ->required()
        ->check(keyslot_id());
    command.add_flag("-y,--yes", args->yes, "Do not ask for confirmation on a terminal");
    return [args] { return run_keyslot_remove(*args); };
}

}  // namespace apikeyd::cli
