#pragma once
// The rules of apikeyd: who may create, see, verify, use and revoke which
// key, and what each answer is. Knows nothing of D-Bus; callers are plain
// (uid, pid) pairs the bus layer got from the bus.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/secret.hpp"
#include "daemon/caller.hpp"
#include "daemon/clock.hpp"
#include "daemon/key_record.hpp"
#include "daemon/log_throttle.hpp"
#include "daemon/rate_limiter.hpp"
#include "daemon/result.hpp"
#include "daemon/usage_recorder.hpp"

namespace apikeyd {

class CommitScheduler;
class KeyslotManager;
class MasterKey;

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
    uint64_t rate_limit_per_min = 0;
    uint64_t rotated_usec = 0;
    uint64_t grace_until_usec = 0;  // 0 = no previous text works
};

struct CreateKeyRequest {
    std::string name;
    std::string description;
    std::vector<std::string> scopes;
    std::optional<uint64_t> expires_in_sec;
    uint64_t max_uses = 0;
    uint32_t rate_limit_per_min = 0;
    std::optional<std::string> prefix;  // absent = key_format::kDefaultPrefix
};

// UpdateKey: what is set changes, the rest stays.
struct KeyChanges {
    std::optional<std::string> name;
    std::optional<std::string> description;
    std::optional<std::vector<std::string>> scopes;
    std::optional<uint64_t> expires_in_sec;
    bool never_expires = false;
    std::optional<uint64_t> max_uses;
    std::optional<uint32_t> rate_limit_per_min;

    bool empty() const {
        return !name && !description && !scopes && !expires_in_sec && !never_expires && !max_uses &&
               !rate_limit_per_min;
    }
};

// IdentifyKey: which of the caller's keys a text is, without using it.
struct Identification {
    bool known = false;
    std::string reason;           // when !known: "malformed", "unknown", "rate_limited"
    std::string text;             // when known: "current" or "previous"
    std::optional<KeyInfo> info;  // when known
};

// The key a change was made to. Its owner is who (with root) is told of the
// change: the bus layer sends the change's signal to no one else.
struct ChangedKey {
    std::string id;
    uint32_t owner_uid = 0;
};

struct CreatedKey {
    std::string id;
    SecretBuffer key_text;
    uint32_t owner_uid = 0;
};

struct RotatedKey {
    SecretBuffer key_text;
    uint32_t owner_uid = 0;
};

struct ImportRequest {
    std::string name;
    std::string description;
    SecretBuffer secret;
    std::optional<uint64_t> expires_in_sec;
};

enum class StateFilter { Active, Revoked, Expired, All };

// ListKeys a page at a time, in creation order: `after` is the id of the
// last key of the previous page.
struct KeyPage {
    std::optional<std::string> after;
    std::optional<uint32_t> limit;  // absent = KeyService::kMaxKeysListed
};
// ListKeys' filter 'state': "active" (also when absent), "revoked",
// "expired" or "all".
Result<StateFilter> parse_state_filter(std::optional<std::string_view> state);

struct Verification {
    bool valid = false;
    std::string reason;           // empty when valid
    std::optional<KeyInfo> info;  // set when the key is the caller's
};

// An audit event of a key, as GetUsage shows it.
struct UsageEvent {
    uint64_t time_usec = 0;
    std::string action;
    std::string result;
    uint32_t caller_uid = 0;
    uint32_t caller_pid = 0;
    std::string caller_exe;   // empty when unknown
    std::string caller_unit;  // empty when unknown
};

// One day's counters of a key, as GetUsageByDay shows them.
struct DayUsage {
    uint64_t day_usec = 0;  // the day's start, UTC
    std::string date;       // "YYYY-MM-DD"
    uint64_t ok = 0;
    uint64_t refused = 0;
    // Of ok + refused, the events not stored one by one: the caller's
    // event budget was spent.
    uint64_t unrecorded = 0;
};

