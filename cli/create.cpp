#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/args.hpp"
#include "cli/clipboard.hpp"
#include "cli/command.hpp"
#include "cli/errors.hpp"
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
    bool copy = false;
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

// Asks until the answer is one of `choices` (by number) and returns its
// index. std::nullopt at the end of input.
std::optional<size_t> choose(std::string_view title, const std::vector<std::string>& choices) {
    std::cerr << title << ":\n";
    for (size_t i = 0; i < choices.size(); ++i) {
        std::cerr << "  " << i + 1 << ") " << choices[i] << '\n';
    }
    const std::string question = "Choose [1-" + std::to_string(choices.size()) + "]: ";
    std::string answer;
    while (ask(question, answer)) {
        const auto n = parse_count(answer);
        if (n && *n <= choices.size()) {
            return static_cast<size_t>(*n - 1);
        }
        std::cerr << "Please answer with a number from 1 to " << choices.size() << ".\n";
    }
    return std::nullopt;
}

struct Access {
    const char* label;
    std::vector<std::string> scopes;
};

// Asks for every setting that was not given as an option; false when the
// input ended before all were answered.
bool ask_settings(CreateArgs& args, bool description_given) {
    std::cerr << "A new API key. Ctrl-C or Ctrl-D stops without creating it.\n";
    while (args.name.empty()) {
        if (!ask("Name (what the key is for, e.g. the service or client): ", args.name)) {
            return false;
        }
    }
    if (!description_given && !ask("Description (optional): ", args.description)) {
        return false;
    }
    if (args.scopes.empty()) {
        const Access kAccess[] = {
            {"read only (scope read)", {"read"}},
            {"read and write (scopes read, write)", {"read", "write"}},
            {"full access (scope *)", {"*"}},
        };
        std::vector<std::string> labels;
        for (const auto& access : kAccess) {
            labels.push_back(access.label);
        }
        labels.push_back("custom scopes");
        const auto chosen = choose("Access", labels);
        if (!chosen) {
            return false;
        }
        if (*chosen < std::size(kAccess)) {
            args.scopes = kAccess[*chosen].scopes;
        }
        while (args.scopes.empty()) {
            std::string scopes;
            if (!ask("Scopes, separated by commas or spaces (e.g. models:read, models:write): ",
                     scopes)) {
                return false;
            }
            // A scope holds no white space, so "read, write" and "read write"
            // both mean two scopes.
            std::replace(scopes.begin(), scopes.end(), ',', ' ');
            std::stringstream list(scopes);
            for (std::string scope; list >> scope;) {
                args.scopes.push_back(scope);
            }
        }
    }
    if (args.expires_in.empty()) {
        static const std::pair<const char*, const char*> kExpiry[] = {
            {"never", ""}, {"in 30 days", "30d"}, {"in 90 days", "90d"}, {"in 1 year", "365d"}};
        std::vector<std::string> labels;
        for (const auto& [label, duration] : kExpiry) {
            labels.push_back(label);
        }
        labels.push_back("custom");
        const auto chosen = choose("Expires", labels);
        if (!chosen) {
            return false;
        }
        if (*chosen < std::size(kExpiry)) {
            args.expires_in = kExpiry[*chosen].second;
        } else {
            for (;;) {
                if (!ask("Expires after (a number and s, m, h or d, e.g. 45d): ",
                         args.expires_in)) {
                    return false;
                }
                if (parse_duration_seconds(args.expires_in)) {
                    break;
                }
                std::cerr << "'" << printable(args.expires_in) << "' is not a duration.\n";
            }
        }
    }
    return true;
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
    print_key_once(created.id, created.key,
                   "Created key " + printable(created.id) + " (" + printable(args.name) + ").",
                   args.json);
    if (args.copy) {
        copy_to_clipboard(created.key);
    }
    return 0;
}

// Without a name, a person at a terminal is asked for each setting; a script
// gets the usage error it always got.
int run_create_or_ask(const CLI::App& command, CreateArgs args) {
    if (!args.name.empty()) {
        return run_create(args);
    }
    if (!is_tty(STDIN_FILENO)) {
        throw UsageError(
            "NAME is required (on a terminal, create without a name asks for each setting)");
    }
    if (!ask_settings(args, command.count("--description") != 0)) {
        std::cerr << "Aborted; no key was created." << std::endl;
        return 0;
    }
    return run_create(args);
}

}  // namespace

Runner setup_create(CLI::App& command) {
    auto args = std::make_shared<CreateArgs>();
    command.add_option("NAME", args->name,
                       "What the key is for, e.g. the service or client; without it, on a "
                       "terminal, every setting is asked for");
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
    command.add_flag("--copy", args->copy,
                     "Also put the key on the clipboard, and clear it there after 45 seconds");
    return [&command, args] { return run_create_or_ask(command, *args); };
}

}  // namespace apikeyd::cli
