// The managing half of a key's life in the key service: rotation with a
// grace period, updates, per-key rate limits, Sign, IdentifyKey, and the
// audit (events and per-day counters) with its retention bound.

#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "common/key_format.hpp"
#include "daemon/crypto.hpp"
#include "daemon/record_seal.hpp"
#include "tests/unit/key_service_fixture.hpp"

namespace apikeyd {
namespace {

class KeyLifecycleTest : public KeyServiceTest {
  protected:
    KeyInfo info(const std::string& id, const Caller& caller = kAlice) {
        auto got = service->get_key(caller, id);
        EXPECT_TRUE(got) << got.error().message;
        return got ? *got : KeyInfo{};
    }
    std::vector<UsageEvent> events(const std::string& id, uint32_t limit = 1000) {
        auto got = service->usage(kAlice, id, 0, limit);
        EXPECT_TRUE(got) << got.error().message;
        return got ? *got : std::vector<UsageEvent>{};
    }
};

TEST_F(KeyLifecycleTest, RotationKeepsTheKeyAndTheOldTextWorksUntilTheGraceEnds) {
    CreateKeyRequest request;
    request.name = "rotated";
    request.scopes = {"read"};
    request.prefix = "svc";
    auto created = service->create_key(kAlice, request);
    ASSERT_TRUE(created);
    const std::string old_text(created->key_text.view());

    auto rotated = service->rotate_key(kAlice, created->id, 60);
    ASSERT_TRUE(rotated) << rotated.error().message;
    const std::string new_text(rotated->key_text.view());
    EXPECT_NE(new_text, old_text);
    EXPECT_TRUE(new_text.starts_with("svc_")) << "the prefix is kept";
    EXPECT_TRUE(key_format::parse(new_text));

    auto v = service->verify_key(kAlice, new_text, "read");
    ASSERT_TRUE(v && v->valid);
    EXPECT_EQ(v->info->id, created->id);
    EXPECT_EQ(verify_reason(kAlice, old_text, "read"), "valid");
    const KeyInfo during = info(created->id);
    EXPECT_EQ(during.rotated_usec, clock.now_usec());
    EXPECT_EQ(during.grace_until_usec, clock.now_usec() + 60 * kUsecPerSec);

    clock.advance_sec(59);
    EXPECT_EQ(verify_reason(kAlice, old_text), "valid");
    clock.advance_sec(1);
    EXPECT_EQ(verify_reason(kAlice, old_text), "rotated");
    EXPECT_EQ(verify_reason(kAlice, new_text), "valid");
    EXPECT_EQ(info(created->id).grace_until_usec, 0u);

    // It survives a restart: the record's MAC covers the rotation.
    restart();
    EXPECT_EQ(verify_reason(kAlice, new_text), "valid");
    EXPECT_EQ(verify_reason(kAlice, old_text), "rotated");
}

TEST_F(KeyLifecycleTest, ANewRotationEndsThePreviousGraceAtOnce) {
    const auto created = create(kAlice);
    const std::string first(created.key_text.view());
    auto second = service->rotate_key(kAlice, created.id, 3600);
    ASSERT_TRUE(second);
    const std::string second_text(second->key_text.view());
    auto third = service->rotate_key(kAlice, created.id, 0);
    ASSERT_TRUE(third);
    EXPECT_EQ(verify_reason(kAlice, first), "unknown");
    EXPECT_EQ(verify_reason(kAlice, second_text), "rotated");
    EXPECT_EQ(verify_reason(kAlice, third->key_text.view()), "valid");
}

TEST_F(KeyLifecycleTest, RotationRefusesWhatCannotBeRotated) {
    const auto created = create(kAlice);
    const auto expect = [&](const Result<RotatedKey>& r, ErrorCode code, const std::string& words) {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, code) << r.error().message;
        EXPECT_NE(r.error().message.find(words), std::string::npos) << r.error().message;
    };
    expect(service->rotate_key(kAlice, created.id, KeyService::kMaxGraceSec + 1),
           ErrorCode::InvalidArgument, "90 days");
    expect(service->rotate_key(kBob, created.id, 0), ErrorCode::NotFound, "not yours");
    expect(service->rotate_key(kAlice, import(kAlice, "s3cret"), 0), ErrorCode::InvalidArgument,
           "imported secret");
    const auto expiring = create(kAlice, {}, 10);
    clock.advance_sec(10);
    expect(service->rotate_key(kAlice, expiring.id, 0), ErrorCode::Expired, "UpdateKey");
    ASSERT_TRUE(service->revoke_key(kAlice, created.id, "done"));
    expect(service->rotate_key(kAlice, created.id, 0), ErrorCode::Revoked, "revoked");
    // Root may rotate anyone's key.
    const auto bobs = create(kBob);
    EXPECT_TRUE(service->rotate_key(kRoot, bobs.id, 0));
}

// The bus layer sends a change's signal to the key's owner (and root) only,
// so each change names the owner, also when root makes it.
TEST_F(KeyLifecycleTest, EveryChangeNamesTheKeysOwnerAlsoWhenRootMakesIt) {
    const auto bobs = create(kBob);
    EXPECT_EQ(bobs.owner_uid, kBob.uid);
    KeyChanges changes;
    changes.name = "renamed by root";
    const auto updated = service->update_key(kRoot, bobs.id, changes);
    ASSERT_TRUE(updated) << updated.error().message;
    EXPECT_EQ(updated->id, bobs.id);
    EXPECT_EQ(updated->owner_uid, kBob.uid);
    const auto rotated = service->rotate_key(kRoot, bobs.id, 0);
    ASSERT_TRUE(rotated) << rotated.error().message;
    EXPECT_EQ(rotated->owner_uid, kBob.uid);
    const auto revoked = service->revoke_key(kRoot, bobs.id, "");
    ASSERT_TRUE(revoked) << revoked.error().message;
    EXPECT_EQ(revoked->id, bobs.id);
    EXPECT_EQ(revoked->owner_uid, kBob.uid);

    ImportRequest request;
    request.name = "imported by alice";
    request.secret = SecretBuffer::from_string("s3cret");
    const auto imported = service->import_secret(kAlice, std::move(request));
    ASSERT_TRUE(imported) << imported.error().message;
    EXPECT_EQ(imported->owner_uid, kAlice.uid);
}

TEST_F(KeyLifecycleTest, UpdateChangesWhatIsGivenAndTheRecordStaysSealed) {
    const auto created = create(kAlice, {"read"});
    KeyChanges changes;
    changes.name = "renamed";
    changes.description = "now with a description";
    changes.scopes = std::vector<std::string>{"write", "read"};
    changes.expires_in_sec = 3600;
    changes.max_uses = 5;
    changes.rate_limit_per_min = 7;
    ASSERT_TRUE(service->update_key(kAlice, created.id, changes));
    restart();
    KeyInfo updated = info(created.id);
    EXPECT_EQ(updated.name, "renamed");
    EXPECT_EQ(updated.description, "now with a description");
    EXPECT_EQ(updated.scopes, (std::vector<std::string>{"read", "write"}));
    EXPECT_EQ(updated.expires_usec, clock.now_usec() + 3600 * kUsecPerSec);
    EXPECT_EQ(updated.max_uses, 5u);
    EXPECT_EQ(updated.rate_limit_per_min, 7u);
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view(), "write"), "valid");

    KeyChanges forever;
    forever.never_expires = true;
    ASSERT_TRUE(service->update_key(kAlice, created.id, forever));
    EXPECT_EQ(info(created.id).expires_usec, 0u);
    EXPECT_EQ(info(created.id).name, "renamed") << "what is not given stays";
}

