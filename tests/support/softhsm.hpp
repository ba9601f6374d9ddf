#pragma once
// A SoftHSM2 token store for one test: its own softhsm2.conf and token
// directory in a temp dir, with SOFTHSM2_CONF pointing at it in this process
// (SoftHSM reads it at every C_Initialize, so each module load sees the
// store as it is then). Tokens and keys are made by SoftHSM's and OpenSC's
// own tools, as an administrator would. No PKCS#11 library here: any test
// binary can use it.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace apikeyd::test {

class SoftHsm {
  public:
    enum class KeyType { Rsa2048, EcP256 };

    // Throws std::runtime_error if SoftHSM's module is not installed.
    SoftHsm();
    // Restores SOFTHSM2_CONF to what it was.
    ~SoftHsm();
    SoftHsm(const SoftHsm&) = delete;
    SoftHsm& operator=(const SoftHsm&) = delete;

    // softhsm2-util --init-token --free --label L --pin P --so-pin S.
    // These and the others throw std::runtime_error with the tool's output.
    void init_token(const std::string& label, const std::string& pin,
                    const std::string& so_pin = "87654321");
    // pkcs11-tool --module <SoftHSM> --token-label L --login --pin P
    //   --keypairgen --key-type rsa:2048|EC:prime256v1 --id ID --label KEY_LABEL
    // `id_hex` is the CKA_ID in hex ("01").
    void generate_key(const std::string& token_label, const std::string& pin, KeyType type,
                      const std::string& id_hex, const std::string& key_label);
    // softhsm2-util --delete-token --token L: the token is gone for good,
    // as a card that was pulled and lost.
    void delete_token(const std::string& label);

    const std::filesystem::path& config_path() const { return config_; }
    const std::filesystem::path& token_dir() const { return tokens_; }
    // "SOFTHSM2_CONF=..." for the environment of a child (the daemon).
    std::string environment_entry() const;

    // SoftHSM's PKCS#11 module as Debian installs it; empty if absent.
    static std::filesystem::path module_path();
    // OpenSC's pkcs11-spy.so, a PKCS#11 module that passes every call on to
    // the module named by $PKCS11SPY and logs it to $PKCS11SPY_OUTPUT: how a
    // test counts C_Login calls. Empty if absent.
    static std::filesystem::path spy_module_path();

  private:
    // Runs a tool with SOFTHSM2_CONF set; returns its stdout.
    std::string run(const std::vector<std::string>& argv) const;

    TempDir dir_{"apikeyd-softhsm"};
    std::filesystem::path config_;
    std::filesystem::path tokens_;
    std::optional<std::string> previous_conf_;
};

}  // namespace apikeyd::test
