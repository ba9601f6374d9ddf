#pragma once
// A KeyService over a real Store in a temp dir, unlocked by a software
// keyslot, with a clock the test moves: what the key service tests share.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/commit_scheduler.hpp"
#include "daemon/key_service.hpp"
#include "daemon/keyslot_manager.hpp"
#include "daemon/keyslots/software_keyslot.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/unit/fake_clock.hpp"

namespace apikeyd {

inline const Caller kRoot{0, 1};
inline const Caller kAlice{1000, 2};
inline const Caller kBob{1001, 3};

class KeyServiceTest : public ::testing::Test {
  protected:
    void SetUp() override {
        open();
        SoftwareKeyslot software(dir.path());
        ASSERT_TRUE(keyslots->initialize(software));
    }

    // (Re)opens everything on the same state directory, as a restart does.
    void open() {
        service.reset();
        commits.reset();
        keyslots.reset();
        store.reset();
        auto opened = Store::open(dir / "apikeyd.db");
        ASSERT_TRUE(opened) << opened.error().message;
        store = std::move(*opened);
        keyslots = std::make_unique<KeyslotManager>(*store, dir.path(), clock);
        commits = std::make_unique<CommitScheduler>(*store);
        service = std::make_unique<KeyService>(*store, *keyslots, clock, *commits);
    }

    void restart() {
        open();
        ASSERT_TRUE(*keyslots->initialized());
        keyslots->unlock();
        ASSERT_FALSE(keyslots->locked()) << keyslots->lock_reason();
    }

    CreatedKey create(const Caller& caller, std::vector<std::string> scopes = {"read"},
                      std::optional<uint64_t> expires = std::nullopt, uint64_t max_uses = 0) {
        CreateKeyRequest request;
        request.name = "test key";
        request.scopes = std::move(scopes);
        request.expires_in_sec = expires;
        request.max_uses = max_uses;
        auto created = service->create_key(caller, request);
        EXPECT_TRUE(created) << created.error().message;
        return std::move(*created);
    }

    std::string verify_reason(const Caller& caller, std::string_view key,
                              std::string_view scope = "") {
        auto v = service->verify_key(caller, key, scope);
        EXPECT_TRUE(v) << v.error().message;
        return v->valid ? "valid" : v->reason;
    }

    std::string import(const Caller& caller, std::string_view secret) {
        ImportRequest request;
        request.name = "imported";
        request.secret = SecretBuffer::from_string(secret);
        auto imported = service->import_secret(caller, std::move(request));
        EXPECT_TRUE(imported) << imported.error().message;
        return imported->id;
    }

    // The store holds its database exclusively while open, as the daemon
    // does, so these two close everything, touch the file on their own
    // connection and open it again: an edit by hand while apikeyd is stopped.
    void sql(const std::string& statement) {
        close();
        sql_on_closed_store(statement);
        restart();
    }

    uint64_t count_rows(const std::string& table) {
        close();
        const uint64_t count = count_rows_on_closed_store(table);
        restart();
        return count;
    }

  private:
    void close() {
        service.reset();
        commits.reset();
        keyslots.reset();
        store.reset();
    }

    void sql_on_closed_store(const std::string& statement) {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open((dir / "apikeyd.db").c_str(), &db), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(db, statement.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
            << sqlite3_errmsg(db);
        sqlite3_close(db);
    }

    uint64_t count_rows_on_closed_store(const std::string& table) {
        sqlite3* db = nullptr;
        EXPECT_EQ(sqlite3_open((dir / "apikeyd.db").c_str(), &db), SQLITE_OK);
        sqlite3_stmt* statement = nullptr;
        const std::string query = "SELECT count(*) FROM " + table;
        uint64_t count = 0;
        if (sqlite3_prepare_v2(db, query.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
            sqlite3_step(statement) == SQLITE_ROW) {
            count = static_cast<uint64_t>(sqlite3_column_int64(statement, 0));
        }
        sqlite3_finalize(statement);
        sqlite3_close(db);
        return count;
    }

  protected:
    test::TempDir dir{"apikeyd-service"};
    test::FakeClock clock;
    std::unique_ptr<Store> store;
    std::unique_ptr<KeyslotManager> keyslots;
    std::unique_ptr<CommitScheduler> commits;
    std::unique_ptr<KeyService> service;
};

}  // namespace apikeyd
