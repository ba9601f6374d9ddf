#include "daemon/store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <cstdio>

#include "daemon/keyslots/keyslot.hpp"
#include "tests/support/temp_dir.hpp"

namespace apikeyd {
namespace {

KeyRecord sample_key(std::string id, uint32_t owner, uint64_t created) {
    KeyRecord r;
    r.id = std::move(id);
    r.owner_uid = owner;
    r.name = "name of " + r.id;
    r.description = "line\nline";
    r.scopes = {"models:*", "read"};
    r.created_usec = created;
    r.expires_usec = created + 5;
    r.max_uses = 9;
    r.lookup = std::vector<uint8_t>(32, static_cast<uint8_t>(created));
    r.mac = std::vector<uint8_t>(32, 0xAB);
    return r;
}

void run_sql(const std::filesystem::path& path, const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
}

class StoreTest : public ::testing::Test {
  protected:
    test::TempDir dir{"apikeyd-store"};
    std::filesystem::path path = dir / "apikeyd.db";
};

TEST_F(StoreTest, CreatesAPrivateDatabaseAtTheCurrentSchema) {
    auto store = Store::open(path);
    ASSERT_TRUE(store) << store.error().message;
    EXPECT_EQ((*store)->schema_version(), Store::kSchemaVersion);
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(StoreTest, RoundTripsEveryKeyField) {
    auto store = Store::open(path);
    ASSERT_TRUE(store);
    KeyRecord imported = sample_key("k_bbbbbbbbbbbb", 1000, 20);
    imported.kind = KeyKind::Imported;
    imported.lookup.clear();
    imported.sealed_secret = {1, 2, 0, 3};
    ASSERT_TRUE((*store)->insert_key(sample_key("k_aaaaaaaaaaaa", 0, 10)));
    ASSERT_TRUE((*store)->insert_key(imported));

    auto found = (*store)->find_key("k_bbbbbbbbbbbb");
    ASSERT_TRUE(found && *found);
    const KeyRecord& r = **found;
    EXPECT_EQ(r.owner_uid, 1000u);
    EXPECT_EQ(r.kind, KeyKind::Imported);
    EXPECT_EQ(r.name, "name of k_bbbbbbbbbbbb");
    EXPECT_EQ(r.description, "line\nline");
    EXPECT_EQ(r.scopes, (std::vector<std::string>{"models:*", "read"}));
    EXPECT_EQ(r.created_usec, 20u);
    EXPECT_EQ(r.expires_usec, 25u);
    EXPECT_EQ(r.max_uses, 9u);
    EXPECT_TRUE(r.lookup.empty());
    EXPECT_EQ(r.sealed_secret, (std::vector<uint8_t>{1, 2, 0, 3}));
    EXPECT_EQ(r.mac, std::vector<uint8_t>(32, 0xAB));

    auto by_lookup = (*store)->find_key_by_lookup(std::vector<uint8_t>(32, 10));
    ASSERT_TRUE(by_lookup && *by_lookup);
    EXPECT_EQ((*by_lookup)->id, "k_aaaaaaaaaaaa");
    auto missing = (*store)->find_key_by_lookup(std::vector<uint8_t>(32, 11));
    ASSERT_TRUE(missing);
    EXPECT_FALSE(*missing);
}

TEST_F(StoreTest, ListsAndCountsPerOwnerInCreationOrder) {
    auto store = Store::open(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->insert_key(sample_key("k_cccccccccccc", 1000, 30)));
    ASSERT_TRUE((*store)->insert_key(sample_key("k_aaaaaaaaaaaa", 1000, 10)));
    ASSERT_TRUE((*store)->insert_key(sample_key("k_bbbbbbbbbbbb", 0, 20)));
    auto mine = (*store)->list_keys(1000u);
    ASSERT_TRUE(mine);
    ASSERT_EQ(mine->size(), 2u);
    EXPECT_EQ((*mine)[0].id, "k_aaaaaaaaaaaa");
    EXPECT_EQ((*mine)[1].id, "k_cccccccccccc");
    EXPECT_EQ(*(*store)->count_keys(std::nullopt), 3u);
    EXPECT_EQ(*(*store)->count_keys(0u), 1u);
}

TEST_F(StoreTest, CountsTheBytesAnOwnersKeysHold) {
    auto store = Store::open(path);
    ASSERT_TRUE(store);
    KeyRecord wide = sample_key("k_aaaaaaaaaaaa", 1000, 10);
    wide.name = "\u00e9t\u00e9";  // 5 bytes, 3 characters
    wide.revoke_reason = "old";
    wide.sealed_secret = {1, 2, 3, 4, 5, 6, 7};
    ASSERT_TRUE((*store)->insert_key(wide));
    ASSERT_TRUE((*store)->insert_key(sample_key("k_bbbbbbbbbbbb", 1000, 20)));
    ASSERT_TRUE((*store)->insert_key(sample_key("k_cccccccccccc", 0, 30)));
    // name + description + "models:* read" + revoke reason + sealed secret
    EXPECT_EQ(*(*store)->held_bytes(1000u), (5 + 9 + 13 + 3 + 7) + (22 + 9 + 13));
    EXPECT_EQ(*(*store)->held_bytes(1001u), 0u);
}

TEST_F(StoreTest, AKeyLookedUpForItsOwnerIsFoundOnlyForThem) {
    auto store = Store::open(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->insert_key(sample_key("k_aaaaaaaaaaaa", 1000, 10)));
    EXPECT_TRUE((*store)->find_key("k_aaaaaaaaaaaa", 1000u)->has_value());
    EXPECT_FALSE((*store)->find_key("k_aaaaaaaaaaaa", 1001u)->has_value());
    EXPECT_FALSE((*store)->find_key("k_bbbbbbbbbbbb", 1000u)->has_value());
    EXPECT_TRUE((*store)->find_key("k_aaaaaaaaaaaa")->has_value()) << "without an owner: any";
}

TEST_F(StoreTest, UpdatesEverythingButUsageAndAddsUsageInBatches) {
    auto store = Store::open(path);
    ASSERT_TRUE(store);
    KeyRecord r = sample_key("k_aaaaaaaaaaaa", 1000, 10);
    ASSERT_TRUE((*store)->insert_key(r));
    r.revoked = true;
    r.revoked_usec = 77;
    r.revoke_reason = "leaked";
    r.use_count = 12345;  // ignored by update_key
    ASSERT_TRUE((*store)->update_key(r));
    const Store::UsageDelta deltas[] = {{"k_aaaaaaaaaaaa", 3, 500}, {"k_aaaaaaaaaaaa", 2, 400}};
    ASSERT_TRUE((*store)->apply_usage({.uses = deltas, .events = {}, .days = {}}));
    auto found = (*store)->find_key("k_aaaaaaaaaaaa");
    ASSERT_TRUE(found && *found);
    EXPECT_TRUE((*found)->revoked);
    EXPECT_EQ((*found)->revoked_usec, 77u);
    EXPECT_EQ((*found)->revoke_reason, "leaked");
    EXPECT_EQ((*found)->use_count, 5u);
    EXPECT_EQ((*found)->last_used_usec, 500u);

    KeyRecord ghost = sample_key("k_zzzzzzzzzzzz", 1, 1);
    const auto missing = (*store)->update_key(ghost);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
}

TEST_F(StoreTest, RefusesADuplicateLookupValue) {
    auto store = Store::open(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->insert_key(sample_key("k_aaaaaaaaaaaa", 0, 10)));
    EXPECT_FALSE((*store)->insert_key(sample_key("k_bbbbbbbbbbbb", 0, 10)));
}

TEST_F(StoreTest, RollsBackAFailedTransaction) {
    auto store = Store::open(path);
    ASSERT_TRUE(store);
    const auto result = (*store)->transaction([&]() -> Result<void> {
        if (auto ok = (*store)->insert_key(sample_key("k_aaaaaaaaaaaa", 0, 10)); !ok) {
            return ok;
        }
        return make_error(ErrorCode::Internal, "changed my mind");
    });
    EXPECT_FALSE(result);
    EXPECT_EQ(*(*store)->count_keys(std::nullopt), 0u);
}

// Makes the COMMIT of any transaction that stored a key named `name` fail,
// as a full or failing disk would: a deferred foreign key is only checked
// at COMMIT.
void fail_commits_storing(const std::filesystem::path& path, const std::string& name) {
    const std::string sql =
        "CREATE TABLE doom_parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE doom (parent INTEGER REFERENCES doom_parent (id) "
        "DEFERRABLE INITIALLY DEFERRED);"
        "CREATE TRIGGER doom_on_insert AFTER INSERT ON keys WHEN NEW.name = '" +
        name + "' BEGIN INSERT INTO doom VALUES (42); END;";
    run_sql(path, sql.c_str());
}

TEST_F(StoreTest, ABatchCommitsManyInsertsAtOnce) {
    constexpr int kKeys = 100;
    auto insert_keys = [](Store& store, int first) {
        for (int i = first; i < first + kKeys; ++i) {
            char id[16];
            std::snprintf(id, sizeof id, "k_%012d", i);
            ASSERT_TRUE(store.insert_key(sample_key(id, 0, static_cast<uint64_t>(i + 1))));
        }
    };
    {
        // Closed before its commit, as by a crash: nothing of it was written.
        auto store = Store::open(path);
        ASSERT_TRUE(store);
        ASSERT_TRUE((*store)->begin_batch());
        insert_keys(**store, 0);
        EXPECT_EQ(*(*store)->count_keys(std::nullopt), static_cast<uint64_t>(kKeys))
            << "the batch's own changes are visible to the store at once";
    }
    auto store = Store::open(path);
    ASSERT_TRUE(store);
    EXPECT_EQ(*(*store)->count_keys(std::nullopt), 0u) << "nothing is committed before the batch";

    std::vector<bool> outcomes;
    (*store)->on_batch_end([&](const Result<void>& outcome) { outcomes.push_back(outcome.ok()); });
    ASSERT_TRUE((*store)->begin_batch());
    ASSERT_TRUE((*store)->begin_batch()) << "joining the open batch";
    insert_keys(**store, 0);
    EXPECT_TRUE((*store)->in_batch());
    ASSERT_TRUE((*store)->commit_batch());
    EXPECT_FALSE((*store)->in_batch());
    EXPECT_EQ(outcomes, std::vector<bool>{true});
    EXPECT_TRUE((*store)->commit_batch()) << "no batch, nothing to do";
    EXPECT_EQ(outcomes.size(), 1u);

    store->reset();
    auto reopened = Store::open(path);
    ASSERT_TRUE(reopened);
    EXPECT_EQ(*(*reopened)->count_keys(std::nullopt), static_cast<uint64_t>(kKeys));
}

// The daemon holds its database for as long as it runs: a second apikeyd on
// the same state directory (or anything else) cannot open it meanwhile, and
// is told why.
TEST_F(StoreTest, ASecondOpenOfAHeldDatabaseIsRefusedNamingTheCause) {
    auto store = Store::open(path);
    ASSERT_TRUE(store) << store.error().message;
    auto second = Store::open(path);
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().message.find("in use by another process"), std::string::npos)
        << second.error().message;
    EXPECT_NE(second.error().message.find(path.string()), std::string::npos)
        << second.error().message;
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    EXPECT_NE(sqlite3_exec(db, "SELECT count(*) FROM keys", nullptr, nullptr, nullptr), SQLITE_OK)
        << "another connection read the held database";
    sqlite3_close(db);

    store->reset();
    EXPECT_TRUE(Store::open(path)) << "free again once the first store is closed";
}

TEST_F(StoreTest, AFailedBatchCommitUndoesEveryChangeAndSaysSo) {
    {
        auto created = Store::open(path);
        ASSERT_TRUE(created);
    }
    fail_commits_storing(path, "name of k_doomeddoomed");
    auto store = Store::open(path);
    ASSERT_TRUE(store);
    KeyRecord before = sample_key("k_aaaaaaaaaaaa", 0, 1);
    ASSERT_TRUE((*store)->insert_key(before));
    std::vector<bool> outcomes;
    (*store)->on_batch_end([&](const Result<void>& outcome) { outcomes.push_back(outcome.ok()); });

    ASSERT_TRUE((*store)->begin_batch());
    ASSERT_TRUE((*store)->insert_key(sample_key("k_bbbbbbbbbbbb", 0, 2)));
    ASSERT_TRUE((*store)->insert_key(sample_key("k_doomeddoomed", 0, 3)));
    before.revoked = true;
    ASSERT_TRUE((*store)->update_key(before));
    EXPECT_FALSE((*store)->commit_batch());

    EXPECT_EQ(outcomes, std::vector<bool>{false});
    EXPECT_FALSE((*store)->in_batch());
    EXPECT_FALSE((*store)->find_key("k_bbbbbbbbbbbb")->has_value());
    EXPECT_FALSE((*store)->find_key("k_doomeddoomed")->has_value());
    EXPECT_FALSE((*store)->find_key("k_aaaaaaaaaaaa")->value().revoked);
    EXPECT_TRUE((*store)->insert_key(sample_key("k_cccccccccccc", 0, 4)))
        << "the store works on after a failed batch";
}

TEST_F(StoreTest, ATransactionCommitsTheOpenBatchFirst) {
    auto store = Store::open(path);
    ASSERT_TRUE(store);
    std::vector<bool> outcomes;
    (*store)->on_batch_end([&](const Result<void>& outcome) { outcomes.push_back(outcome.ok()); });
    ASSERT_TRUE((*store)->begin_batch());
    ASSERT_TRUE((*store)->insert_key(sample_key("k_aaaaaaaaaaaa", 0, 1)));
    const auto result = (*store)->transaction([&]() -> Result<void> {
        if (auto ok = (*store)->insert_key(sample_key("k_bbbbbbbbbbbb", 0, 2)); !ok) {
            return ok;
        }
        return make_error(ErrorCode::Internal, "changed my mind");
    });
    EXPECT_FALSE(result);
    EXPECT_EQ(outcomes, std::vector<bool>{true});
    EXPECT_FALSE((*store)->in_batch());
    EXPECT_TRUE((*store)->find_key("k_aaaaaaaaaaaa")->has_value()) << "the batch stands on its own";
    EXPECT_FALSE((*store)->find_key("k_bbbbbbbbbbbb")->has_value());
}

TEST_F(StoreTest, KeepsKeyslotsAndMetadata) {
    {
        auto store = Store::open(path);
        ASSERT_TRUE(store);
        KeyslotRecord slot;
        slot.id = "ks_abcdefgh";
        slot.type = "software";
        slot.created_usec = 42;
        slot.params = {{"file", "x"}};
        ASSERT_TRUE((*store)->insert_keyslot(slot));
        const uint8_t value[] = {9, 8, 7};
        ASSERT_TRUE((*store)->set_meta("check", value));
    }
    auto store = Store::open(path);
    ASSERT_TRUE(store);
    auto slots = (*store)->list_keyslots();
    ASSERT_TRUE(slots);
    ASSERT_EQ(slots->size(), 1u);
    EXPECT_EQ((*slots)[0].type, "software");
    EXPECT_EQ((*slots)[0].params["file"], "x");
    EXPECT_TRUE((*slots)[0].sealed.empty());
    auto meta = (*store)->get_meta("check");
    ASSERT_TRUE(meta && *meta);
    EXPECT_EQ(**meta, (std::vector<uint8_t>{9, 8, 7}));
    EXPECT_FALSE(*(*store)->get_meta("absent"));
}

TEST_F(StoreTest, RefusesASchemaNewerThanItKnows) {
    { ASSERT_TRUE(Store::open(path)); }
    run_sql(path, "PRAGMA user_version=99");
    auto store = Store::open(path);
    ASSERT_FALSE(store);
    EXPECT_NE(store.error().message.find("99"), std::string::npos);
}

TEST_F(StoreTest, RefusesAFileThatIsNotADatabase) {
    test::write_file(path, std::string(4096, 'x'));
    auto store = Store::open(path);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error().code, ErrorCode::Internal);
}

}  // namespace
}  // namespace apikeyd
