#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/args.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/secret.hpp"
#include "cli/terminal.hpp"
#include "common/encoding.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

// apikeyd's own limit for the data of Sign.
constexpr size_t kMaxSignData = 16 * 1024 * 1024;

struct SignArgs {
    std::string id;
    std::string algorithm = "hmac-sha256";
    bool base64 = false;
    bool hex = false;
    bool raw = false;
    bool json = false;
};

std::string_view text_of(const std::vector<uint8_t>& bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string hex_of(const std::vector<uint8_t>& bytes) {
    std::string hex;
    encoding::append_hex(hex, text_of(bytes));
    return hex;
}

std::string base64_of(const std::vector<uint8_t>& bytes) {
    std::string base64;
    encoding::append_base64(base64, text_of(bytes));
    return base64;
}

int run_sign(const SignArgs& args) {
    // The data may be as private as the secret (a request body, a token), so
    // it is held in a buffer that is wiped.
    SecretBytes data;
    read_all(STDIN_FILENO, data, kMaxSignData, "data on standard input");

    auto daemon = client::Client::connect_system();
    const std::vector<uint8_t> mac = daemon.sign(args.id, args.algorithm, data.bytes());
    if (args.json) {
        print_json({{"id", args.id},
                    {"algorithm", args.algorithm},
                    {"hex", hex_of(mac)},
                    {"base64", base64_of(mac)}});
    } else if (args.raw) {
        write_all(STDOUT_FILENO, {reinterpret_cast<const char*>(mac.data()), mac.size()});
    } else if (args.base64) {
        std::cout << base64_of(mac) << std::endl;
    } else {
        std::cout << hex_of(mac) << std::endl;
    }
    return 0;
}

}  // namespace

Runner setup_sign(CLI::App& command) {
    auto args = std::make_shared<SignArgs>();
    command.add_option("ID", args->id, "The imported secret's id, as list shows it")
        ->required()
        ->check(key_id());
    command
        .add_option("-a,--algorithm", args->algorithm,
                    "The MAC to compute (default hmac-sha256, the one apikeyd offers)")
        ->type_name("ALGORITHM");
    auto* base64 = command.add_flag("--base64", args->base64, "Print the MAC in Base64");
    auto* hex = command.add_flag("--hex", args->hex, "Print the MAC in hex (the default)");
    auto* raw = command.add_flag("--raw", args->raw, "Write the MAC's bytes as they are");
    auto* json = command.add_flag("--json", args->json,
                                  "Print {\"id\", \"algorithm\", \"hex\", \"base64\"}");
    base64->excludes(hex)->excludes(raw)->excludes(json);
    hex->excludes(raw)->excludes(json);
    raw->excludes(json);
    command.footer(
        "Computes the MAC of standard input (at most 16 MiB) with an imported secret,\n"
        "inside apikeyd: the secret never leaves it. Counts as a use of the secret.\n\n" +
        command.get_footer());
    return [args] { return run_sign(*args); };
}

}  // namespace apikeyd::cli
