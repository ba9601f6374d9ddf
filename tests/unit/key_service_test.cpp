#include "daemon/key_service.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>

#include "common/key_format.hpp"
#include "daemon/validation.hpp"
#include "tests/unit/key_service_fixture.hpp"

namespace apikeyd {
namespace {

TEST_F(KeyServiceTest, IssuesKeysInTheDocumentedFormat) {
    const auto created = create(kAlice);
    const auto parsed = key_format::parse(created.key_text.view());
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->prefix, "ak");
    EXPECT_EQ(created.id.size(), 14u);

    CreateKeyRequest request;
    request.name = "custom";
    request.prefix = "svc2";
    auto custom = service->create_key(kAlice, request);
    ASSERT_TRUE(custom);
    EXPECT_TRUE(custom->key_text.view().starts_with("svc2_"));

    for (const std::string bad : {"", "UPPER", "has_underscore", "seventeen-chars17"}) {
        request.prefix = bad;
        const auto refused = service->create_key(kAlice, request);
        ASSERT_FALSE(refused) << bad;
        EXPECT_NE(refused.error().message.find("prefix"), std::string::npos);
    }
}

TEST_F(KeyServiceTest, VerifiesAKeyAndCountsTheUse) {
    const auto created = create(kAlice, {"read", "models:*"});
    auto v = service->verify_key(kAlice, created.key_text.view(), "models:read");
    ASSERT_TRUE(v);
    EXPECT_TRUE(v->valid);
    ASSERT_TRUE(v->info);
    EXPECT_EQ(v->info->id, created.id);
    EXPECT_EQ(v->info->use_count, 1u);
    EXPECT_EQ(v->info->last_used_usec, clock.now_usec());
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view(), "write"), "scope");
    auto info = service->get_key(kAlice, created.id);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->use_count, 1u) << "a refused scope must not count as a use";
}

TEST_F(KeyServiceTest, TellsMalformedFromUnknownKeys) {
    create(kAlice);
    EXPECT_EQ(verify_reason(kAlice, "not a key"), "malformed");
    EXPECT_EQ(verify_reason(kAlice, ""), "malformed");
    // Well formed with a valid checksum, but never issued.
    std::string random(32, 'A');
    std::string text(key_format::issued_length("ak"), '\0');
    key_format::compose("ak", random, text.data());
    EXPECT_EQ(verify_reason(kAlice, text), "unknown");
}

TEST_F(KeyServiceTest, RefusesOverlongKeyTextBeforeAnyWork) {
    const auto result = service->verify_key(kAlice, std::string(257, 'a'), "");
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::InvalidArgument);
    EXPECT_EQ(verify_reason(kAlice, std::string(256, 'a')), "malformed");
}

TEST_F(KeyServiceTest, ExpiresKeysAtTheirTime) {
    const auto created = create(kAlice, {"read"}, 60);
    clock.advance_sec(59);
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view()), "valid");
    clock.advance_sec(1);
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view()), "expired");
    EXPECT_EQ(service->get_key(kAlice, created.id)->state, "expired");
    EXPECT_EQ(service->list_keys(kAlice, StateFilter::Active)->size(), 0u);
    EXPECT_EQ(service->list_keys(kAlice, StateFilter::Expired)->size(), 1u);
}

// The ids of a ListKeys page.
std::vector<std::string> ids_of(const Result<std::vector<KeyInfo>>& page) {
    EXPECT_TRUE(page) << page.error().message;
    std::vector<std::string> ids;
    for (const auto& info : page ? *page : std::vector<KeyInfo>{}) {
        ids.push_back(info.id);
    }
    return ids;
}

