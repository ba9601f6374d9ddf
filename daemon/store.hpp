#pragma once
// SQLite storage of keys, keyslots and installation metadata. WAL mode with
// synchronous=FULL: a change is on disk when its call returns, or, inside a
// batch, when the batch's commit returns. Bound statements only. The store
// knows nothing of keys' meaning; the key service decides, the store keeps.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/c_handle.hpp"
#include "daemon/caller.hpp"
#include "daemon/key_record.hpp"
#include "daemon/result.hpp"

// Only the store sees <sqlite3.h>.
struct sqlite3;
struct sqlite3_stmt;

namespace apikeyd {

struct KeyslotRecord;

class Store {
  public:
    static constexpr int kSchemaVersion = 3;
    static constexpr std::string_view kFileName = "apikeyd.db";
    // Up to this size the whole file is checked at open (PRAGMA quick_check:
    // the b-tree structure of every page), which costs ~4 ms of CPU per MiB
    // measured here: up to ~35 ms, about 30,000 keys. A larger store opens
    // after the checks every open makes anyway (header, size against the
    // page count, schema); damage further in shows when its page is read, as
    // an error of that call. See docs/SECURITY.md, "Someone editing the
    // database".
    static constexpr uintmax_t kQuickCheckMaxBytes = 8 * 1024 * 1024;

    // Opens (creating with mode 0600 if needed) and migrates the database;
    // refuses a schema newer than this build knows, a file that is not an
    // SQLite database or is damaged, and an existing file of zero bytes (a
    // truncated database must not pass for a new installation).
    static Result<std::unique_ptr<Store>> open(const std::filesystem::path& path);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    int schema_version() const { return schema_version_; }

    // Runs `body` in one transaction: committed when it returns ok, rolled
    // back otherwise. An open batch is committed first, so that what
    // `body` writes is never made durable by, or lost with, the batch.
    Result<void> transaction(const std::function<Result<void>()>& body);

    // Group commit: every write between begin_batch() and commit_batch()
    // shares one transaction, hence one COMMIT and one sync, instead of a
    // sync each. Nothing written in a batch is durable before its COMMIT.
    using BatchListener = std::function<void(const Result<void>&)>;
    // Opens a batch unless one is open.
    Result<void> begin_batch();
    // Commits the open batch (rolled back if the COMMIT fails); the listener
    // hears the outcome. Without an open batch, does nothing.
    Result<void> commit_batch();
    bool in_batch() const { return in_batch_; }
    // Told the outcome of every batch, whoever ended it (commit_batch or
    // transaction): the one CommitScheduler over this store.
    void on_batch_end(BatchListener listener) { batch_listener_ = std::move(listener); }

    Result<void> insert_key(const KeyRecord& record);
    // Rewrites every field of an existing key but the usage counters.
    Result<void> update_key(const KeyRecord& record);
    // With `owner`, another owner's key is not found, at the cost of a
    // key that does not exist.
    Result<std::optional<KeyRecord>> find_key(std::string_view id,
                                              std::optional<uint32_t> owner = std::nullopt);
    Result<std::optional<KeyRecord>> find_key_by_lookup(std::span<const uint8_t> lookup);
    // The key whose text before its latest rotation has this lookup.
    Result<std::optional<KeyRecord>> find_key_by_previous_lookup(std::span<const uint8_t> lookup);
    // Where a page of keys starts: after this key in (created_usec, id) order.
    struct KeysAfter {
        uint64_t created_usec = 0;
        std::string id;
    };
    // All keys, or those of one owner, ordered by creation time then id;
    // only those after `after`, and at most `limit` of them.
    Result<std::vector<KeyRecord>> list_keys(std::optional<uint32_t> owner,
                                             const std::optional<KeysAfter>& after = std::nullopt,
                                             size_t limit = SIZE_MAX);
    Result<uint64_t> count_keys(std::optional<uint32_t> owner);
    // Bytes of name, description, scopes (as stored, space-joined), revoke
    // reason and sealed secret of all the owner's keys.
    Result<uint64_t> held_bytes(uint32_t owner);

