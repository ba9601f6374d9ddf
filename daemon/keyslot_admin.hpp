#pragma once
// The rules for managing keyslots: only root may add, remove or unlock, a
// software slot is never added at run time, and each type's options are
// checked before any hardware is touched.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/key_service.hpp"
#include "daemon/keyslot_manager.hpp"

namespace apikeyd {

struct AddKeyslotRequest {
    std::string type;            // "tpm2" or "recovery"
    std::string tcti;            // tpm2; empty = the default device
    std::vector<uint32_t> pcrs;  // tpm2; sha256 bank
    SecretBuffer pin;            // tpm2; empty = no PIN
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
    Result<void> unlock(const Caller& caller, std::string_view type,
                        const UnlockCredentials& credentials);

  private:
    KeyslotManager& keyslots_;
};

}  // namespace apikeyd
