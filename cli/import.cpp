#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/errors.hpp"
#include "cli/output.hpp"
#include "cli/terminal.hpp"
#include "common/unique_fd.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

// Well above what apikeyd accepts (64 KiB), so that apikeyd, not the client,
// is the one that says how much is allowed; this only bounds the reading.
constexpr size_t kMaxSecretInput = 1024 * 1024;

struct ImportArgs {
    std::string name;
    std::string description;
    std::string from_file;
    bool json = false;
};

void read_secret(const ImportArgs& args, SecretBytes& secret) {
    if (!args.from_file.empty()) {
        const int fd = ::open(args.from_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            throw UsageError("Cannot open '" + printable(args.from_file) +
                             "': " + std::strerror(errno));
        }
        UniqueFd file(fd);
        read_all(file.get(), secret, kMaxSecretInput, "file '" + printable(args.from_file) + "'");
        return;
    }
    if (is_tty(STDIN_FILENO)) {
        prompt_hidden("Secret for '" + printable(args.name) + "': ", secret, kMaxSecretInput,
                      "secret");
        return;
    }
    read_all(STDIN_FILENO, secret, kMaxSecretInput, "secret on standard input");
    // `echo "$TOKEN" | apikeyctl import` adds exactly one newline; a secret
    // that really ends in a newline can come from --from-file.
    if (secret.ends_with('\n')) {
        secret.pop_back();
    }
}

int run_import(const CLI::App& command, const ImportArgs& args) {
    if (command.remaining_size() != 0) {
        throw UsageError(
            "import takes one argument, NAME; the secret is read from standard input or "
            "--from-file, never from the command line");
    }
    SecretBytes secret;
    read_secret(args, secret);
    if (secret.empty()) {
        throw UsageError("The secret is empty");
    }

    auto daemon = client::Client::connect_system();
    const std::string id = daemon.import_secret(args.name, args.description, secret.bytes(), {});
    if (args.json) {
        print_json({{"id", id}});
    } else {
        std::cout << "Imported secret " << printable(id) << " (" << printable(args.name) << ")."
                  << std::endl;
    }
    return 0;
}

}  // namespace

Runner setup_import(CLI::App& command) {
    auto args = std::make_shared<ImportArgs>();
    command.add_option("NAME", args->name, "What the secret is, e.g. openai or github-ci")
        ->required();
    command.add_option("-d,--description", args->description, "A longer description");
    command
        .add_option("-f,--from-file", args->from_file,
                    "Read the secret from PATH, byte for byte, instead of standard input")
        ->type_name("PATH");
    command.add_flag("--json", args->json, "Print {\"id\"} as JSON");
    command.allow_extras();
    command.footer(
        "Without --from-file the secret is standard input, less one trailing newline;\n"
        "on a terminal it is asked for without echo.\n\n" +
        command.get_footer());
    return [&command, args] { return run_import(command, *args); };
}

}  // namespace apikeyd::cli
