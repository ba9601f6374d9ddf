#include "cli/command.hpp"

namespace apikeyd::cli {
namespace {

constexpr Command kKeyslotCommands[] = {
    {"list", "List the keyslots that seal the master key", setup_keyslot_list},
    {"add", "Seal the master key into one more keyslot (root only)", setup_keyslot_add},
    {"remove", "Remove a keyslot (root only; never the last one)", setup_keyslot_remove},
};

constexpr Command kAddCommands[] = {
    {"tpm2", "A keyslot sealed by a TPM 2.0, optionally bound to PCRs and a PIN",
     setup_keyslot_add_tpm2},
    {"pkcs11", "A keyslot sealed by a key on a PKCS#11 smartcard or token (PIN needed)",
     setup_keyslot_add_pkcs11},
    {"recovery", "A recovery key, shown once, for when the TPM no longer unseals",
     setup_keyslot_add_recovery},
};

}  // namespace

Runner setup_keyslot(CLI::App& command) {
    return add_commands(command, kKeyslotCommands);
}

Runner setup_keyslot_add(CLI::App& command) {
    return add_commands(command, kAddCommands);
}

}  // namespace apikeyd::cli
