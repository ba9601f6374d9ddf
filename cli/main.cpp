#include "cli/command.hpp"

namespace {

constexpr apikeyd::cli::Command kCommands[] = {
    {"create", "Create an API key and show it once", apikeyd::cli::setup_create},
    {"list", "List your keys", apikeyd::cli::setup_list},
    {"show", "Show everything about one key", apikeyd::cli::setup_show},
    {"revoke", "Revoke a key for good", apikeyd::cli::setup_revoke},
    {"verify", "Check a key read from standard input", apikeyd::cli::setup_verify},
    {"import", "Keep a secret someone else issued to you", apikeyd::cli::setup_import},
    {"get", "Write an imported secret to standard output", apikeyd::cli::setup_get},
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
