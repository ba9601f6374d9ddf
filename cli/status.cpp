#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct StatusArgs {
    bool json = false;
};

bool has_slot(const std::vector<client::Dict>& slots, std::string_view type,
              std::string_view flag = "") {
    return std::any_of(slots.begin(), slots.end(), [&](const client::Dict& slot) {
        return text_field(slot, "type") == type &&
               (flag.empty() || flag_field(slot, std::string(flag)));
    });
}

// Only the ways in this installation has: a tpm2 slot without a PIN has
// nothing a person could type.
std::string unlock_hint(const std::vector<client::Dict>& slots) {
    std::vector<std::string> ways;
    if (has_slot(slots, "recovery")) {
        ways.emplace_back("apikeyctl unlock --recovery-key");
    }
    const bool tpm2_pin = has_slot(slots, "tpm2", "pin");
    const bool pkcs11_pin = has_slot(slots, "pkcs11", "pin");
    if (tpm2_pin && pkcs11_pin) {
        ways.emplace_back("apikeyctl unlock --pin --type tpm2|pkcs11");
    } else if (tpm2_pin || pkcs11_pin) {
        ways.emplace_back("apikeyctl unlock --pin");
    }
    if (ways.empty()) {
        return "";
    }
    return join(ways, ", or ") + " (as root)";
}

int run_status(const StatusArgs& args) {
    auto daemon = client::Client::connect_system();
    const client::Dict status = daemon.get_status();
    if (args.json) {
        print_json(to_json(status));
        return 0;
    }

    const bool locked = flag_field(status, "locked");
    const auto keyslots = dicts_field(status, "keyslots");
    Fields fields = {
        {"Version", text_field(status, "version")},
        {"State", locked ? "locked" : "unlocked"},
    };
    if (locked) {
        const std::string reason = text_field(status, "lock_reason");
        fields.emplace_back("Lock reason", reason.empty() ? "(none given)" : reason);
        if (const std::string hint = unlock_hint(keyslots); !hint.empty()) {
            fields.emplace_back("To unlock", hint);
        }
    }
    fields.emplace_back("Keys", std::to_string(number_field(status, "keys")));
    fields.emplace_back("Keyslots", std::to_string(keyslots.size()));
    print_fields(std::cout, fields);
    if (!keyslots.empty()) {
        print_keyslots(std::cout, keyslots, "  ");
    }
    for (const auto& warning : list_field(status, "warnings")) {
        std::cout << "Warning: " << printable(warning) << '\n';
    }
    return 0;
}

}  // namespace

Runner setup_status(CLI::App& command) {
    auto args = std::make_shared<StatusArgs>();
    command.add_flag("--json", args->json, "Print the status dictionary as JSON");
    return [args] { return run_status(*args); };
}

}  // namespace apikeyd::cli
