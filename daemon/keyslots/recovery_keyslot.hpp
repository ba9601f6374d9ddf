#pragma once
// The recovery keyslot: the way back when the TPM is cleared, the PCRs moved
// after a firmware update, or the token is lost. A random recovery key
// (160 bits, shown once, grouped for reading aloud and typing) is stretched
// with scrypt into the key that wraps the master key with AES-256-GCM.
//
// record.params: {"kdf": "scrypt", "n": t, "r": u, "p": u, "salt": hex}
// record.sealed: nonce || ciphertext || tag of the master key

#include <string_view>

#include "daemon/crypto.hpp"
#include "daemon/keyslots/keyslot.hpp"

namespace apikeyd {

class RecoveryKeyslot final : public KeyslotProtector {
  public:
    static constexpr std::string_view kType = "recovery";
    static constexpr size_t kKeyChars = 32;  // base32: 160 bits
    static constexpr size_t kGroupChars = 4;

    explicit RecoveryKeyslot(crypto::ScryptParams params = {}) : params_(params) {}

    std::string_view type() const override { return kType; }
    // Makes a new recovery key; read it with recovery_key() and show it once.
    Result<void> enroll(const SecretBuffer& master, KeyslotRecord& record) override;
    Result<SecretBuffer> unseal(const KeyslotRecord& record,
                                const UnlockCredentials& credentials) override;

    // "abcd-efgh-..." as made by enroll().
    const SecretBuffer& recovery_key() const { return recovery_key_; }

    // Lower-cases and drops dashes and white space, so the key may be typed
    // as printed or in one run. Fails on any other character or length.
    static Result<SecretBuffer> normalize(std::string_view typed);

  private:
    crypto::ScryptParams params_;
    SecretBuffer recovery_key_;
};

}  // namespace apikeyd