TEST_F(KeyLifecycleTest, UpdateRefusesNothingContradictionsAndWhatTheKindLacks) {
    const auto created = create(kAlice);
    const auto refused = [&](const std::string& id, const KeyChanges& changes,
                             const std::string& words,
                             ErrorCode code = ErrorCode::InvalidArgument) {
        const auto r = service->update_key(kAlice, id, changes);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, code);
        EXPECT_NE(r.error().message.find(words), std::string::npos) << r.error().message;
    };
    refused(created.id, KeyChanges{}, "Nothing to change");
    KeyChanges both;
    both.expires_in_sec = 60;
    both.never_expires = true;
    refused(created.id, both, "not both");
    KeyChanges bad_scope;
    bad_scope.scopes = std::vector<std::string>{"No Spaces"};
    refused(created.id, bad_scope, "scope");
    KeyChanges scopes;
    scopes.scopes = std::vector<std::string>{"read"};
    refused(import(kAlice, "s3cret"), scopes, "imported secret");
    ASSERT_TRUE(service->revoke_key(kAlice, created.id, ""));
    KeyChanges name;
    name.name = "again";
    refused(created.id, name, "revoked", ErrorCode::Revoked);
}

TEST_F(KeyLifecycleTest, AKeysRateLimitRefusesThatKeyOnlyUntilTheNextMinute) {
    CreateKeyRequest request;
    request.name = "limited";
    request.rate_limit_per_min = 3;
    auto limited = service->create_key(kAlice, request);
    ASSERT_TRUE(limited);
    const auto other = create(kAlice);
    // Start at a minute boundary so the window is whole.
    clock.advance_sec(60 - (clock.now_usec() / kUsecPerSec) % 60);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(verify_reason(kAlice, limited->key_text.view()), "valid");
    }
    EXPECT_EQ(verify_reason(kAlice, limited->key_text.view()), "rate_limited");
    EXPECT_EQ(verify_reason(kAlice, other.key_text.view()), "valid") << "other keys unaffected";
    EXPECT_EQ(info(limited->id).use_count, 3u) << "a refused verification is not a use";
    clock.advance_sec(60);
    EXPECT_EQ(verify_reason(kAlice, limited->key_text.view()), "valid");
}

