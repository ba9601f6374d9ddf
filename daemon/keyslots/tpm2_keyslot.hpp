#pragma once
// The tpm2 keyslot: the master key in a sealed keyed-hash object under the
// TPM's storage root key (SRK, the TCG ECC P-256 storage template in the owner
// hierarchy), optionally bound to sha256 PCR values (PolicyPCR) and a PIN
// (PolicyAuthValue). The record keeps only what the TPM gave back — the
// object's public and private areas, the latter encrypted by the SRK — so the
// blob is useless without this TPM.
//
// record.params:  {"tcti": s, "pcrs": [u...], "pin": bool,
//                  "srk_name": hex, "pcr_bank": "sha256"}
// record.sealed:  TPM2B_PUBLIC || TPM2B_PRIVATE, as marshalled by tss2-mu
//                 (each carries its own 16-bit big-endian length).
//
// The PIN is never given to the TPM as typed: the object's authValue is
// HMAC-SHA256(key = PIN, "apikeyd tpm2 pin v1" || SRK Name). That fits any PIN
// length into the 32 bytes the TPM takes, keeps the PIN itself (perhaps reused
// elsewhere) out of the TPM, and salts it per TPM. It is deliberately not
// stretched: the TPM's dictionary-attack lockout is what limits guessing, and
// anyone able to read the authValue out of the TPM has the master key anyway.
//
// TCTI strings may come over D-Bus, and the TCTI loader dlopen()s the module a
// string names while the device TCTI writes into the file it names. So only
// device:/dev/tpmrmN|/dev/tpmN, swtpm:, mssim:, tabrmd: and (when
// TCTI_PCAP_FILE is set in our environment) pcap:<one of those> are accepted.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/keyslots/keyslot.hpp"

namespace apikeyd {

struct Tpm2EnrollOptions {
    std::string tcti;            // empty: default_tcti()
    std::vector<uint32_t> pcrs;  // sha256 bank; empty: no PCR binding
    SecretBuffer pin;            // empty: no PIN
};

class Tpm2Keyslot final : public KeyslotProtector {
  public:
    static constexpr std::string_view kType = "tpm2";
    static constexpr std::string_view kPcrBank = "sha256";
    static constexpr uint32_t kPersistentSrkHandle = 0x81000001;
    static constexpr uint32_t kPcrCount = 24;      // PCRs 0..23 of a PC-client TPM
    static constexpr size_t kMaxPinSize = 256;     // bytes; a PIN, not a document
    static constexpr size_t kMaxSecretSize = 128;  // the TPM's MAX_SYM_DATA

    // For unseal, where everything comes from the record (an enroll through
    // it would use default_tcti(), no PCRs and no PIN).
    Tpm2Keyslot() = default;
    explicit Tpm2Keyslot(Tpm2EnrollOptions options) : options_(std::move(options)) {}

    // "device:/dev/tpmrm0" when the kernel's resource manager exists, else "".
    static std::string default_tcti();

    std::string_view type() const override { return kType; }
    Result<void> enroll(const SecretBuffer& master, KeyslotRecord& record) override;
    Result<SecretBuffer> unseal(const KeyslotRecord& record,
                                const UnlockCredentials& credentials) override;

  private:
    Tpm2EnrollOptions options_;
};

}  // namespace apikeyd
