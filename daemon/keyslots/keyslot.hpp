#pragma once
// A keyslot holds the master key wrapped by one protector (tpm2, pkcs11,
// recovery, software). Any one slot unlocks the daemon. A protector turns a
// master key into a record it can later open again; the record's `params`
// (JSON) and `sealed` blob are all it keeps, in the store.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/secret.hpp"
#include "daemon/keyslots/unlock_credentials.hpp"
#include "daemon/result.hpp"

namespace apikeyd {

struct KeyslotRecord {
    std::string id;
    std::string type;
    uint64_t created_usec = 0;
    nlohmann::json params = nlohmann::json::object();
    std::vector<uint8_t> sealed;
};

class KeyslotProtector {
  public:
    virtual ~KeyslotProtector() = default;
    virtual std::string_view type() const = 0;
    // Wraps `master` and fills record.params / record.sealed.
    virtual Result<void> enroll(const SecretBuffer& master, KeyslotRecord& record) = 0;
    // Gives the master key back, or says why it cannot.
    virtual Result<SecretBuffer> unseal(const KeyslotRecord& record,
                                        const UnlockCredentials& credentials) = 0;
    // Removes what the slot keeps outside the store, once the slot is gone.
    virtual Result<void> forget(const KeyslotRecord&) { return {}; }
};

}  // namespace apikeyd
