#include "daemon/store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "daemon/keyslots/keyslot.hpp"

namespace apikeyd {
namespace {

// The ordered chain of migrations: entry N brings schema N to N+1.
constexpr const char* kMigrations[] = {
    R"sql(
    CREATE TABLE meta (
        name  TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE keyslots (
        id           TEXT PRIMARY KEY,
        type         TEXT NOT NULL,
        created_usec INTEGER NOT NULL,
        params       TEXT NOT NULL,
        sealed       BLOB NOT NULL
    );
    CREATE TABLE keys (
        id             TEXT PRIMARY KEY,
        owner_uid      INTEGER NOT NULL,
        kind           TEXT NOT NULL,
        name           TEXT NOT NULL,
        description    TEXT NOT NULL,
        scopes         TEXT NOT NULL,
        created_usec   INTEGER NOT NULL,
        expires_usec   INTEGER NOT NULL,
        max_uses       INTEGER NOT NULL,
        revoked        INTEGER NOT NULL,
        revoked_usec   INTEGER NOT NULL,
        revoke_reason  TEXT NOT NULL,
        lookup         BLOB UNIQUE,
        sealed_secret  BLOB,
        mac            BLOB NOT NULL,
        use_count      INTEGER NOT NULL DEFAULT 0,
        last_used_usec INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX keys_by_owner ON keys (owner_uid, created_usec);
    )sql",
    // 2: per-key rate limits, rotation with a grace period, and the audit:
    // recent events per key and per-day counters (both bounded, see
    // KeyService's retention).
    R"sql(
    ALTER TABLE keys ADD COLUMN rate_limit_per_min INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE keys ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
    ALTER TABLE keys ADD COLUMN rotated_usec INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE keys ADD COLUMN previous_lookup BLOB;
    ALTER TABLE keys ADD COLUMN grace_until_usec INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX keys_by_previous_lookup ON keys (previous_lookup);
    CREATE TABLE events (
        seq         INTEGER PRIMARY KEY,
        key_id      TEXT NOT NULL,
        time_usec   INTEGER NOT NULL,
        action      TEXT NOT NULL,
        result      TEXT NOT NULL,
        caller_uid  INTEGER NOT NULL,
        caller_pid  INTEGER NOT NULL,
        caller_exe  TEXT NOT NULL,
        caller_unit TEXT NOT NULL
    );
    CREATE INDEX events_by_key ON events (key_id, seq);
    CREATE TABLE usage_days (
        key_id  TEXT NOT NULL,
        day     INTEGER NOT NULL,
        ok      INTEGER NOT NULL,
        refused INTEGER NOT NULL,
        PRIMARY KEY (key_id, day)
    ) WITHOUT ROWID;
    CREATE INDEX usage_days_by_day ON usage_days (day);
    )sql",
    // 3: bounds a local user cannot push: ListKeys pages walk (created_usec,
    // id) through an index, another owner's id costs what a missing id costs,
    // each caller's newest events are kept (so the audit a user can cause is
    // bounded per UID), and a day counts the uses that were counted but not
    // stored one by one.
    R"sql(
    DROP INDEX keys_by_owner;
    CREATE INDEX keys_by_owner ON keys (owner_uid, created_usec, id);
    CREATE INDEX keys_by_creation ON keys (created_usec, id);
    CREATE INDEX keys_by_id_owner ON keys (id, owner_uid);
    CREATE INDEX events_by_caller ON events (caller_uid, seq);
    ALTER TABLE usage_days ADD COLUMN unrecorded INTEGER NOT NULL DEFAULT 0;
    )sql",
};
static_assert(std::size(kMigrations) == Store::kSchemaVersion);

constexpr const char* kKeyColumns =
    "id, owner_uid, kind, name, description, scopes, created_usec, expires_usec, max_uses, "
    "revoked, revoked_usec, revoke_reason, lookup, sealed_secret, mac, rate_limit_per_min, "
    "prefix, rotated_usec, previous_lookup, grace_until_usec, use_count, last_used_usec";

// Scope characters never include a space, so a space-joined list is exact.
std::string join_scopes(const std::vector<std::string>& scopes) {
    std::string out;
    for (const auto& s : scopes) {
        if (!out.empty()) {
            out += ' ';
        }
        out += s;
    }
    return out;
}

std::vector<std::string> split_scopes(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        const auto space = text.find(' ');
        out.emplace_back(text.substr(0, space));
        text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    }
    return out;
}