TEST_F(KeyLifecycleTest, SignIsTheHmacOfTheImportedSecretAndCountsAUse) {
    const std::string id = import(kAlice, "webhook-secret");
    const std::string payload = "{\"event\":\"push\"}";
    auto mac = service->sign(kAlice, id, "hmac-sha256", crypto::bytes_of(payload));
    ASSERT_TRUE(mac) << mac.error().message;
    const auto secret = SecretBuffer::from_string("webhook-secret");
    const auto expected = crypto::hmac_sha256(secret.span(), crypto::bytes_of(payload));
    ASSERT_TRUE(expected);
    EXPECT_EQ(std::vector<uint8_t>(mac->data(), mac->data() + mac->size()),
              std::vector<uint8_t>(expected->begin(), expected->end()));
    EXPECT_EQ(info(id).use_count, 1u);

    const auto refused = [&](const Result<SecretBuffer>& r, const std::string& words) {
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message.find(words), std::string::npos) << r.error().message;
    };
    refused(service->sign(kAlice, id, "hmac-md5", {}), "hmac-sha256");
    refused(service->sign(kAlice, create(kAlice).id, "hmac-sha256", {}), "issued key");
    refused(service->sign(kBob, id, "hmac-sha256", {}), "not yours");
    const std::vector<uint8_t> huge(KeyService::kMaxSignedData + 1);
    refused(service->sign(kAlice, id, "hmac-sha256", huge), "at most");
    ASSERT_TRUE(service->revoke_key(kAlice, id, ""));
    refused(service->sign(kAlice, id, "hmac-sha256", {}), "revoked");
}

TEST_F(KeyLifecycleTest, IdentifyTellsWhichKeyWithoutUsingIt) {
    const auto created = create(kAlice, {"read"});
    auto found = service->identify_key(kAlice, created.key_text.view());
    ASSERT_TRUE(found);
    EXPECT_TRUE(found->known);
    EXPECT_EQ(found->text, "current");
    EXPECT_EQ(found->info->id, created.id);
    EXPECT_EQ(found->info->state, "active");
    EXPECT_EQ(info(created.id).use_count, 0u);
    EXPECT_TRUE(events(created.id).size() == 1u) << "only the create event";

    auto as_bob = service->identify_key(kBob, created.key_text.view());
    ASSERT_TRUE(as_bob);
    EXPECT_FALSE(as_bob->known);
    EXPECT_EQ(as_bob->reason, "unknown");
    EXPECT_FALSE(as_bob->info);

    std::string typo(created.key_text.view());
    typo[5] = typo[5] == 'a' ? 'b' : 'a';
    auto malformed = service->identify_key(kAlice, typo);
    ASSERT_TRUE(malformed);
    EXPECT_EQ(malformed->reason, "malformed");

    const std::string old_text(created.key_text.view());
    ASSERT_TRUE(service->rotate_key(kAlice, created.id, 0));
    auto previous = service->identify_key(kAlice, old_text);
    ASSERT_TRUE(previous && previous->known);
    EXPECT_EQ(previous->text, "previous");
}

