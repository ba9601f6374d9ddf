#include <pwd.h>

#include <iostream>
#include <memory>
#include <set>

#include "cli/args.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct ShowArgs {
    std::string id;
    bool json = false;
};

std::string owner_text(uint64_t uid) {
    passwd entry{};
    passwd* found = nullptr;
    char buffer[4096];
    const auto id = static_cast<uid_t>(uid);
    if (getpwuid_r(id, &entry, buffer, sizeof buffer, &found) == 0 && found != nullptr) {
        return std::to_string(uid) + " (" + found->pw_name + ")";
    }
    return std::to_string(uid);
}

std::string uses_text(const client::Dict& info) {
    const uint64_t max = number_field(info, "max_uses");
    const std::string count = std::to_string(number_field(info, "use_count"));
    return max == 0 ? count + " (no limit)" : count + " of " + std::to_string(max);
}

Fields info_fields(const client::Dict& info) {
    const uint64_t now = now_usec();
    const auto scopes = list_field(info, "scopes");
    const auto description = text_field(info, "description");
    Fields fields = {
        {"ID", text_field(info, "id")},
        {"Name", text_field(info, "name")},
        {"Description", description.empty() ? "(none)" : description},
        {"Kind", text_field(info, "kind")},
        {"Owner", owner_text(number_field(info, "owner_uid"))},
        {"State", text_field(info, "state")},
        {"Scopes", scopes.empty() ? "(none)" : join(scopes, ", ")},
        {"Created", full_time(number_field(info, "created_usec"), now)},
        {"Expires", full_time(number_field(info, "expires_usec"), now)},
        {"Last used", full_time(number_field(info, "last_used_usec"), now)},
        {"Uses", uses_text(info)},
    };
    if (const uint64_t revoked = number_field(info, "revoked_usec"); revoked != 0) {
        fields.emplace_back("Revoked", full_time(revoked, now));
        const auto reason = text_field(info, "revoke_reason");
        fields.emplace_back("Revoke reason", reason.empty() ? "(none given)" : reason);
    }
    // Fields of a newer daemon are shown as they come rather than hidden.
    static const std::set<std::string> kShown = {
        "id",        "name",     "description",  "kind",         "owner_uid",
        "state",     "scopes",   "created_usec", "expires_usec", "last_used_usec",
        "use_count", "max_uses", "revoked_usec", "revoke_reason"};
    for (const auto& [name, value] : info) {
        if (!kShown.contains(name)) {
            fields.emplace_back(name, to_json(value).dump());
        }
    }
    return fields;
}

int run_show(const ShowArgs& args) {
    auto daemon = client::Client::connect_system();
    const client::Dict info = daemon.get_key(args.id);
    if (args.json) {
        print_json(to_json(info));
    } else {
        print_fields(std::cout, info_fields(info));
    }
    return 0;
}

}  // namespace

Runner setup_show(CLI::App& command) {
    auto args = std::make_shared<ShowArgs>();
    command.add_option("ID", args->id, "The key's id, as list shows it")
        ->required()
        ->check(key_id());
    command.add_flag("--json", args->json, "Print the key's info dictionary as JSON");
    return [args] { return run_show(*args); };
}

}  // namespace apikeyd::cli
