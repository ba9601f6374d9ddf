#pragma once
// SQLite storage of keys, keyslots and installation metadata. WAL mode with
// synchronous=FULL: a change is on disk when its call returns. Bound
// statements only. The store knows nothing of keys' meaning; the key service
// decides, the store keeps.

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/key_record.hpp"
#include "daemon/keyslots/keyslot.hpp"
#include "daemon/result.hpp"

namespace apikeyd {

class Store {
  public:
    static constexpr int kSchemaVersion = 1;
    static constexpr std::string_view kFileName = "apikeyd.db";

    // Opens (creating with mode 0600 if needed) and migrates the database;
    // refuses a schema newer than this build knows.
    static Result<std::unique_ptr<Store>> open(const std::filesystem::path& path);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    int schema_version() const { return schema_version_; }

    // Runs `body` in one transaction: committed when it returns ok, rolled
    // back otherwise.
    Result<void> transaction(const std::function<Result<void>()>& body);

    Result<void> insert_key(const KeyRecord& record);
    // Rewrites every field of an existing key but the usage counters.
    Result<void> update_key(const KeyRecord& record);
    Result<std::optional<KeyRecord>> find_key(std::string_view id);
    Result<std::optional<KeyRecord>> find_key_by_lookup(std::span<const uint8_t> lookup);
    // All keys, or those of one owner, ordered by creation time.
    Result<std::vector<KeyRecord>> list_keys(std::optional<uint32_t> owner);
    Result<uint64_t> count_keys(std::optional<uint32_t> owner);

    struct UsageDelta {
        std::string id;
        uint64_t uses = 0;
        uint64_t last_used_usec = 0;
    };
    // Adds batched usage in one transaction.
    Result<void> apply_usage(std::span<const UsageDelta> deltas);

    Result<std::optional<std::vector<uint8_t>>> get_meta(std::string_view name);
    Result<void> set_meta(std::string_view name, std::span<const uint8_t> value);

    Result<std::vector<KeyslotRecord>> list_keyslots();
    Result<void> insert_keyslot(const KeyslotRecord& record);
    Result<void> delete_keyslot(std::string_view id);

  private:
    struct StatementDeleter {
        void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
    };
    using Statement = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

    explicit Store(sqlite3* db) : db_(db) {}
    Result<void> configure();
    Result<void> migrate();
    Result<void> exec(const char* sql);
    // Prepared once and kept: the verify path must not re-parse SQL.
    Result<sqlite3_stmt*> cached(const char* sql);
    Error failure(std::string_view what) const;

    sqlite3* db_;
    int schema_version_ = 0;
    std::vector<std::pair<const char*, Statement>> statements_;
};

}  // namespace apikeyd