TEST_F(KeyServiceTest, ListsKeysAPageAtATimeInCreationOrder) {
    std::vector<std::string> made;
    for (int i = 0; i < 5; ++i) {
        made.push_back(create(kAlice).id);
        clock.advance_sec(1);
    }
    create(kBob);
    ASSERT_TRUE(service->revoke_key(kAlice, made[2], ""));

    KeyPage page;
    page.limit = 2;
    EXPECT_EQ(ids_of(service->list_keys(kAlice, StateFilter::All, page)),
              (std::vector<std::string>{made[0], made[1]}));
    page.after = made[1];
    EXPECT_EQ(ids_of(service->list_keys(kAlice, StateFilter::All, page)),
              (std::vector<std::string>{made[2], made[3]}));
    EXPECT_EQ(ids_of(service->list_keys(kAlice, StateFilter::Active, page)),
              (std::vector<std::string>{made[3], made[4]}))
        << "the state filter skips the revoked key and still fills the page";
    page.after = made[4];
    EXPECT_TRUE(ids_of(service->list_keys(kAlice, StateFilter::All, page)).empty());
    EXPECT_EQ(ids_of(service->list_keys(kAlice, StateFilter::All)), made) << "no page given";
}

TEST_F(KeyServiceTest, RefusesAPageItCannotServe) {
    const auto bobs = create(kBob).id;
    KeyPage page;
    page.limit = 0;
    EXPECT_EQ(service->list_keys(kAlice, StateFilter::All, page).error().code,
              ErrorCode::InvalidArgument);
    page.limit = KeyService::kMaxKeysListed + 1;
    EXPECT_EQ(service->list_keys(kAlice, StateFilter::All, page).error().code,
              ErrorCode::InvalidArgument);
    page.limit.reset();
    page.after = bobs;
    const auto others = service->list_keys(kAlice, StateFilter::All, page);
    ASSERT_FALSE(others);
    EXPECT_EQ(others.error().code, ErrorCode::InvalidArgument);
    page.after = "k_doesnotexist";
    EXPECT_EQ(service->list_keys(kAlice, StateFilter::All, page).error().message,
              "Invalid filter 'after' 'k_doesnotexist': it is not the id of one of your keys")
        << "another user's key and no key read the same";
    EXPECT_EQ(others.error().message,
              "Invalid filter 'after' '" + bobs + "': it is not the id of one of your keys");
}

TEST_F(KeyServiceTest, RefusesZeroAndAbsurdExpiries) {
    CreateKeyRequest request;
    request.name = "n";
    for (uint64_t bad : {uint64_t{0}, KeyService::kMaxExpiresInSec + 1, UINT64_MAX}) {
        request.expires_in_sec = bad;
        const auto result = service->create_key(kAlice, request);
        ASSERT_FALSE(result);
        EXPECT_NE(result.error().message.find("expires_in_sec"), std::string::npos);
    }
}

TEST_F(KeyServiceTest, ExhaustsAKeyAfterMaxUses) {
    const auto created = create(kAlice, {"read"}, std::nullopt, 2);
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view()), "valid");
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view()), "valid");
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view()), "exhausted");
    ASSERT_TRUE(service->flush_usage());
    restart();
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view()), "exhausted");
}

TEST_F(KeyServiceTest, RevokesOnceAndKeepsTheReason) {
    const auto created = create(kAlice);
    clock.advance_sec(5);
    ASSERT_TRUE(service->revoke_key(kAlice, created.id, "leaked in a log"));
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view()), "revoked");
    const auto info = service->get_key(kAlice, created.id);
    EXPECT_EQ(info->state, "revoked");
    EXPECT_EQ(info->revoke_reason, "leaked in a log");
    EXPECT_EQ(info->revoked_usec, clock.now_usec());
    const auto again = service->revoke_key(kAlice, created.id, "");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::Revoked);
}

TEST_F(KeyServiceTest, HidesOtherUsersKeysButShowsRootEverything) {
    const auto alices = create(kAlice);
    for (const auto& result :
         {service->get_key(kBob, alices.id).ok(), service->revoke_key(kBob, alices.id, "").ok()}) {
        EXPECT_FALSE(result);
    }
    EXPECT_EQ(service->get_key(kBob, alices.id).error().code, ErrorCode::NotFound);
    EXPECT_EQ(verify_reason(kBob, alices.key_text.view()), "unknown");
    EXPECT_EQ(service->list_keys(kBob, StateFilter::All)->size(), 0u);
    EXPECT_EQ(service->list_keys(kRoot, StateFilter::All)->size(), 1u);
    EXPECT_EQ(verify_reason(kRoot, alices.key_text.view()), "valid");
    EXPECT_EQ(service->status(kBob)->keys, 0u);
    EXPECT_EQ(service->status(kRoot)->keys, 1u);
}

