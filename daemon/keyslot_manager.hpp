#pragma once
// Owns the keyslots: creates the master key and its first slot on a first
// start, tries the slots at every start until one yields a master key whose
// check value matches, unlocks later with a PIN or recovery key, and adds and
// removes slots. When no slot unlocks, the daemon runs locked and says why.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/clock.hpp"
#include "daemon/keyslots/keyslot.hpp"
#include "daemon/keyslots/pkcs11_uri.hpp"
#include "daemon/master_key.hpp"
#include "daemon/store.hpp"

namespace apikeyd {

class KeyslotManager {
  public:
    KeyslotManager(Store& store, std::filesystem::path state_directory, const Clock& clock,
                   Pkcs11ModuleAllowlist pkcs11_modules = {});

    // True once a master key and at least one keyslot exist.
    Result<bool> initialized();
    // First start: a new master key sealed by `protector`, stored with its
    // check value in one transaction.
    Result<void> initialize(KeyslotProtector& protector);
    // Tries every slot once, in order, with what the daemon was started with:
    // `startup.pin` (a PIN file or systemd credential) goes to pkcs11 slots
    // only, and after the first slot that refuses it, to no further one. A
    // refused PIN is never retried. Afterwards either master_key() is set or
    // lock_reason() says why not.
    void unlock(const UnlockCredentials& startup = {});
    // Tries the slots of `type` with what a person handed in; all of them in
    // order, or only the slot `only_slot` when it is not empty.
    Result<void> unlock_with(std::string_view type, const UnlockCredentials& credentials,
                             std::string_view only_slot = {});

    // Seals the master key with `protector` into a new slot; returns its id.
    Result<std::string> add(KeyslotProtector& protector);
    // Refused for the last slot: without one the keys could never be opened
    // again after a restart.
    Result<void> remove(std::string_view id);

    const Clock& clock() const { return clock_; }
    bool locked() const { return !master_key_.has_value(); }
    const MasterKey* master_key() const { return master_key_ ? &*master_key_ : nullptr; }
    const std::string& lock_reason() const { return lock_reason_; }
    const std::vector<KeyslotRecord>& keyslots() const { return keyslots_; }
    bool has_keyslot_of_type(std::string_view type) const;
    const Pkcs11ModuleAllowlist& pkcs11_modules() const { return pkcs11_modules_; }

    // Whether opening `slot` takes a PIN: every pkcs11 slot, tpm2 slots
    // enrolled with one.
    static bool takes_pin(const KeyslotRecord& slot);

  private:
    std::unique_ptr<KeyslotProtector> protector_for(std::string_view type) const;
    Result<void> accept(SecretBuffer master);

    Store& store_;
    std::filesystem::path state_directory_;
    const Clock& clock_;
    Pkcs11ModuleAllowlist pkcs11_modules_;
    std::vector<KeyslotRecord> keyslots_;
    // Kept (in the secure heap) while unlocked: enrolling a new slot needs it.
    SecretBuffer master_;
    std::optional<MasterKey> master_key_;
    std::string lock_reason_ = "not unlocked yet";
};

}  // namespace apikeyd