// SQLite integers are signed 64-bit; counters and times stay far below 2^63.
int64_t to_db(uint64_t v) {
    return static_cast<int64_t>(v);
}
uint64_t from_db(sqlite3_stmt* s, int col) {
    return static_cast<uint64_t>(sqlite3_column_int64(s, col));
}

std::string text_column(sqlite3_stmt* s, int col) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
    return text ? std::string(text, static_cast<size_t>(sqlite3_column_bytes(s, col)))
                : std::string();
}

std::vector<uint8_t> blob_column(sqlite3_stmt* s, int col) {
    const auto* blob = static_cast<const uint8_t*>(sqlite3_column_blob(s, col));
    return blob ? std::vector<uint8_t>(blob, blob + sqlite3_column_bytes(s, col))
                : std::vector<uint8_t>();
}

void bind_text(sqlite3_stmt* s, int i, std::string_view text) {
    // An empty view may point nowhere, and SQLite binds a null pointer as
    // NULL, not as ''.
    sqlite3_bind_text(s, i, text.empty() ? "" : text.data(), static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
}

// Empty blobs are stored as NULL so that the UNIQUE index on `lookup`
// admits any number of imported secrets.
void bind_blob_or_null(sqlite3_stmt* s, int i, std::span<const uint8_t> blob) {
    if (blob.empty()) {
        sqlite3_bind_null(s, i);
    } else {
        sqlite3_bind_blob(s, i, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    }
}

std::optional<KeyKind> parse_kind(std::string_view text) {
    if (text == "issued") {
        return KeyKind::Issued;
    }
    if (text == "imported") {
        return KeyKind::Imported;
    }
    return std::nullopt;
}

// Reads a row selected with kKeyColumns. An unknown kind (hand-edited row)
// reads as an imported record with no secret: its MAC cannot match, so the
// key service refuses it.
KeyRecord read_key(sqlite3_stmt* s) {
    KeyRecord r;
    r.id = text_column(s, 0);
    r.owner_uid = static_cast<uint32_t>(sqlite3_column_int64(s, 1));
    const auto kind = parse_kind(text_column(s, 2));
    r.kind = kind.value_or(KeyKind::Imported);
    r.name = text_column(s, 3);
    r.description = text_column(s, 4);
    r.scopes = split_scopes(text_column(s, 5));
    r.created_usec = from_db(s, 6);
    r.expires_usec = from_db(s, 7);
    r.max_uses = from_db(s, 8);
    r.revoked = sqlite3_column_int64(s, 9) != 0;
    r.revoked_usec = from_db(s, 10);
    r.revoke_reason = text_column(s, 11);
    r.lookup = blob_column(s, 12);
    r.sealed_secret = blob_column(s, 13);
    r.mac = blob_column(s, 14);
    if (!kind) {
        r.mac.clear();
    }
    r.rate_limit_per_min = from_db(s, 15);
    r.prefix = text_column(s, 16);
    r.rotated_usec = from_db(s, 17);
    r.previous_lookup = blob_column(s, 18);
    r.grace_until_usec = from_db(s, 19);
    r.use_count = from_db(s, 20);
    r.last_used_usec = from_db(s, 21);
    return r;
}

// Binds the fields shared by INSERT and UPDATE, parameters 1-20 in the
// order of kKeyColumns (without use_count / last_used_usec).
void bind_key(sqlite3_stmt* s, const KeyRecord& r) {
    bind_text(s, 1, r.id);
    sqlite3_bind_int64(s, 2, r.owner_uid);
    bind_text(s, 3, kind_name(r.kind));
    bind_text(s, 4, r.name);
    bind_text(s, 5, r.description);
    bind_text(s, 6, join_scopes(r.scopes));
    sqlite3_bind_int64(s, 7, to_db(r.created_usec));
    sqlite3_bind_int64(s, 8, to_db(r.expires_usec));
    sqlite3_bind_int64(s, 9, to_db(r.max_uses));
    sqlite3_bind_int64(s, 10, r.revoked ? 1 : 0);
    sqlite3_bind_int64(s, 11, to_db(r.revoked_usec));
    bind_text(s, 12, r.revoke_reason);
    bind_blob_or_null(s, 13, r.lookup);
    bind_blob_or_null(s, 14, r.sealed_secret);
    sqlite3_bind_blob(s, 15, r.mac.data(), static_cast<int>(r.mac.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 16, to_db(r.rate_limit_per_min));
    bind_text(s, 17, r.prefix);
    sqlite3_bind_int64(s, 18, to_db(r.rotated_usec));
    bind_blob_or_null(s, 19, r.previous_lookup);
    sqlite3_bind_int64(s, 20, to_db(r.grace_until_usec));
}

// Resets a cached statement however its use ends.
class StatementUse {
  public:
    explicit StatementUse(sqlite3_stmt* s) : s_(s) {}
    ~StatementUse() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    StatementUse(const StatementUse&) = delete;
    StatementUse& operator=(const StatementUse&) = delete;

  private:
    sqlite3_stmt* s_;
};

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& path) {
    // An existing file of zero bytes is a database that lost its content
    // (truncated by a crash of the file system, a full disk, a careless
    // copy). SQLite would take it for a new, empty one, and a first start
    // would then seal a new master key over the old keyslots: refuse it.
    struct stat existing {};
    if (lstat(path.c_str(), &existing) == 0 && S_ISREG(existing.st_mode) && existing.st_size == 0) {
        return make_error(ErrorCode::Internal,
                          "The database " + path.string() +
                              " is empty (0 bytes): it was truncated or is damaged; refusing to "
                              "start on it. Restore it from a backup; if this is a first start "
                              "that was interrupted, remove the file and start again");
    }
    // Create the file ourselves so that it is 0600 whatever the umask; SQLite
    // gives the -wal and -shm files the same mode.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        return make_error(ErrorCode::Internal,
                          "Cannot open database " + path.string() + ": " + std::strerror(errno));
    }
    fchmod(fd, 0600);
    struct stat opened {};
    const uintmax_t size = fstat(fd, &opened) == 0 ? static_cast<uintmax_t>(opened.st_size) : 0;
    close(fd);

    sqlite3* db = nullptr;
    const int rc =
        sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, nullptr);
    std::unique_ptr<Store> store(new Store(db, path));
    if (rc != SQLITE_OK) {
        return store->failure("Cannot open database " + path.string());
    }
    // SQLite reads the header (magic, page size, page count against the
    // file's size) at the first statement and the schema at the first
    // prepare; check_integrity walks every page of a small store.
    auto ok = store->configure();
    if (ok) {
        ok = store->check_integrity(size);
    }
    if (ok) {
        ok = store->migrate();
    }
    if (!ok) {
        if (const auto damage = store->damage()) {
            return make_error(ErrorCode::Internal,
                              "The database " + path.string() +
                                  " is damaged or is not an SQLite database (" + *damage +
                                  "); refusing to start on it. Restore it from a backup, or move "
                                  "it away to start with an empty one (its keys are then lost)");
        }
        return ok.error();
    }
    return store;
}