// A keyslot as GetStatus shows it: what the contract names of its
// type-specific parameters, nothing of what it seals.
struct KeyslotInfo {
    std::string id;
    std::string type;
    uint64_t created_usec = 0;
    std::optional<std::string> tcti;
    std::optional<std::vector<uint32_t>> pcrs;
    std::optional<std::string> uri;
    std::optional<std::string> mechanism;
    std::optional<bool> pin;  // whether unlocking it takes a PIN
};

struct ServiceStatus {
    bool locked = false;
    std::string lock_reason;
    std::vector<KeyslotInfo> keyslots;
    uint64_t keys = 0;  // visible to the caller
    std::vector<std::string> warnings;
};

class KeyService {
  public:
    // Longest expiry accepted: a century keeps every timestamp far from
    // overflow.
    static constexpr uint64_t kMaxExpiresInSec = 100ULL * 366 * 24 * 3600;
    static constexpr uint64_t kMaxGraceSec = 90ULL * 24 * 3600;
    static constexpr size_t kMaxSignedData = 16 * 1024 * 1024;
    // The brute-force guard: failed verifications per caller UID, at once
    // and refilled per minute.
    static constexpr double kFailedVerifiesPerMinute = 100;
    static constexpr size_t kMaxEventsListed = UsageRecorder::kEventsKeptPerKey;
    static constexpr uint32_t kMaxDaysListed = UsageRecorder::kDaysKept;
    // Keys in one ListKeys reply, at most and by default: at the limits of
    // a key's fields (about 9 KB of info each) a page stays under 9 MiB,
    // well below the bus's 32 MiB message limit.
    static constexpr uint32_t kMaxKeysListed = 1000;

    // GetUsage and GetUsageByDay without a 'limit' or 'days'.
    static constexpr uint32_t kDefaultEventsListed = 100;
    static constexpr uint32_t kDefaultDaysListed = 30;

    // Changes are made through `commits`: durable once its batch commits.
    KeyService(Store& store, KeyslotManager& keyslots, const Clock& clock,
               CommitScheduler& commits);
    KeyService(const KeyService&) = delete;
    KeyService& operator=(const KeyService&) = delete;

    Result<CreatedKey> create_key(const Caller& caller, const CreateKeyRequest& request);
    Result<ChangedKey> import_secret(const Caller& caller, ImportRequest request);
    Result<std::vector<KeyInfo>> list_keys(const Caller& caller, StateFilter filter,
                                           const KeyPage& page = {});
    Result<KeyInfo> get_key(const Caller& caller, std::string_view id);
    Result<ChangedKey> revoke_key(const Caller& caller, std::string_view id,
                                  std::string_view reason);
    Result<Verification> verify_key(const Caller& caller, std::string_view key_text,
                                    std::string_view scope);
    Result<SecretBuffer> get_secret(const Caller& caller, std::string_view id);
    Result<ServiceStatus> status(const Caller& caller);

    Result<ChangedKey> update_key(const Caller& caller, std::string_view id,
                                  const KeyChanges& changes);
    // A new text for the key; the one it replaces works `grace_sec` longer.
    Result<RotatedKey> rotate_key(const Caller& caller, std::string_view id, uint64_t grace_sec);
    // HMAC with an imported secret that never leaves the daemon. The MAC is
    // as private as the secret for that data.
    Result<SecretBuffer> sign(const Caller& caller, std::string_view id, std::string_view algorithm,
                              std::span<const uint8_t> data);
    Result<Identification> identify_key(const Caller& caller, std::string_view key_text);
    // A key's newest events (newest first), and its per-day counters over
    // the last `days` days (oldest first); absent = the defaults above.
    Result<std::vector<UsageEvent>> usage(const Caller& caller, std::string_view id,
                                          std::optional<uint64_t> since_usec,
                                          std::optional<uint32_t> limit);
    Result<std::vector<DayUsage>> usage_by_day(const Caller& caller, std::string_view id,
                                               std::optional<uint32_t> days);

    // Writes batched use counters and events to disk; called by a timer and
    // at shutdown.
    Result<void> flush_usage();
    bool has_pending_usage() const { return usage_.has_pending(); }

