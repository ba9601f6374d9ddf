#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct KeyslotListArgs {
    bool json = false;
};

int run_keyslot_list(const KeyslotListArgs& args) {
    auto daemon = client::Client::connect_system();
    const auto keyslots = dicts_field(daemon.get_status(), "keyslots");
    if (args.json) {
        auto array = nlohmann::json::array();
        for (const auto& slot : keyslots) {
            array.push_back(to_json(slot));
        }
        print_json(array);
        return 0;
    }
    if (keyslots.empty()) {
        std::cout << "No keyslots.\n";
        return 0;
    }
    print_keyslots(std::cout, keyslots);
    return 0;
}

}  // namespace

Runner setup_keyslot_list(CLI::App& command) {
    auto args = std::make_shared<KeyslotListArgs>();
    command.add_flag("--json", args->json, "Print a JSON array of the keyslots' dictionaries");
    return [args] { return run_keyslot_list(*args); };
}

}  // namespace apikeyd::cli
