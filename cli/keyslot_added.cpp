#include "cli/keyslot_added.hpp"

#include <iostream>

#include "cli/output.hpp"

namespace apikeyd::cli {

void print_added_keyslot(client::Client& daemon, std::string_view type, const std::string& id,
                         bool json) {
    if (json) {
        print_json({{"id", id}});
        return;
    }
    std::string details = "-";
    for (const auto& slot : dicts_field(daemon.get_status(), "keyslots")) {
        if (text_field(slot, "id") == id) {
            details = keyslot_details(slot);
        }
    }
    std::cout << "Added " << type << " keyslot " << printable(id) << " (" << printable(details)
              << ")." << std::endl;
}

}  // namespace apikeyd::cli