TEST_F(KeyLifecycleTest, EventsRecordWhoDidWhatNewestFirst) {
    const auto created = create(kAlice, {"read"});
    const Caller tool{1000, 4242, "/usr/bin/curl", "backup.service"};
    EXPECT_EQ(verify_reason(tool, created.key_text.view(), "read"), "valid");
    EXPECT_EQ(verify_reason(tool, created.key_text.view(), "write"), "scope");
    KeyChanges name;
    name.name = "renamed";
    ASSERT_TRUE(service->update_key(kAlice, created.id, name));
    ASSERT_TRUE(service->revoke_key(kAlice, created.id, "leaked"));
    EXPECT_EQ(verify_reason(tool, created.key_text.view()), "revoked");

    const auto listed = events(created.id);
    std::vector<std::string> seen;
    for (const auto& e : listed) {
        seen.push_back(e.action + ":" + e.result);
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"verify:revoked", "revoke:ok", "update:ok",
                                              "verify:scope", "verify:ok", "create:ok"}));
    EXPECT_EQ(listed[4].caller_pid, 4242u);
    EXPECT_EQ(listed[4].caller_exe, "/usr/bin/curl");
    EXPECT_EQ(listed[4].caller_unit, "backup.service");
    EXPECT_EQ(events(created.id, 2).size(), 2u);
    EXPECT_FALSE(service->usage(kBob, created.id, 0, 10)) << "another user's key is not found";
    EXPECT_FALSE(service->usage(kAlice, created.id, 0, 0)) << "limit 0 is refused";

    auto days = service->usage_by_day(kAlice, created.id, 30);
    ASSERT_TRUE(days);
    ASSERT_EQ(days->size(), 1u);
    EXPECT_EQ((*days)[0].ok, 4u);       // create, verify, update, revoke
    EXPECT_EQ((*days)[0].refused, 2u);  // scope, revoked
}

TEST_F(KeyLifecycleTest, AFloodOfVerificationsIsCountedButStoredWithinTheCallersBudget) {
    const auto created = create(kAlice);
    constexpr int kVerifications = 100'000;
    constexpr int kSeconds = 10;
    for (int i = 0; i < kVerifications; ++i) {
        ASSERT_TRUE(service->verify_key(kAlice, created.key_text.view(), ""));
        if (i % (kVerifications / kSeconds) == kVerifications / kSeconds - 1) {
            ASSERT_TRUE(service->flush_usage());  // as the one-second timer does
            clock.advance_sec(1);
        }
    }
    ASSERT_TRUE(service->flush_usage());
    // The whole budget at once, then its refill for the seconds that passed
    // before the last verification.
    constexpr auto kBudget = static_cast<uint64_t>(UsageRecorder::kEventsStoredPerMinute);
    const uint64_t stored = count_rows("events");
    EXPECT_GE(stored, kBudget);
    EXPECT_LE(stored, kBudget + (kSeconds - 1) * kBudget / 60);
    auto days = service->usage_by_day(kAlice, created.id, 1);
    ASSERT_TRUE(days && days->size() == 1u);
    EXPECT_EQ((*days)[0].ok, kVerifications + 1u) << "every verification and the create count";
    EXPECT_EQ((*days)[0].unrecorded, kVerifications + 1u - stored)
        << "what was not stored is said to be missing, to the event";
    EXPECT_EQ(info(created.id).use_count, static_cast<uint64_t>(kVerifications));

    // Day counters older than the retention go at the next flush.
    clock.advance_sec((UsageRecorder::kDaysKept + 1) * 86400);
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view()), "valid");
    ASSERT_TRUE(service->flush_usage());
    auto later = service->usage_by_day(kAlice, created.id, UsageRecorder::kDaysKept);
    ASSERT_TRUE(later);
    ASSERT_EQ(later->size(), 1u);
    EXPECT_EQ((*later)[0].ok, 1u);
    EXPECT_EQ((*later)[0].unrecorded, 0u) << "the budget refilled over the days";
}