TEST_F(KeyServiceTest, RateLimitsACallerThatKeepsGuessing) {
    const auto alices = create(kAlice);
    std::string last;
    for (int i = 0; i < 150; ++i) {
        last = verify_reason(kBob, "ak_guess" + std::to_string(i));
    }
    EXPECT_EQ(last, "rate_limited");
    EXPECT_EQ(verify_reason(kAlice, alices.key_text.view()), "valid");
    clock.advance_sec(60);
    EXPECT_EQ(verify_reason(kBob, "ak_guess"), "malformed");
}

TEST_F(KeyServiceTest, ImportsAndReturnsSecretsByteForByte) {
    const std::string secret("sk-\0\xff\n tail", 11);
    const auto id = import(kAlice, secret);
    auto back = service->get_secret(kAlice, id);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->view(), secret);
    EXPECT_EQ(service->get_key(kAlice, id)->use_count, 1u);
    EXPECT_EQ(service->get_key(kAlice, id)->kind, KeyKind::Imported);
    EXPECT_EQ(service->get_secret(kBob, id).error().code, ErrorCode::NotFound);
    ASSERT_TRUE(service->revoke_key(kAlice, id, ""));
    EXPECT_EQ(service->get_secret(kAlice, id).error().code, ErrorCode::Revoked);
}

TEST_F(KeyServiceTest, IssuedKeyTextCannotBeReadBack) {
    const auto created = create(kAlice);
    const auto result = service->get_secret(kAlice, created.id);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::InvalidArgument);
}

TEST_F(KeyServiceTest, UsageShowsAtOnceAndSurvivesAFlushAndRestart) {
    const auto created = create(kAlice);
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(verify_reason(kAlice, created.key_text.view()), "valid");
    }
    EXPECT_EQ(service->get_key(kAlice, created.id)->use_count, 3u);
    EXPECT_TRUE(service->has_pending_usage());
    ASSERT_TRUE(service->flush_usage());
    EXPECT_FALSE(service->has_pending_usage());
    restart();
    const auto info = service->get_key(kAlice, created.id);
    EXPECT_EQ(info->use_count, 3u);
    EXPECT_EQ(info->last_used_usec, clock.now_usec());
}

TEST_F(KeyServiceTest, KeysSurviveARestart) {
    const auto created = create(kAlice, {"read"});
    const auto id = import(kAlice, "secret-value");
    restart();
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view(), "read"), "valid");
    EXPECT_EQ(service->get_secret(kAlice, id)->view(), "secret-value");
}

// Editing the database by hand must never grant more: each edited record
// fails closed.
TEST_F(KeyServiceTest, HandEditedRecordsFailClosed) {
    const auto created = create(kAlice, {"read"});
    const auto revoked = create(kAlice, {"read"});
    ASSERT_TRUE(service->revoke_key(kAlice, revoked.id, ""));
    const auto expiring = create(kAlice, {"read"}, 10);
    const auto secret_a = import(kAlice, "alpha");
    const auto secret_b = import(kBob, "bravo");

    sql("UPDATE keys SET scopes='*' WHERE id='" + created.id + "'");
    sql("UPDATE keys SET revoked=0 WHERE id='" + revoked.id + "'");
    sql("UPDATE keys SET expires_usec=0 WHERE id='" + expiring.id + "'");
    sql("UPDATE keys SET owner_uid=1001 WHERE id='" + secret_a + "'");
    // Move bob's ciphertext into a record alice owns.
    sql("UPDATE keys SET sealed_secret=(SELECT sealed_secret FROM keys WHERE id='" + secret_b +
        "') WHERE id='" + secret_a + "'");
    clock.advance_sec(20);

    EXPECT_EQ(verify_reason(kAlice, created.key_text.view(), "write"), "unknown");
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view()), "unknown");
    EXPECT_EQ(verify_reason(kAlice, revoked.key_text.view()), "unknown");
    EXPECT_EQ(verify_reason(kAlice, expiring.key_text.view()), "unknown");
    EXPECT_EQ(service->get_key(kAlice, created.id).error().code, ErrorCode::Internal);
    EXPECT_FALSE(service->get_secret(kBob, secret_a));
    EXPECT_FALSE(service->get_secret(kAlice, secret_a));
    EXPECT_EQ(service->get_secret(kBob, secret_b)->view(), "bravo");
    // Tampered records are left out of lists.
    EXPECT_EQ(service->list_keys(kRoot, StateFilter::All)->size(), 1u);
}