  private:
    // Where a key text led: its record, and whether it is the text before
    // the record's latest rotation.
    struct Found {
        KeyRecord record;
        bool previous = false;
    };

    Result<const MasterKey*> unlocked() const;
    // The caller's key by id, integrity-checked; another user's key is
    // NotFound so that ids leak nothing.
    Result<KeyRecord> owned_record(const Caller& caller, std::string_view id);
    // The same, once the recorder's pending uses and events are on disk: for
    // the usage queries, which read them from the store.
    Result<KeyRecord> owned_record_with_usage_flushed(const Caller& caller, std::string_view id);
    Result<void> check_record_integrity(const KeyRecord& record) const;
    Result<SecretBuffer> sign_unwiped(const Caller& caller, std::string_view id,
                                      std::string_view algorithm, std::span<const uint8_t> data);
    KeyInfo describe(const KeyRecord& record, uint64_t now) const;
    uint64_t total_uses(const KeyRecord& record) const;
    void count_use(const KeyRecord& record, uint64_t now);
    Verification refuse(const Caller& caller, std::string reason, bool counts_as_guess,
                        std::optional<KeyInfo> info = std::nullopt);
    // The caller's key for a text, or the reason VerifyKey would give
    // ("malformed", "unknown"); counts a guess for those.
    Result<std::variant<Found, std::string>> find_by_text(const Caller& caller,
                                                          const MasterKey& master,
                                                          std::string_view key_text);
    // An audit event (and, for changes and refusals, a log line). A change
    // made in a batch is audited once the batch is committed.
    void audit(const Caller& caller, const std::string& id, std::string_view action,
               std::string_view result);
    void record_audit(const Caller& caller, const std::string& id, std::string_view action,
                      std::string_view result);
    // The refusal of a call on a known key, audited.
    Error refused(const Caller& caller, const KeyRecord& record, std::string_view action,
                  Error error);
    // `held_before`: what the record held (held_bytes) before the change.
    Result<void> reseal_and_update(const MasterKey& master, KeyRecord& record,
                                   uint64_t held_before);
    // An imported secret, decrypted, once revocation and expiry allow it;
    // counted as a use and audited as `action`.
    Result<SecretBuffer> open_secret(const Caller& caller, const MasterKey& master,
                                     const KeyRecord& record, std::string_view action);
    Result<void> apply_changes(const KeyChanges& changes, KeyRecord& record, uint64_t now) const;
    // Checks what every new record shares and fills those fields.
    Result<KeyRecord> new_record(const Caller& caller, KeyKind kind, std::string name,
                                 std::string description, std::optional<uint64_t> expires_in_sec);
    Result<void> seal_and_insert(const MasterKey& master, KeyRecord& record);
    Result<uint64_t> expiry_from(std::optional<uint64_t> expires_in_sec, uint64_t now) const;
    struct Holdings {
        uint64_t keys = 0;
        uint64_t bytes = 0;  // held_bytes of every key
    };
    Result<Holdings*> holdings(uint32_t uid);
    Result<void> check_quota(const Caller& caller);
    // LimitExceeded when `record`, once stored in place of what held
    // `held_before` bytes, would take a non-root owner past kMaxBytesPerUser.
    Result<void> check_room(const KeyRecord& record, uint64_t held_before);

    Store& store_;
    KeyslotManager& keyslots_;
    const Clock& clock_;
    CommitScheduler& commits_;
    UidBudget verify_failures_;
    KeyRateLimiter key_limits_;
    UsageRecorder usage_;
    LogThrottle refusal_lines_;
    LogThrottle change_lines_;
    // Keys and bytes per owner, counted in the store once and then kept by
    // this service, the store's only writer of keys: counting them in
    // SQLite on every create costs milliseconds once a user owns tens of
    // thousands. Keys are never deleted, so the count only grows.
    std::unordered_map<uint32_t, Holdings> holdings_;
};

}  // namespace apikeyd
