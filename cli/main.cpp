#include "cli/command.hpp"

namespace {

constexpr apikeyd::cli::Command kCommands[] = {
    {"create", "Create an API key and show it once", apikeyd::cli::setup_create},
    {"list", "List your keys", apikeyd::cli::setup_list},
    {"show", "Show everything about one key", apikeyd::cli::setup_show},
    {"update", "Change a key's name, description, scopes, expiry or limits",
     apikeyd::cli::setup_update},
    {"rotate", "Give a key new text, the old one working for a grace period",
     apikeyd::cli::setup_rotate},
    {"revoke", "Revoke a key for good", apikeyd::cli::setup_revoke},
    {"verify", "Check a key read from standard input", apikeyd::cli::setup_verify},
    {"usage", "Show a key's recent events and its uses per day", apikeyd::cli::setup_usage},
    {"watch", "Print keys being created, changed and revoked as it happens",
     apikeyd::cli::setup_watch},
    {"import", "Keep a secret someone else issued to you", apikeyd::cli::setup_import},
    {"get", "Write an imported secret to standard output", apikeyd::cli::setup_get},
    {"run", "Run a command with imported secrets in its environment", apikeyd::cli::setup_run},
    {"sign", "Compute an HMAC of standard input with an imported secret", apikeyd::cli::setup_sign},
    {"scan", "Find leaked key text in files, and revoke what is live", apikeyd::cli::setup_scan},
    {"status", "Show whether apikeyd is unlocked, its keyslots and warnings",
     apikeyd::cli::setup_status},
    {"keyslot", "List, add and remove the keyslots that seal the master key",
     apikeyd::cli::setup_keyslot},
    {"unlock", "Unlock a locked apikeyd with the recovery key or a PIN (root only)",
     apikeyd::cli::setup_unlock},
};

}  // namespace

int main(int argc, char** argv) {
    return apikeyd::cli::run(argc, argv, kCommands);
}