void Store::finalize(sqlite3_stmt* statement) noexcept {
    sqlite3_finalize(statement);
}

Store::~Store() {
    statements_.clear();
    sqlite3_close_v2(db_);
}

Error Store::failure(std::string_view what) const {
    // SQLite reports a write that failed with EFBIG or EDQUOT as a plain
    // SQLITE_IOERR_WRITE and, here, no system errno (only ENOSPC becomes
    // SQLITE_FULL); the errno of the failed write is still in errno, as
    // nothing between the failing call and this one sets it.
    const int saved_errno = errno;
    if (db_ == nullptr) {
        return make_error(ErrorCode::Internal, std::string(what) + ": out of memory");
    }
    const int primary = sqlite3_extended_errcode(db_) & 0xff;
    const int os_error = sqlite3_system_errno(db_) != 0 ? sqlite3_system_errno(db_) : saved_errno;
    std::string detail = sqlite3_errmsg(db_);
    const bool io = primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN;
    if (io && os_error != 0) {
        // "disk I/O error" alone does not say that the disk is full.
        detail += std::string(" (") + std::strerror(os_error) + ")";
    }
    if (primary == SQLITE_FULL ||
        (primary == SQLITE_IOERR &&
         (os_error == ENOSPC || os_error == EDQUOT || os_error == EFBIG))) {
        return make_error(ErrorCode::StorageFull,
                          std::string(what) + ": " + detail + " writing " + path_.string());
    }
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
        return make_error(ErrorCode::Internal, std::string(what) + ": the database " +
                                                   path_.string() + " is damaged: " + detail);
    }
    if (primary == SQLITE_BUSY) {
        return make_error(ErrorCode::Internal,
                          std::string(what) + ": the database " + path_.string() +
                              " is in use by another process (another apikeyd on the same "
                              "state directory, or an sqlite3 shell); it must be ours alone");
    }
    return make_error(ErrorCode::Internal, std::string(what) + ": " + detail);
}

std::optional<std::string> Store::damage() const {
    if (!damage_found_by_check_.empty()) {
        return damage_found_by_check_;
    }
    const int primary = db_ ? sqlite3_extended_errcode(db_) & 0xff : SQLITE_OK;
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
        return std::string(sqlite3_errmsg(db_));
    }
    return std::nullopt;
}

