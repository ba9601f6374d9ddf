#include <iostream>
#include <limits>
#include <memory>

#include "cli/args.hpp"
#include "cli/command.hpp"
#include "cli/errors.hpp"
#include "cli/output.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct UpdateArgs {
    std::string id;
    std::string name;
    std::string description;
    std::vector<std::string> scopes;
    std::string access;
    std::string expires_in;
    bool never_expires = false;
    std::string max_uses;
    std::string rate_limit;
    bool json = false;
};

// The access levels `create` offers on a terminal, by name.
std::vector<std::string> scopes_of_access(const std::string& access) {
    if (access == "read") {
        return {"read"};
    }
    if (access == "write") {
        return {"read", "write"};
    }
    return {"*"};
}

int run_update(const CLI::App& command, const UpdateArgs& args) {
    client::Dict changes;
    // What changed, in words, for the line printed afterwards.
    std::vector<std::string> changed;
    if (command.count("--name") != 0) {
        changes.emplace("name", args.name);
        changed.push_back("name");
    }
    if (command.count("--description") != 0) {
        changes.emplace("description", args.description);
        changed.push_back("description");
    }
    if (command.count("--scopes") != 0 || !args.access.empty()) {
        changes.emplace("scopes",
                        args.access.empty() ? args.scopes : scopes_of_access(args.access));
        changed.push_back("scopes");
    }
    if (!args.expires_in.empty()) {
        changes.emplace("expires_in_sec", *parse_duration_seconds(args.expires_in));
        changed.push_back("expiry");
    }
    if (args.never_expires) {
        changes.emplace("never_expires", true);
        changed.push_back("expiry");
    }
    if (!args.max_uses.empty()) {
        changes.emplace("max_uses", *parse_whole_number(args.max_uses));
        changed.push_back("usage limit");
    }
    if (!args.rate_limit.empty()) {
        const uint64_t per_minute = *parse_whole_number(args.rate_limit);
        if (per_minute > std::numeric_limits<uint32_t>::max()) {
            throw UsageError("--rate-limit " + args.rate_limit + " is too large");
        }
        changes.emplace("rate_limit_per_min", static_cast<uint32_t>(per_minute));
        changed.push_back("rate limit");
    }
    if (changes.empty()) {
        throw UsageError(
            "Nothing to change; give at least one of --name, --description, --scopes, --access, "
            "--expires-in, --never-expires, --max-uses and --rate-limit");
    }

    auto daemon = client::Client::connect_system();
    daemon.update_key(args.id, changes);
    if (args.json) {
        print_json(to_json(daemon.get_key(args.id)));
    } else {
        std::cout << "Updated key " << args.id << ": " << join(changed, ", ") << "." << std::endl;
    }
    return 0;
}

}  // namespace

Runner setup_update(CLI::App& command) {
    auto args = std::make_shared<UpdateArgs>();
    command.add_option("ID", args->id, "The key's id, as list shows it")
        ->required()
        ->check(key_id());
    command.add_option("-n,--name", args->name, "A new name")->type_name("NAME");
    command.add_option("-d,--description", args->description, "A new description (\"\" for none)")
        ->type_name("TEXT");
    auto* scopes = command
                       .add_option("-s,--scopes,--scope", args->scopes,
                                   "Replace the scopes (read, models:read; * = all); "
                                   "comma-separated or repeated")
                       ->delimiter(',')
                       ->type_name("SCOPE");
    command
        .add_option("--access", args->access,
                    "Replace the scopes with an access level: read (read), write (read, write) "
                    "or full (*)")
        ->check(CLI::IsMember({"read", "write", "full"}))
        ->type_name("LEVEL")
        ->excludes(scopes);
    auto* expires = command
                        .add_option("-e,--expires-in,--expires", args->expires_in,
                                    "Expire DURATION from now: a number and s, m, h or d (30d)")
                        ->type_name("DURATION")
                        ->check(duration());
    command.add_flag("--never-expires", args->never_expires, "Remove the expiry")
        ->excludes(expires);
    command
        .add_option("--max-uses", args->max_uses,
                    "Let the key verify at most N times in all (0: no limit; uses so far count)")
        ->type_name("N")
        ->check(whole_number());
    command
        .add_option("--rate-limit", args->rate_limit,
                    "Let the key verify at most N times a minute (0: no limit)")
        ->type_name("N")
        ->check(whole_number());
    command.add_flag("--json", args->json, "Print the key's info dictionary afterwards as JSON");
    command.footer(
        "Changes what is given and leaves the rest. Scopes, usage and rate limits apply\n"
        "to issued keys only.\n\n" +
        command.get_footer());
    return [&command, args] { return run_update(command, *args); };
}

}  // namespace apikeyd::cli
