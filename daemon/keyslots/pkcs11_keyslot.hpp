#pragma once
// The pkcs11 keyslot: the master key wrapped to a key pair on a smartcard or
// token, reached through libp11 (the token's keys as OpenSSL EVP_PKEYs). Only
// the token can unwrap it; the record holds no secret the token does not
// guard.
//
// RSA keys (2048 bits and up): the master key is encrypted in software to
// the token's public key and decrypted on the token. At enrolment each
// mechanism below is tried in order, wrapping and unwrapping once on the
// token, and the first whose round trip gives the master key back is kept:
//   rsa-oaep-sha256  RSAES-OAEP, SHA-256 and MGF1-SHA-256, no label
//   rsa-oaep-sha1    RSAES-OAEP, SHA-1 and MGF1-SHA-1, no label
//   rsa-pkcs1        RSAES-PKCS1-v1_5 (CKM_RSA_PKCS, as PIV cards and
//                    systemd-cryptenroll do)
// libp11 0.4.12 has no CKM_RSA_PKCS_OAEP path through EVP: the token does
// the raw RSA operation (CKM_RSA_X_509) and the OAEP decoding runs here.
// So both OAEP forms need a token that allows raw RSA, and rsa-oaep-sha1 is
// never chosen when rsa-oaep-sha256 failed; it is read back for records
// that name it. A token without raw RSA gets rsa-pkcs1.
//
// EC P-256 keys: an ephemeral P-256 key agrees a secret with the token's
// public key (ECDH), HKDF-SHA256 turns it into an AES-256-GCM key that seals
// the master key; unsealing repeats the ECDH on the token with the stored
// ephemeral public key (CKM_ECDH1_DERIVE).
//   ecdh-p256-hkdf-sha256-aes256gcm
//
// record.params: {"uri": s (canonical, never a PIN), "mechanism": s,
//                 "key_id": hex CKA_ID, "module": realpath of the module,
//                 "ephemeral_public": hex uncompressed point (EC only)}
// record.sealed: the RSA ciphertext, or nonce || ciphertext || tag (EC).
//
// The PIN: enrolment logs in to prove the round trip, so it needs one. An
// unseal without a PIN fails before the module is even loaded, and with one
// it logs in exactly once: a wrong PIN is reported, never retried, so the
// token's retry counter moves by one per call at most. PINs are copied only
// into wiped buffers and never appear in a message.
//
// Module paths are resolved and checked against a Pkcs11ModuleAllowlist at
// enrolment and again at every unseal (the record's "module").

#include <string>
#include <string_view>
#include <utility>

#include "daemon/keyslots/keyslot.hpp"
#include "daemon/keyslots/pkcs11_uri.hpp"

namespace apikeyd {

struct Pkcs11EnrollOptions {
    std::string uri;  // RFC 7512; see pkcs11_uri.hpp for what is accepted
    SecretBuffer pin;
};

class Pkcs11Keyslot final : public KeyslotProtector {
  public:
    static constexpr std::string_view kType = "pkcs11";
    static constexpr std::string_view kRsaOaepSha256 = "rsa-oaep-sha256";
    static constexpr std::string_view kRsaOaepSha1 = "rsa-oaep-sha1";
    static constexpr std::string_view kRsaPkcs1 = "rsa-pkcs1";
    static constexpr std::string_view kEcdhP256 = "ecdh-p256-hkdf-sha256-aes256gcm";
    static constexpr size_t kMaxPinSize = 256;    // bytes; a PIN, not a document
    static constexpr size_t kMaxSecretSize = 64;  // what OAEP-SHA256 fits in RSA-2048, with room
    static constexpr size_t kMaxKeyIdSize = 256;  // bytes of CKA_ID
    static constexpr int kMinRsaBits = 2048;

    // For unseal: everything comes from the record; modules must lie in the
    // allowlist's directories.
    Pkcs11Keyslot() = default;
    explicit Pkcs11Keyslot(Pkcs11ModuleAllowlist allowlist) : allowlist_(std::move(allowlist)) {}
    // For enrolment (unseal works through it too).
    explicit Pkcs11Keyslot(Pkcs11EnrollOptions options, Pkcs11ModuleAllowlist allowlist = {})
        : options_(std::move(options)), allowlist_(std::move(allowlist)) {}

    std::string_view type() const override { return kType; }
    Result<void> enroll(const SecretBuffer& master, KeyslotRecord& record) override;
    Result<SecretBuffer> unseal(const KeyslotRecord& record,
                                const UnlockCredentials& credentials) override;

  private:
    Pkcs11EnrollOptions options_;
    Pkcs11ModuleAllowlist allowlist_;
};

}  // namespace apikeyd