TEST_F(KeyServiceTest, AnswersLockedWhenNoKeyslotUnlocks) {
    const auto created = create(kAlice);
    std::filesystem::remove(dir / std::string(SoftwareKeyslot::kFileName));
    open();
    ASSERT_TRUE(*keyslots->initialized());
    keyslots->unlock();
    ASSERT_TRUE(keyslots->locked());
    EXPECT_NE(keyslots->lock_reason().find("software"), std::string::npos);
    EXPECT_EQ(service->verify_key(kAlice, created.key_text.view(), "").error().code,
              ErrorCode::Locked);
    EXPECT_EQ(service->get_key(kAlice, created.id).error().code, ErrorCode::Locked);
    EXPECT_EQ(service->list_keys(kAlice, StateFilter::All).error().code, ErrorCode::Locked);
    auto status = service->status(kAlice);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->locked);
}

TEST_F(KeyServiceTest, RefusesAMasterKeyThatFailsTheCheckValue) {
    const auto created = create(kAlice);
    const auto key_file = dir / std::string(SoftwareKeyslot::kFileName);
    std::filesystem::permissions(key_file, std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::add);
    test::write_file(key_file, std::string(32, 'x'));
    open();
    ASSERT_TRUE(*keyslots->initialized());
    keyslots->unlock();
    EXPECT_TRUE(keyslots->locked());
    EXPECT_NE(keyslots->lock_reason().find("check value"), std::string::npos);
}

TEST_F(KeyServiceTest, WarnsAboutTheSoftwareKeyslot) {
    auto status = service->status(kAlice);
    ASSERT_TRUE(status);
    ASSERT_EQ(status->warnings.size(), 1u);
    EXPECT_NE(status->warnings[0].find("INSECURE"), std::string::npos);
    ASSERT_EQ(status->keyslots.size(), 1u);
    EXPECT_EQ(status->keyslots[0].type, "software");
}

TEST_F(KeyServiceTest, NeverStoresKeyTextOrSecrets) {
    const auto created = create(kAlice);
    const std::string secret = "sk-this-is-a-very-recognisable-secret";
    import(kAlice, secret);
    ASSERT_TRUE(service->flush_usage());
    const std::string random(created.key_text.view().substr(3, 32));
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
        const auto bytes = test::read_file(entry.path());
        EXPECT_EQ(bytes.find(random), std::string::npos) << entry.path();
        EXPECT_EQ(bytes.find(secret), std::string::npos) << entry.path();
    }
}

TEST_F(KeyServiceTest, ChangesInABatchAreAuditedWhenItCommits) {
    const auto kept = create(kAlice);
    ASSERT_TRUE(service->flush_usage());
    const uint64_t events_before = count_rows("events");
    std::vector<bool> outcomes;

    ASSERT_TRUE(commits->open());
    commits->after_durable([&](const Result<void>& outcome) { outcomes.push_back(outcome.ok()); });
    const auto created = create(kAlice);
    ASSERT_TRUE(service->revoke_key(kAlice, kept.id, "rotated out"));
    EXPECT_EQ(service->verify_key(kAlice, created.key_text.view(), "read")->reason, "")
        << "the batch's own changes are visible to the daemon at once";
    ASSERT_TRUE(commits->commit_now());

    EXPECT_EQ(outcomes, std::vector<bool>{true});
    ASSERT_TRUE(service->flush_usage());
    // create, revoke and the verify, each audited once.
    EXPECT_EQ(count_rows("events"), events_before + 3);
    restart();
    EXPECT_EQ(verify_reason(kAlice, created.key_text.view()), "valid");
    EXPECT_EQ(verify_reason(kAlice, kept.key_text.view()), "revoked");
}