TEST_F(KeyLifecycleTest, EachCallerKeepsOnlyItsNewestEventsWhateverItsKeys) {
    // More keys than kEventsKeptPerCaller / kEventsKeptPerKey, so that the
    // per-key bound alone would keep more than a caller may.
    std::vector<CreatedKey> keys;
    for (size_t i = 0; i < 12; ++i) {
        keys.push_back(create(kAlice));
    }
    create(kBob);
    const auto budget = static_cast<size_t>(UsageRecorder::kEventsStoredPerMinute);
    const size_t minutes = UsageRecorder::kEventsKeptPerCaller / budget + 5;
    for (size_t minute = 0; minute < minutes; ++minute) {
        for (size_t i = 0; i < budget; ++i) {
            ASSERT_TRUE(service->verify_key(kAlice, keys[i % keys.size()].key_text.view(), ""));
        }
        ASSERT_TRUE(service->flush_usage());
        clock.advance_sec(60);
    }
    EXPECT_EQ(count_rows("events WHERE caller_uid=1000"), UsageRecorder::kEventsKeptPerCaller);
    EXPECT_EQ(count_rows("events WHERE caller_uid=1001"), 1u) << "Bob's create is his, and kept";
    for (const auto& key : keys) {
        EXPECT_LE(events(key.id).size(), UsageRecorder::kEventsKeptPerKey);
    }
}

// docs/SECURITY.md states these: the most one user's events may add to
// the database, and the most the write-ahead log (shared by all, emptied
// by SQLite's checkpoint every 1000 pages) holds.
constexpr uintmax_t kEventBytesPerUserBound = 8ULL * 1024 * 1024;
constexpr uintmax_t kWalBytesBound = 6ULL * 1024 * 1024;

TEST_F(KeyLifecycleTest, ARefusalLoopWithALongExecutableStaysInsideTheStatedBound) {
    // What the bus layer makes of a caller that chose the longest path it
    // could and runs in a unit of a long name.
    const Caller hostile{1000, 42, caller_text("/" + std::string(4000, 'x')),
                         caller_text(std::string(300, 'u') + ".service")};
    std::vector<CreatedKey> keys;
    for (size_t i = 0; i < 12; ++i) {
        keys.push_back(create(hostile, {"read"}));
    }
    ASSERT_TRUE(service->flush_usage());
    const auto size_of = [&](const char* file) {
        std::error_code ec;
        const auto size = std::filesystem::file_size(dir / file, ec);
        return ec ? uintmax_t{0} : size;
    };
    const uintmax_t before = size_of("apikeyd.db");
    const auto budget = static_cast<size_t>(UsageRecorder::kEventsStoredPerMinute);
    // Twice what fills the caller's share, at ten times the budget's rate.
    const size_t minutes = 2 * UsageRecorder::kEventsKeptPerCaller / budget;
    for (size_t minute = 0; minute < minutes; ++minute) {
        for (size_t i = 0; i < 10 * budget; ++i) {
            EXPECT_EQ(verify_reason(hostile, keys[i % keys.size()].key_text.view(), "write"),
                      "scope");
        }
        ASSERT_TRUE(service->flush_usage());
        clock.advance_sec(60);
    }
    const uintmax_t grown = size_of("apikeyd.db") - before;
    const uintmax_t wal = size_of("apikeyd.db-wal");
    EXPECT_EQ(count_rows("events"), UsageRecorder::kEventsKeptPerCaller);
    EXPECT_LE(grown, kEventBytesPerUserBound)
        << "events of " << kMaxCallerTextBytes << "-byte executables and units";
    EXPECT_LE(wal, kWalBytesBound);
    std::cout << "database grew by " << grown << " bytes, write-ahead log " << wal << " bytes\n";
}

TEST_F(KeyLifecycleTest, KeysFromSchemaOneStillVerifyAfterTheMigration) {
    // A record as schema 1 wrote it: none of the later fields set, so its
    // MAC covers exactly what schema 1's did.
    const auto created = create(kAlice);
    auto record = store->find_key(created.id);
    ASSERT_TRUE(record && *record);
    KeyRecord old = **record;
    old.prefix.clear();
    ASSERT_TRUE(record_seal::seal(keyslots->master_key()->mac_key(), old));
    ASSERT_TRUE(store->update_key(old));
    restart();
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view()), "valid");
    // Without a recorded prefix, rotation falls back to the default one.
    auto rotated = service->rotate_key(kAlice, created.id, 0);
    ASSERT_TRUE(rotated);
    EXPECT_TRUE(rotated->key_text.view().starts_with("ak_"));
}

}  // namespace
}  // namespace apikeyd
