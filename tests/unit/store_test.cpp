#include "daemon/store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

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
    ASSERT_TRUE((*store)->apply_usage({.uses = deltas}));
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