Result<void> Store::check_integrity(uintmax_t file_size) {
    if (file_size > kQuickCheckMaxBytes) {
        return {};
    }
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA quick_check(8)", -1, &raw, nullptr) != SQLITE_OK) {
        return failure("Cannot check the database");
    }
    Statement check(raw);
    // One row "ok", or up to 8 rows that say what is wrong (page numbers,
    // table and index names; never a row's values).
    std::string problems;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(check.get())) == SQLITE_ROW) {
        const std::string row = text_column(check.get(), 0);
        if (row != "ok") {
            problems += (problems.empty() ? "" : "; ") + row;
        }
    }
    if (rc != SQLITE_DONE) {
        return failure("Cannot check the database");
    }
    if (!problems.empty()) {
        // Reported as damage, like SQLite's own SQLITE_CORRUPT.
        damage_found_by_check_ = "integrity check: " + problems;
        return make_error(ErrorCode::Internal, "integrity check: " + problems);
    }
    return {};
}

Result<void> Store::exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
        return failure("Database statement failed");
    }
    return {};
}

Result<void> Store::configure() {
    sqlite3_extended_result_codes(db_, 1);
    // The database file is ours alone; a busy wait only covers an
    // administrator's sqlite3 shell holding a read lock as the daemon starts.
    sqlite3_busy_timeout(db_, 2000);
    // Held from the first read until the store closes. Set before the WAL is
    // first touched, it keeps the WAL index in our memory (no -shm file) and
    // spares every read transaction the two fcntl() calls of WAL's shared
    // read lock, which were most of a lookup's cost on this kind of VM. It
    // also keeps every other SQLite connection (a second daemon, an sqlite3
    // shell) off the file while we run.
    if (auto ok = exec("PRAGMA locking_mode=EXCLUSIVE"); !ok) {
        return ok;
    }
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA journal_mode=WAL", -1, &raw, nullptr) != SQLITE_OK) {
        return failure("Cannot set WAL mode");
    }
    Statement journal(raw);
    if (sqlite3_step(journal.get()) != SQLITE_ROW || text_column(journal.get(), 0) != "wal") {
        return failure("Cannot set WAL mode");
    }
    return exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF;");
}

Result<void> Store::migrate() {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &raw, nullptr) != SQLITE_OK) {
        return failure("Cannot read the schema version");
    }
    Statement version(raw);
    if (sqlite3_step(version.get()) != SQLITE_ROW) {
        return failure("Cannot read the schema version");
    }
    const int64_t found = sqlite3_column_int64(version.get(), 0);
    // A statement still running holds a read lock that DROP INDEX waits on.
    version.reset();
    if (found > kSchemaVersion || found < 0) {
        return make_error(ErrorCode::Internal,
                          "The database has schema version " + std::to_string(found) +
                              ", newer than the " + std::to_string(kSchemaVersion) +
                              " this apikeyd knows; refusing to touch it (downgrade?)");
    }
    for (auto v = static_cast<int>(found); v < kSchemaVersion; ++v) {
        auto step = transaction([&]() -> Result<void> {
            if (auto ok = exec(kMigrations[v]); !ok) {
                return ok;
            }
            return exec(("PRAGMA user_version=" + std::to_string(v + 1)).c_str());
        });
        if (!step) {
            return make_error(ErrorCode::Internal, "Migration to schema version " +
                                                       std::to_string(v + 1) +
                                                       " failed: " + step.error().message);
        }
    }
    schema_version_ = kSchemaVersion;
    return {};
}

Result<void> Store::transaction(const std::function<Result<void>()>& body) {
    end_batch();
    if (auto ok = exec("BEGIN IMMEDIATE"); !ok) {
        return ok;
    }
    auto result = body();
    if (!result) {
        (void)exec("ROLLBACK");
        return result;
    }
    if (auto ok = exec("COMMIT"); !ok) {
        (void)exec("ROLLBACK");
        return ok;
    }
    return {};
}

Result<void> Store::begin_batch() {
    if (in_batch_) {
        return {};
    }
    if (auto ok = exec("BEGIN IMMEDIATE"); !ok) {
        return ok;
    }
    in_batch_ = true;
    return {};
}

Result<void> Store::commit_batch() {
    if (!in_batch_) {
        return {};
    }
    in_batch_ = false;
    Result<void> outcome;
    if (sqlite3_get_autocommit(db_)) {
        outcome = make_error(ErrorCode::Internal,
                             "The batch was rolled back by SQLite after an earlier error");
    } else if (auto ok = exec("COMMIT"); !ok) {
        outcome = ok;
        (void)exec("ROLLBACK");
    }
    if (batch_listener_) {
        batch_listener_(outcome);
    }
    return outcome;
}