    struct UsageDelta {
        std::string id;
        uint64_t uses = 0;
        uint64_t last_used_usec = 0;
    };
    struct Event {
        std::string key_id;
        uint64_t time_usec = 0;
        std::string action;
        std::string result;
        uint32_t caller_uid = 0;
        uint32_t caller_pid = 0;
        std::string caller_exe;
        std::string caller_unit;
    };
    // An event to write, as the key service recorded it: the caller's
    // executable and unit are shared with the caller's other events.
    struct NewEvent {
        std::string key_id;
        uint64_t time_usec = 0;
        std::string action;
        std::string result;
        uint32_t caller_uid = 0;
        uint32_t caller_pid = 0;
        SharedText caller_exe;
        SharedText caller_unit;
    };
    struct DayCount {
        std::string key_id;
        uint64_t day = 0;  // days since 1970-01-01 (UTC)
        uint64_t ok = 0;
        uint64_t refused = 0;
        // Events counted in ok/refused but not stored one by one (the
        // caller's event budget was spent).
        uint64_t unrecorded = 0;
    };
    // What the key service batched since its last flush, and the retention
    // to apply, written in one transaction.
    struct UsageBatch {
        std::span<const UsageDelta> uses;
        std::span<const NewEvent> events;
        std::span<const DayCount> days;
        // Older events of each key in `events` beyond this many are dropped.
        size_t events_kept_per_key = 1000;
        // And of each caller UID in `events`, beyond this many.
        size_t events_kept_per_caller = 10'000;
        // Day counters before this day are dropped; 0 = none.
        uint64_t drop_days_before = 0;
    };
    Result<void> apply_usage(const UsageBatch& batch);
    // The newest `limit` events of a key at or after `since_usec`, newest first.
    Result<std::vector<Event>> list_events(std::string_view key_id, uint64_t since_usec,
                                           size_t limit);
    // A key's day counters from `first_day` on, oldest first.
    Result<std::vector<DayCount>> list_days(std::string_view key_id, uint64_t first_day);

    Result<std::optional<std::vector<uint8_t>>> get_meta(std::string_view name);
    Result<void> set_meta(std::string_view name, std::span<const uint8_t> value);

    Result<std::vector<KeyslotRecord>> list_keyslots();
    Result<void> insert_keyslot(const KeyslotRecord& record);
    Result<void> delete_keyslot(std::string_view id);

  private:
    static void finalize(sqlite3_stmt* statement) noexcept;
    using Statement = CHandle<sqlite3_stmt, finalize>;

    Store(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
    Result<void> configure();
    Result<void> check_integrity(uintmax_t file_size);
    // What is wrong when the last failure was the file found damaged (by
    // SQLite or by check_integrity); nullopt for any other failure.
    std::optional<std::string> damage() const;
    Result<void> migrate();
    Result<void> exec(const char* sql);
    Result<void> add_uses(std::span<const UsageDelta> deltas);
    Result<void> add_events(std::span<const NewEvent> events, size_t kept_per_key,
                            size_t kept_per_caller);
    Result<void> add_days(std::span<const DayCount> days, uint64_t drop_before);
    // Prepared once and kept: the verify path must not re-parse SQL.
    Result<sqlite3_stmt*> cached(const char* sql);
    Error failure(std::string_view what) const;
    // Refuses a write into a batch that SQLite has already rolled back (it
    // does so on some errors, e.g. a full disk): the write would otherwise
    // commit on its own and the batch's later COMMIT fail.
    Result<void> batch_intact() const;
    // Before a write that is not batched: keyslots and metadata (their
    // callers answer as soon as the write returns) and transaction().
    void end_batch();

    sqlite3* db_;
    std::filesystem::path path_;
    std::string damage_found_by_check_;
    int schema_version_ = 0;
    bool in_batch_ = false;
    BatchListener batch_listener_;
    std::vector<std::pair<const char*, Statement>> statements_;
};

}  // namespace apikeyd
