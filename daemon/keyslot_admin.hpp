#pragma once
// The rules for managing keyslots: only root may add, remove or unlock, a
// software slot is never added at run time, and each type's options are
// checked before any hardware is touched (or any PKCS#11 module loaded).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/key_service.hpp"
#include "daemon/keyslot_manager.hpp"

namespace apikeyd {

struct AddKeyslotRequest {
    std::string type;            // "tpm2", "pkcs11" or "recovery"
    std::string tcti;            // tpm2; empty = the default device
    std::vector<uint32_t> pcrs;  // tpm2; sha256 bank
    std::string uri;             // pkcs11 (RFC 7512); required
    SecretBuffer pin;            // tpm2: empty = no PIN; pkcs11: required
};

struct AddedKeyslot {
    std::string id;
    SecretBuffer recovery_key;  // set for "recovery" only; shown once
};

class KeyslotAdmin {
  public:
    explicit KeyslotAdmin(KeyslotManager& keyslots) : keyslots_(keyslots) {}

    Result<AddedKeyslot> add(const Caller& caller, AddKeyslotRequest request);
    Result<void> remove(const Caller& caller, std::string_view id);
    // `keyslot`: only that slot, else every slot of `type` in order.
    Result<void> unlock(const Caller& caller, std::string_view type,
                        const UnlockCredentials& credentials, std::string_view keyslot = {});

  private:
    Result<AddedKeyslot> add_tpm2(AddKeyslotRequest request);
    Result<AddedKeyslot> add_pkcs11(AddKeyslotRequest request);
    Result<AddedKeyslot> add_recovery(const AddKeyslotRequest& request);

    KeyslotManager& keyslots_;
};

}  // namespace apikeyd