void Store::end_batch() {
    // The batch's outcome goes to its listener; the write that follows
    // stands on its own whatever that was.
    (void)commit_batch();
}

Result<void> Store::batch_intact() const {
    if (in_batch_ && sqlite3_get_autocommit(db_)) {
        return make_error(ErrorCode::Internal,
                          "The batch was rolled back by SQLite after an earlier error");
    }
    return {};
}

Result<sqlite3_stmt*> Store::cached(const char* sql) {
    for (auto& [text, statement] : statements_) {
        if (text == sql) {
            return statement.get();
        }
    }
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK) {
        return failure("Cannot prepare statement");
    }
    statements_.emplace_back(sql, Statement(raw));
    return raw;
}

Result<void> Store::insert_key(const KeyRecord& record) {
    if (auto ok = batch_intact(); !ok) {
        return ok;
    }
    static const std::string sql = std::string("INSERT INTO keys (") + kKeyColumns +
                                   ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    auto s = cached(sql.c_str());
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    bind_key(*s, record);
    sqlite3_bind_int64(*s, 21, to_db(record.use_count));
    sqlite3_bind_int64(*s, 22, to_db(record.last_used_usec));
    if (sqlite3_step(*s) != SQLITE_DONE) {
        return failure("Cannot store key " + record.id);
    }
    return {};
}

Result<void> Store::update_key(const KeyRecord& record) {
    if (auto ok = batch_intact(); !ok) {
        return ok;
    }
    auto s = cached(
        "UPDATE keys SET owner_uid=?2, kind=?3, name=?4, description=?5, scopes=?6, "
        "created_usec=?7, expires_usec=?8, max_uses=?9, revoked=?10, revoked_usec=?11, "
        "revoke_reason=?12, lookup=?13, sealed_secret=?14, mac=?15, rate_limit_per_min=?16, "
        "prefix=?17, rotated_usec=?18, previous_lookup=?19, grace_until_usec=?20 WHERE id=?1");
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    bind_key(*s, record);
    if (sqlite3_step(*s) != SQLITE_DONE) {
        return failure("Cannot update key " + record.id);
    }
    if (sqlite3_changes(db_) != 1) {
        return make_error(ErrorCode::NotFound, "Key " + record.id + " vanished from the store");
    }
    return {};
}

Result<std::optional<KeyRecord>> Store::find_key(std::string_view id,
                                                 std::optional<uint32_t> owner) {
    static const std::string any = std::string("SELECT ") + kKeyColumns + " FROM keys WHERE id=?1";
    // keys_by_id_owner answers both misses (no such id, another owner's id)
    // from the index alone: neither reads the row.
    static const std::string mine = std::string("SELECT ") + kKeyColumns +
                                    " FROM keys INDEXED BY keys_by_id_owner"
                                    " WHERE id=?1 AND owner_uid=?2";
    auto s = cached(owner ? mine.c_str() : any.c_str());
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    bind_text(*s, 1, id);
    if (owner) {
        sqlite3_bind_int64(*s, 2, *owner);
    }
    const int rc = sqlite3_step(*s);
    if (rc == SQLITE_ROW) {
        return std::optional<KeyRecord>(read_key(*s));
    }
    if (rc == SQLITE_DONE) {
        return std::optional<KeyRecord>();
    }
    return failure("Cannot read key");
}

Result<std::optional<KeyRecord>> Store::find_key_by_lookup(std::span<const uint8_t> lookup) {
    static const std::string sql =
        std::string("SELECT ") + kKeyColumns + " FROM keys WHERE lookup=?";
    auto s = cached(sql.c_str());
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    sqlite3_bind_blob(*s, 1, lookup.data(), static_cast<int>(lookup.size()), SQLITE_STATIC);
    const int rc = sqlite3_step(*s);
    if (rc == SQLITE_ROW) {
        return std::optional<KeyRecord>(read_key(*s));
    }
    if (rc == SQLITE_DONE) {
        return std::optional<KeyRecord>();
    }
    return failure("Cannot look up key");
}

