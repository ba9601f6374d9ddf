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
#include "daemon/master_key.hpp"
#include "daemon/store.hpp"

namespace apikeyd {

class KeyslotManager {
  public:
    KeyslotManager(Store& store, std::filesystem::path state_directory, const Clock& clock);

    // True once a master key and at least one keyslot exist.
    Result<bool> initialized();
    // First start: a new master key sealed by `protector`, stored with its
    // check value in one transaction.
    Result<void> initialize(KeyslotProtector& protector);
    // Tries every slot without credentials; afterwards either master_key() is
    // set or lock_reason() says why not.
    void unlock();
    // Tries the slots of `type` with what a person handed in.
    Result<void> unlock_with(std::string_view type, const UnlockCredentials& credentials);

    // Seals the master key with `protector` into a new slot; returns its id.
    Result<std::string> add(KeyslotProtector& protector);
    // Refused for the last slot: without one the keys could never be opened
    // again after a restart.
    Result<void> remove(std::string_view id);

    bool locked() const { return !master_key_.has_value(); }
    const MasterKey* master_key() const { return master_key_ ? &*master_key_ : nullptr; }
    const std::string& lock_reason() const { return lock_reason_; }
    const std::vector<KeyslotRecord>& keyslots() const { return keyslots_; }
    bool has_keyslot_of_type(std::string_view type) const;

  private:
    std::unique_ptr<KeyslotProtector> protector_for(std::string_view type) const;
    Result<void> accept(SecretBuffer master);

    Store& store_;
    std::filesystem::path state_directory_;
    const Clock& clock_;
    std::vector<KeyslotRecord> keyslots_;
    // Kept (in the secure heap) while unlocked: enrolling a new slot needs it.
    SecretBuffer master_;
    std::optional<MasterKey> master_key_;
    std::string lock_reason_ = "not unlocked yet";
};

}  // namespace apikeyd