TEST_F(KeyServiceTest, AFailedBatchLeavesNoChangeAndNoAudit) {
    const auto kept = create(kAlice);
    ASSERT_TRUE(service->flush_usage());
    const uint64_t events_before = count_rows("events");
    // A COMMIT that fails as on a failing disk: a deferred foreign key is
    // checked only then.
    sql("CREATE TABLE doom_parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE doom (parent INTEGER REFERENCES doom_parent (id) "
        "DEFERRABLE INITIALLY DEFERRED);"
        "CREATE TRIGGER doom_on_insert AFTER INSERT ON keys WHEN NEW.name = 'doomed' "
        "BEGIN INSERT INTO doom VALUES (42); END;");
    std::vector<bool> outcomes;

    ASSERT_TRUE(commits->open());
    commits->after_durable([&](const Result<void>& outcome) { outcomes.push_back(outcome.ok()); });
    ASSERT_TRUE(service->revoke_key(kAlice, kept.id, "never"));
    CreateKeyRequest doomed;
    doomed.name = "doomed";
    ASSERT_TRUE(service->create_key(kAlice, doomed));
    EXPECT_FALSE(commits->commit_now());

    EXPECT_EQ(outcomes, std::vector<bool>{false});
    EXPECT_EQ(verify_reason(kAlice, kept.key_text.view()), "valid");
    EXPECT_EQ(service->list_keys(kAlice, StateFilter::All)->size(), 1u);
    EXPECT_EQ(service->status(kAlice)->keys, 1u);
    ASSERT_TRUE(service->flush_usage());
    EXPECT_EQ(count_rows("events"), events_before + 1) << "only the verify above";
}

}  // namespace
TEST_F(KeyServiceTest, AUsersKeysHoldAtMostTheirShareOfBytes) {
    const std::string largest(limits::kMaxSecretBytes, 's');
    const auto import_of = [&](const Caller& caller, const std::string& secret) {
        ImportRequest request;
        request.name = "big";
        request.secret = SecretBuffer::from_string(secret);
        return service->import_secret(caller, std::move(request));
    };
    const auto import_largest = [&](const Caller& caller) { return import_of(caller, largest); };
    const auto small = create(kAlice);
    ASSERT_TRUE(commits->open());  // one commit for the lot, not one each
    size_t imported = 0;
    auto last = import_largest(kAlice);
    while (last && imported < 2 * limits::kMaxBytesPerUser / largest.size()) {
        ++imported;
        last = import_largest(kAlice);
    }
    ASSERT_TRUE(commits->commit_now());
    ASSERT_FALSE(last) << "no bound reached after " << imported << " secrets";
    EXPECT_EQ(last.error().code, ErrorCode::LimitExceeded);
    EXPECT_NE(last.error().message.find("64 MiB"), std::string::npos) << last.error().message;
    EXPECT_EQ(imported, limits::kMaxBytesPerUser / largest.size() - 1) << "room for names too";

    // Others are not touched by Alice's share.
    EXPECT_TRUE(import_largest(kBob));
    EXPECT_TRUE(import_largest(kRoot));
    // Growing a key is refused like adding one; a revocation never is.
    while (import_of(kAlice, std::string(1024, 'm'))) {
    }
    KeyChanges longer;
    std::string wide;
    for (size_t i = 0; i < limits::kMaxDescriptionChars; ++i) {
        wide += "\u00e9";
    }
    longer.description = wide;
    auto grown = service->update_key(kAlice, small.id, longer);
    ASSERT_FALSE(grown);
    EXPECT_EQ(grown.error().code, ErrorCode::LimitExceeded);
    EXPECT_TRUE(
        service->revoke_key(kAlice, small.id, std::string(limits::kMaxRevokeReasonChars, 'r')));

    // Counted again from the store after a restart, the share is as full.
    restart();
    auto again = import_largest(kAlice);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::LimitExceeded);
    EXPECT_TRUE(import_largest(kBob));
}

}  // namespace apikeyd
