#pragma once
// The rules of apikeyd: who may create, see, verify, use and revoke which
// key, and what each answer is. Knows nothing of D-Bus; callers are plain
// (uid, pid) pairs the bus layer got from the bus.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/clock.hpp"
#include "daemon/key_record.hpp"
#include "daemon/keyslot_manager.hpp"
#include "daemon/rate_limiter.hpp"
#include "daemon/result.hpp"
#include "daemon/secret.hpp"
#include "daemon/store.hpp"

namespace apikeyd {

struct Caller {
    uint32_t uid = 0;
    uint32_t pid = 0;
    bool is_root() const { return uid == 0; }
};

struct KeyInfo {
    std::string id;
    std::string name;
    std::string description;
    KeyKind kind = KeyKind::Issued;
    std::vector<std::string> scopes;
    uint32_t owner_uid = 0;
    std::string state;  // "active", "revoked", "expired"
    uint64_t created_usec = 0;
    uint64_t expires_usec = 0;
    uint64_t last_used_usec = 0;
    uint64_t use_count = 0;
    uint64_t max_uses = 0;
    uint64_t revoked_usec = 0;
    std::string revoke_reason;
};

struct CreateKeyRequest {
    std::string name;
    std::string description;
    std::vector<std::string> scopes;
    std::optional<uint64_t> expires_in_sec;
    uint64_t max_uses = 0;
    std::optional<std::string> prefix;  // absent = key_format::kDefaultPrefix
};

struct CreatedKey {
    std::string id;
    SecretBuffer key_text;
};

struct ImportRequest {
    std::string name;
    std::string description;
    SecretBuffer secret;
    std::optional<uint64_t> expires_in_sec;
};

enum class StateFilter { Active, Revoked, Expired, All };

struct Verification {
    bool valid = false;
    std::string reason;           // empty when valid
    std::optional<KeyInfo> info;  // set when the key is the caller's
};

struct ServiceStatus {
    bool locked = false;
    std::string lock_reason;
    std::vector<KeyslotRecord> keyslots;
    uint64_t keys = 0;  // visible to the caller
    std::vector<std::string> warnings;
};

class KeyService {
  public:
    // Longest expiry accepted: a century keeps every timestamp far from
    // overflow.
    static constexpr uint64_t kMaxExpiresInSec = 100ULL * 366 * 24 * 3600;

    KeyService(Store& store, KeyslotManager& keyslots, const Clock& clock);

    Result<CreatedKey> create_key(const Caller& caller, const CreateKeyRequest& request);
    Result<std::string> import_secret(const Caller& caller, ImportRequest request);
    Result<std::vector<KeyInfo>> list_keys(const Caller& caller, StateFilter filter);
    Result<KeyInfo> get_key(const Caller& caller, std::string_view id);
    Result<void> revoke_key(const Caller& caller, std::string_view id, std::string_view reason);
    Result<Verification> verify_key(const Caller& caller, std::string_view key_text,
                                    std::string_view scope);
    Result<SecretBuffer> get_secret(const Caller& caller, std::string_view id);
    Result<ServiceStatus> status(const Caller& caller);

    // Writes batched use counters to disk; called by a timer and at shutdown.
    Result<void> flush_usage();
    bool has_pending_usage() const { return !pending_usage_.empty(); }

  private:
    struct PendingUsage {
        uint64_t uses = 0;
        uint64_t last_used_usec = 0;
    };

    Result<const MasterKey*> unlocked() const;
    // The caller's key by id, integrity-checked; another user's key is
    // NotFound so that ids leak nothing.
    Result<KeyRecord> owned_record(const Caller& caller, std::string_view id);
    Result<void> check_record_integrity(const KeyRecord& record) const;
    KeyInfo describe(const KeyRecord& record, uint64_t now) const;
    uint64_t total_uses(const KeyRecord& record) const;
    void count_use(const KeyRecord& record, uint64_t now);
    Verification refuse(const Caller& caller, std::string reason, bool counts_as_guess,
                        std::optional<KeyInfo> info = std::nullopt);
    // Checks what every new record shares and fills those fields.
    Result<KeyRecord> new_record(const Caller& caller, KeyKind kind, std::string name,
                                 std::string description, std::optional<uint64_t> expires_in_sec);
    Result<void> seal_and_insert(const MasterKey& master, KeyRecord& record);
    Result<uint64_t> expiry_from(std::optional<uint64_t> expires_in_sec, uint64_t now) const;
    Result<void> check_quota(const Caller& caller);

    Store& store_;
    KeyslotManager& keyslots_;
    const Clock& clock_;
    FailureRateLimiter verify_failures_;
    std::unordered_map<std::string, PendingUsage> pending_usage_;
};

}  // namespace apikeyd