Result<std::optional<KeyRecord>> Store::find_key_by_previous_lookup(
    std::span<const uint8_t> lookup) {
    static const std::string sql =
        std::string("SELECT ") + kKeyColumns + " FROM keys WHERE previous_lookup=?";
    auto s = cached(sql.c_str());
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    sqlite3_bind_blob(*s, 1, lookup.data(), static_cast<int>(lookup.size()), SQLITE_STATIC);
    const int rc = sqlite3_step(*s);
    if (rc == SQLITE_ROW) {
        return std::optional<KeyRecord>(read_key(*s));
    }
    if (rc == SQLITE_DONE) {
        return std::optional<KeyRecord>();
    }
    return failure("Cannot look up key");
}

Result<std::vector<KeyRecord>> Store::list_keys(std::optional<uint32_t> owner,
                                                const std::optional<KeysAfter>& after,
                                                size_t limit) {
    // Without `after`, the cursor (-1, '') comes before every key.
    static const std::string all = std::string("SELECT ") + kKeyColumns +
                                   " FROM keys WHERE (created_usec, id) > (?2, ?3)"
                                   " ORDER BY created_usec, id LIMIT ?4";
    static const std::string mine =
        std::string("SELECT ") + kKeyColumns +
        " FROM keys WHERE owner_uid=?1 AND (created_usec, id) > (?2, ?3)"
        " ORDER BY created_usec, id LIMIT ?4";
    auto s = cached(owner ? mine.c_str() : all.c_str());
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    if (owner) {
        sqlite3_bind_int64(*s, 1, *owner);
    }
    sqlite3_bind_int64(*s, 2, after ? static_cast<sqlite3_int64>(after->created_usec) : -1);
    const std::string after_id = after ? after->id : "";
    sqlite3_bind_text(*s, 3, after_id.c_str(), static_cast<int>(after_id.size()), SQLITE_STATIC);
    // LIMIT -1: none.
    sqlite3_bind_int64(
        *s, 4, limit >= static_cast<size_t>(INT64_MAX) ? -1 : static_cast<sqlite3_int64>(limit));
    std::vector<KeyRecord> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) {
        out.push_back(read_key(*s));
    }
    if (rc != SQLITE_DONE) {
        return failure("Cannot list keys");
    }
    return out;
}

Result<uint64_t> Store::held_bytes(uint32_t owner) {
    auto s = cached(
        "SELECT total(length(CAST(name AS BLOB)) + length(CAST(description AS BLOB)) + "
        "length(CAST(scopes AS BLOB)) + length(CAST(revoke_reason AS BLOB)) + "
        "coalesce(length(sealed_secret), 0)) FROM keys WHERE owner_uid=?");
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    sqlite3_bind_int64(*s, 1, owner);
    if (sqlite3_step(*s) != SQLITE_ROW) {
        return failure("Cannot count what keys hold");
    }
    return static_cast<uint64_t>(sqlite3_column_double(*s, 0));
}

Result<uint64_t> Store::count_keys(std::optional<uint32_t> owner) {
    auto s =
        cached(owner ? "SELECT count(*) FROM keys WHERE owner_uid=?" : "SELECT count(*) FROM keys");
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    if (owner) {
        sqlite3_bind_int64(*s, 1, *owner);
    }
    if (sqlite3_step(*s) != SQLITE_ROW) {
        return failure("Cannot count keys");
    }
    return from_db(*s, 0);
}

Result<void> Store::apply_usage(const UsageBatch& batch) {
    return transaction([&]() -> Result<void> {
        if (auto ok = add_uses(batch.uses); !ok) {
            return ok;
        }
        if (auto ok =
                add_events(batch.events, batch.events_kept_per_key, batch.events_kept_per_caller);
            !ok) {
            return ok;
        }
        return add_days(batch.days, batch.drop_days_before);
    });
}

Result<void> Store::add_uses(std::span<const UsageDelta> deltas) {
    auto s = cached(
        "UPDATE keys SET use_count=use_count+?2, last_used_usec=max(last_used_usec, ?3) "
        "WHERE id=?1");
    if (!s) {
        return s.error();
    }
    for (const auto& delta : deltas) {
        StatementUse use(*s);
        bind_text(*s, 1, delta.id);
        sqlite3_bind_int64(*s, 2, to_db(delta.uses));
        sqlite3_bind_int64(*s, 3, to_db(delta.last_used_usec));
        if (sqlite3_step(*s) != SQLITE_DONE) {
            return failure("Cannot record usage");
        }
    }
    return {};
}

