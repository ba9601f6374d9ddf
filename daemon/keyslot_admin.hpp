#pragma once
// The rules for managing keyslots: only root may add, remove or unlock, a
// software slot is never added at run time, and each type's options are
// checked before any hardware is touched (or any PKCS#11 module loaded).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/secret.hpp"
#include "daemon/caller.hpp"
#include "daemon/keyslots/unlock_credentials.hpp"
#include "daemon/log_throttle.hpp"
#include "daemon/result.hpp"

namespace apikeyd {

class KeyslotManager;

struct AddKeyslotRequest {
    std::string type;                 // "tpm2", "pkcs11" or "recovery"
    std::string tcti;                 // tpm2; empty = the default device
    std::vector<uint32_t> pcrs;       // tpm2; sha256 bank
    std::string uri;                  // pkcs11 (RFC 7512); required
    std::optional<SecretBuffer> pin;  // tpm2: absent = no PIN; pkcs11: required
};

struct AddedKeyslot {
    std::string id;
    SecretBuffer recovery_key;  // set for "recovery" only; shown once
};

struct UnlockRequest {
    std::string type;  // "tpm2", "pkcs11" or "recovery"
    UnlockCredentials credentials;
    std::string keyslot;  // only that slot; empty = every slot of `type` in order
};

class KeyslotAdmin {
  public:
    explicit KeyslotAdmin(KeyslotManager& keyslots);

    Result<AddedKeyslot> add(const Caller& caller, AddKeyslotRequest request);
    Result<void> remove(const Caller& caller, std::string_view id);
    Result<void> unlock(const Caller& caller, const UnlockRequest& request);
    // Called after every unlock that worked (the service manager is told).
    void on_unlocked(std::function<void()> listener) { on_unlocked_ = std::move(listener); }
    // The "N more refusals" lines of throttle windows that have ended:
    // called by the flush timer, or a user who stops would never get theirs.
    void write_log_summaries() { refusal_lines_.write_summaries(); }

  private:
    Result<AddedKeyslot> add_of_type(AddKeyslotRequest request);
    Result<AddedKeyslot> add_tpm2(AddKeyslotRequest request);
    Result<AddedKeyslot> add_pkcs11(AddKeyslotRequest request);
    Result<AddedKeyslot> add_recovery(const AddKeyslotRequest& request);
    Result<void> unlock_with(const UnlockRequest& request);

    KeyslotManager& keyslots_;
    // Refused unlocks are lines a non-root caller can cause at will.
    LogThrottle refusal_lines_;
    std::function<void()> on_unlocked_;
};

}  // namespace apikeyd
