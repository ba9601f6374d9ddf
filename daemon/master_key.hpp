#pragma once
// The installation's master key and the subkeys derived from it by HKDF with
// distinct labels. Nothing outside this file sees the master key itself
// once the subkeys exist.

#include "common/secret.hpp"
#include "daemon/crypto.hpp"

namespace apikeyd {

class MasterKey {
  public:
    static Result<SecretBuffer> generate();
    static Result<MasterKey> derive(const SecretBuffer& master);
    // A value stored beside the keyslots: a slot that yields a key whose check
    // value differs is refused instead of trusted (a TPM can unseal garbage).
    static Result<crypto::Mac> check_value(const SecretBuffer& master);

    // Keys the HMAC that turns issued key text into a lookup value.
    const SecretBuffer& pepper() const { return pepper_; }
    // Encrypts imported secrets.
    const SecretBuffer& record_key() const { return record_key_; }
    // Authenticates each record's metadata.
    const SecretBuffer& mac_key() const { return mac_key_; }

  private:
    MasterKey(SecretBuffer pepper, SecretBuffer record_key, SecretBuffer mac_key)
        : pepper_(std::move(pepper)),
          record_key_(std::move(record_key)),
          mac_key_(std::move(mac_key)) {}

    SecretBuffer pepper_;
    SecretBuffer record_key_;
    SecretBuffer mac_key_;
};

}  // namespace apikeyd