Result<void> Store::add_events(std::span<const NewEvent> events, size_t kept_per_key,
                               size_t kept_per_caller) {
    auto insert = cached(
        "INSERT INTO events (key_id, time_usec, action, result, caller_uid, caller_pid, "
        "caller_exe, caller_unit) VALUES (?,?,?,?,?,?,?,?)");
    // Everything older than the key's kept_per_key-th newest event goes; a
    // key with fewer has no such event, and the subquery is NULL.
    auto prune = cached(
        "DELETE FROM events WHERE key_id=?1 AND seq < (SELECT seq FROM events WHERE key_id=?1 "
        "ORDER BY seq DESC LIMIT 1 OFFSET ?2)");
    auto prune_caller = cached(
        "DELETE FROM events WHERE caller_uid=?1 AND seq < (SELECT seq FROM events WHERE "
        "caller_uid=?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)");
    if (!insert || !prune || !prune_caller) {
        return !insert ? insert.error() : !prune ? prune.error() : prune_caller.error();
    }
    std::unordered_set<std::string_view> touched;
    std::unordered_set<uint32_t> callers;
    for (const auto& event : events) {
        StatementUse use(*insert);
        bind_text(*insert, 1, event.key_id);
        sqlite3_bind_int64(*insert, 2, to_db(event.time_usec));
        bind_text(*insert, 3, event.action);
        bind_text(*insert, 4, event.result);
        sqlite3_bind_int64(*insert, 5, event.caller_uid);
        sqlite3_bind_int64(*insert, 6, event.caller_pid);
        bind_text(*insert, 7, event.caller_exe.view());
        bind_text(*insert, 8, event.caller_unit.view());
        if (sqlite3_step(*insert) != SQLITE_DONE) {
            return failure("Cannot record an event");
        }
        touched.insert(event.key_id);
        callers.insert(event.caller_uid);
    }
    for (const auto key_id : touched) {
        StatementUse use(*prune);
        bind_text(*prune, 1, key_id);
        sqlite3_bind_int64(*prune, 2, static_cast<int64_t>(kept_per_key) - 1);
        if (sqlite3_step(*prune) != SQLITE_DONE) {
            return failure("Cannot drop old events");
        }
    }
    for (const uint32_t uid : callers) {
        StatementUse use(*prune_caller);
        sqlite3_bind_int64(*prune_caller, 1, uid);
        sqlite3_bind_int64(*prune_caller, 2, static_cast<int64_t>(kept_per_caller) - 1);
        if (sqlite3_step(*prune_caller) != SQLITE_DONE) {
            return failure("Cannot drop old events");
        }
    }
    return {};
}

Result<void> Store::add_days(std::span<const DayCount> days, uint64_t drop_before) {
    auto upsert = cached(
        "INSERT INTO usage_days (key_id, day, ok, refused, unrecorded) VALUES (?1, ?2, ?3, ?4, "
        "?5) ON CONFLICT (key_id, day) DO UPDATE SET ok=ok+excluded.ok, "
        "refused=refused+excluded.refused, unrecorded=unrecorded+excluded.unrecorded");
    if (!upsert) {
        return upsert.error();
    }
    for (const auto& day : days) {
        StatementUse use(*upsert);
        bind_text(*upsert, 1, day.key_id);
        sqlite3_bind_int64(*upsert, 2, to_db(day.day));
        sqlite3_bind_int64(*upsert, 3, to_db(day.ok));
        sqlite3_bind_int64(*upsert, 4, to_db(day.refused));
        sqlite3_bind_int64(*upsert, 5, to_db(day.unrecorded));
        if (sqlite3_step(*upsert) != SQLITE_DONE) {
            return failure("Cannot record daily usage");
        }
    }
    if (drop_before == 0) {
        return {};
    }
    auto drop = cached("DELETE FROM usage_days WHERE day < ?");
    if (!drop) {
        return drop.error();
    }
    StatementUse use(*drop);
    sqlite3_bind_int64(*drop, 1, to_db(drop_before));
    if (sqlite3_step(*drop) != SQLITE_DONE) {
        return failure("Cannot drop old daily usage");
    }
    return {};
}

Result<std::vector<Store::Event>> Store::list_events(std::string_view key_id, uint64_t since_usec,
                                                     size_t limit) {
    auto s = cached(
        "SELECT key_id, time_usec, action, result, caller_uid, caller_pid, caller_exe, "
        "caller_unit FROM events WHERE key_id=? AND time_usec>=? ORDER BY seq DESC LIMIT ?");
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    bind_text(*s, 1, key_id);
    sqlite3_bind_int64(*s, 2, to_db(since_usec));
    sqlite3_bind_int64(*s, 3, static_cast<int64_t>(limit));
    std::vector<Event> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) {
        Event e;
        e.key_id = text_column(*s, 0);
        e.time_usec = from_db(*s, 1);
        e.action = text_column(*s, 2);
        e.result = text_column(*s, 3);
        e.caller_uid = static_cast<uint32_t>(sqlite3_column_int64(*s, 4));
        e.caller_pid = static_cast<uint32_t>(sqlite3_column_int64(*s, 5));
        e.caller_exe = text_column(*s, 6);
        e.caller_unit = text_column(*s, 7);
        out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) {
        return failure("Cannot list events");
    }
    return out;
}

