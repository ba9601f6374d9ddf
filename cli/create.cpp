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

struct CreateArgs {
    std::string name;
    std::string description;
    std::vector<std::string> scopes;
    std::string expires_in;
    std::string max_uses;
    std::string prefix;
    bool yes = false;
    bool json = false;
};

std::string access_text(const std::vector<std::string>& scopes) {
    if (scopes.empty()) {
        return "(no scopes)";
    }
    if (scopes.size() == 1 && scopes.front() == "*") {
        return "full access (*)";
    }
    return join(scopes, ", ");
}

bool confirmed(const CreateArgs& args, const std::optional<uint64_t>& expires_in_sec) {
    std::string expires = "never";
    if (expires_in_sec) {
        expires = "in " + duration_text(*expires_in_sec) + " (" +
                  absolute_time(now_usec() + *expires_in_sec * 1'000'000) + ")";
    }
    Fields fields = {
        {"Name", args.name},
        {"Description", args.description.empty() ? "(none)" : args.description},
        {"Access", access_text(args.scopes)},
        {"Expires", expires},
        {"Max uses", args.max_uses.empty() ? "unlimited" : args.max_uses},
    };
    if (!args.prefix.empty()) {
        fields.emplace_back("Prefix", args.prefix);
    }
    std::cerr << "A new API key will be created:\n";
    print_fields(std::cerr, fields, "  ");
    return confirm("Create it?");
}

// The key is written with write(2) from a wiped buffer: it is the one time
// it exists outside apikeyd.
void print_created(const client::CreatedKey& created, const CreateArgs& args) {
    SecretText out;
    if (args.json) {
        out.append("{\n  \"id\": ");
        append_json_string(out, created.id);
        out.append(",\n  \"key\": ");
        append_json_string(out, created.key);
        out.append("\n}\n");
        write_all(STDOUT_FILENO, out.view());
        return;
    }
    std::cerr << "Created key " << printable(created.id) << " (" << printable(args.name) << ")."
              << std::endl;
    out.append(created.key);
    out.append("\n");
    write_all(STDOUT_FILENO, out.view());
    std::cerr << "Copy this key now. It will not be shown again." << std::endl;
}

int run_create(const CreateArgs& args) {
    client::Dict options;
    std::optional<uint64_t> expires_in_sec;
    if (!args.expires_in.empty()) {
        expires_in_sec = parse_duration_seconds(args.expires_in);
        options.emplace("expires_in_sec", *expires_in_sec);
    }
    if (!args.max_uses.empty()) {
        options.emplace("max_uses", *parse_count(args.max_uses));
    }
    if (!args.prefix.empty()) {
        options.emplace("prefix", args.prefix);
    }

    if (!args.yes && is_tty(STDIN_FILENO) && !confirmed(args, expires_in_sec)) {
        std::cerr << "Aborted; no key was created." << std::endl;
        return 0;
    }

    auto daemon = client::Client::connect_system();
    client::CreatedKey created =
        daemon.create_key(args.name, args.description, args.scopes, options);
    WipeOnExit wipe_key(created.key);
    print_created(created, args);
    return 0;
}

}  // namespace

Runner setup_create(CLI::App& command) {
    auto args = std::make_shared<CreateArgs>();
    command.add_option("NAME", args->name, "What the key is for, e.g. the service or client")
        ->required();
    command.add_option("-d,--description", args->description, "A longer description");
    command
        .add_option("-s,--scope", args->scopes,
                    "A scope to grant (read, models:read; * = all); repeatable, comma-separated")
        ->delimiter(',')
        ->type_name("SCOPE");
    command
        .add_option("-e,--expires-in", args->expires_in,
                    "Expire after DURATION: a number and s, m, h or d (30d)")
        ->type_name("DURATION")
        ->check(duration());
    command
        .add_option("--prefix", args->prefix, "The key text's prefix (1-16 of a-z 0-9; default ak)")
        ->type_name("PREFIX");
    command
        .add_option("--max-uses", args->max_uses,
                    "Let the key verify at most N times (default: no limit)")
        ->type_name("N")
        ->check(positive_count());
    command.add_flag("-y,--yes", args->yes, "Do not ask for confirmation on a terminal");
    command.add_flag("--json", args->json, "Print {\"id\", \"key\"} as JSON");
    return [args] { return run_create(*args); };
}

}  // namespace apikeyd::cli