Result<std::vector<Store::DayCount>> Store::list_days(std::string_view key_id, uint64_t first_day) {
    auto s = cached(
        "SELECT day, ok, refused, unrecorded FROM usage_days WHERE key_id=? AND day>=? "
        "ORDER BY day");
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    bind_text(*s, 1, key_id);
    sqlite3_bind_int64(*s, 2, to_db(first_day));
    std::vector<DayCount> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) {
        out.push_back(
            {std::string(key_id), from_db(*s, 0), from_db(*s, 1), from_db(*s, 2), from_db(*s, 3)});
    }
    if (rc != SQLITE_DONE) {
        return failure("Cannot list daily usage");
    }
    return out;
}

Result<std::optional<std::vector<uint8_t>>> Store::get_meta(std::string_view name) {
    auto s = cached("SELECT value FROM meta WHERE name=?");
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    bind_text(*s, 1, name);
    const int rc = sqlite3_step(*s);
    if (rc == SQLITE_ROW) {
        return std::optional<std::vector<uint8_t>>(blob_column(*s, 0));
    }
    if (rc == SQLITE_DONE) {
        return std::optional<std::vector<uint8_t>>();
    }
    return failure("Cannot read metadata");
}

Result<void> Store::set_meta(std::string_view name, std::span<const uint8_t> value) {
    end_batch();
    auto s = cached("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)");
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    bind_text(*s, 1, name);
    sqlite3_bind_blob(*s, 2, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(*s) != SQLITE_DONE) {
        return failure("Cannot write metadata");
    }
    return {};
}

Result<std::vector<KeyslotRecord>> Store::list_keyslots() {
    auto s = cached(
        "SELECT id, type, created_usec, params, sealed FROM keyslots ORDER BY created_usec, id");
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    std::vector<KeyslotRecord> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) {
        KeyslotRecord r;
        r.id = text_column(*s, 0);
        r.type = text_column(*s, 1);
        r.created_usec = from_db(*s, 2);
        // Protectors write flat objects. A deeply nested value (a damaged or
        // hand-edited row) is refused: copying it recurses once per level and
        // would overflow the stack (found by tests/fuzz/fuzz_database).
        constexpr int kMaxParamsDepth = 16;
        bool too_deep = false;
        r.params = nlohmann::json::parse(
            text_column(*s, 3),
            [&too_deep](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
                too_deep = too_deep || depth > kMaxParamsDepth;
                return !too_deep;
            },
            false);
        if (too_deep || r.params.is_discarded() || !r.params.is_object()) {
            return make_error(ErrorCode::Internal,
                              "Keyslot " + r.id + " has unreadable parameters in the database");
        }
        r.sealed = blob_column(*s, 4);
        out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) {
        return failure("Cannot list keyslots");
    }
    return out;
}

Result<void> Store::insert_keyslot(const KeyslotRecord& record) {
    end_batch();
    auto s = cached(
        "INSERT INTO keyslots (id, type, created_usec, params, sealed) VALUES (?, ?, ?, ?, ?)");
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    bind_text(*s, 1, record.id);
    bind_text(*s, 2, record.type);
    sqlite3_bind_int64(*s, 3, to_db(record.created_usec));
    bind_text(*s, 4, record.params.dump());
    // A zero-length blob, never NULL: some protectors keep nothing here.
    sqlite3_bind_zeroblob(*s, 5, 0);
    if (!record.sealed.empty()) {
        sqlite3_bind_blob(*s, 5, record.sealed.data(), static_cast<int>(record.sealed.size()),
                          SQLITE_TRANSIENT);
    }
    if (sqlite3_step(*s) != SQLITE_DONE) {
        return failure("Cannot store keyslot " + record.id);
    }
    return {};
}

Result<void> Store::delete_keyslot(std::string_view id) {
    end_batch();
    auto s = cached("DELETE FROM keyslots WHERE id=?");
    if (!s) {
        return s.error();
    }
    StatementUse use(*s);
    bind_text(*s, 1, id);
    if (sqlite3_step(*s) != SQLITE_DONE) {
        return failure("Cannot remove keyslot");
    }
    if (sqlite3_changes(db_) != 1) {
        return make_error(ErrorCode::NotFound, "No keyslot with that id");
    }
    return {};
}

}  // namespace apikeyd
