// A key's life over D-Bus, as root: create, list, show, verify (with scopes,
// expiry and a use limit), count uses, revoke; and an imported secret's:
// import, read back byte for byte, revoke.

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include "common/bus_names.hpp"
#include "common/key_format.hpp"
#include "tests/support/bus_connection.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/timing.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

std::string reason_of(const client::Verification& v) {
    const auto it = v.info.find("reason");
    return it == v.info.end() ? "(no reason)" : field<std::string>(v.info, "reason");
}

using CreateKey = DaemonTest;
using VerifyKey = DaemonTest;
using RevokeKey = DaemonTest;
using ListKeys = DaemonTest;
using ImportSecret = DaemonTest;
using Status = DaemonTest;
using Signals = DaemonTest;

TEST_F(CreateKey, ReturnsAnIdAndAKeyInTheDocumentedFormat) {
    const auto created = root().create_key("web", "the web API", {"read"}, {});
    EXPECT_TRUE(std::regex_match(created.id, std::regex("k_[a-z2-7]{12}"))) << created.id;
    EXPECT_TRUE(std::regex_match(created.key, std::regex("ak_[0-9A-Za-z]{38}")))
        << "length " << created.key.size();
    const auto parsed = key_format::parse(created.key);
    ASSERT_TRUE(parsed.has_value()) << "the checksum of an issued key must match";
    EXPECT_EQ(parsed->prefix, "ak");

    const auto other = root().create_key("web", "the web API", {"read"}, {});
    EXPECT_NE(other.id, created.id);
    EXPECT_NE(random_part(other.key), random_part(created.key));
}

TEST_F(CreateKey, UsesTheRequestedPrefix) {
    const auto created = root().create_key("svc", "", {}, {{"prefix", Value{std::string("svc1")}}});
    EXPECT_TRUE(created.key.starts_with("svc1_")) << "length " << created.key.size();
    ASSERT_TRUE(key_format::parse(created.key).has_value());
    const auto verified = root().verify_key(created.key, "");
    EXPECT_TRUE(verified.valid) << to_json(verified.info).dump();
    EXPECT_EQ(verified.id, created.id);
}

TEST_F(ListKeys, ShowsANewKeyWithItsMetadataButNotItsText) {
    const uint64_t before = now_usec();
    const auto created = root().create_key("billing", "Key for billing", {"write", "read"}, {});
    const uint64_t after = now_usec();

    const auto listed = root().list_keys({});
    ASSERT_EQ(listed.size(), 1u) << to_json(listed).dump();
    const auto& info = listed[0];
    EXPECT_EQ(field<std::string>(info, "id"), created.id);
    EXPECT_EQ(field<std::string>(info, "name"), "billing");
    EXPECT_EQ(field<std::string>(info, "description"), "Key for billing");
    EXPECT_EQ(field<std::string>(info, "kind"), "issued");
    EXPECT_EQ(sorted(field<std::vector<std::string>>(info, "scopes")),
              (std::vector<std::string>{"read", "write"}));
    EXPECT_EQ(field<uint32_t>(info, "owner_uid"), 0u);
    EXPECT_EQ(field<std::string>(info, "state"), "active");
    EXPECT_GE(field<uint64_t>(info, "created_usec"), before - 2'000'000);
    EXPECT_LE(field<uint64_t>(info, "created_usec"), after + 2'000'000);
    EXPECT_EQ(field<uint64_t>(info, "expires_usec"), 0u);
    EXPECT_EQ(field<uint64_t>(info, "last_used_usec"), 0u);
    EXPECT_EQ(field<uint64_t>(info, "use_count"), 0u);
    EXPECT_EQ(field<uint64_t>(info, "max_uses"), 0u);
    EXPECT_EQ(field<uint64_t>(info, "revoked_usec"), 0u);
    EXPECT_EQ(field<std::string>(info, "revoke_reason"), "");

    const std::string dump = to_json(listed).dump();
    EXPECT_EQ(dump.find(random_part(created.key)), std::string::npos) << "key text in ListKeys";

    const auto got = root().get_key(created.id);
    EXPECT_EQ(to_json(got), to_json(info)) << "GetKey and ListKeys disagree";
}

TEST_F(VerifyKey, AcceptsTheKeyForAnyScopeAndForAGrantedScope) {
    const auto created = root().create_key("api", "", {"read", "write"}, {});
    for (const std::string scope : {"", "read", "write"}) {
        const auto v = root().verify_key(created.key, scope);
        EXPECT_TRUE(v.valid) << "scope '" << scope << "': " << to_json(v.info).dump();
        EXPECT_EQ(v.id, created.id);
        EXPECT_EQ(field<std::string>(v.info, "name"), "api");
        EXPECT_EQ(v.info.count("reason"), 0u) << to_json(v.info).dump();
    }
}

TEST_F(VerifyKey, RefusesAScopeTheKeyWasNotGranted) {
    const auto created = root().create_key("api", "", {"read"}, {});
    for (const std::string scope : {"write", "read:all", "admin"}) {
        const auto v = root().verify_key(created.key, scope);
        EXPECT_FALSE(v.valid) << scope;
        EXPECT_EQ(reason_of(v), "scope") << scope;
        EXPECT_EQ(v.id, created.id) << "the caller's own key: its id comes back";
    }
    const auto none = root().create_key("no scopes", "", {}, {});
    EXPECT_TRUE(root().verify_key(none.key, "").valid);
    EXPECT_EQ(reason_of(root().verify_key(none.key, "read")), "scope");
}

TEST_F(VerifyKey, StarScopeSatisfiesEveryScope) {
    const auto created = root().create_key("admin", "", {"*"}, {});
    for (const std::string scope : {"", "read", "write", "models:read", "a.b-c_d:e"}) {
        const auto v = root().verify_key(created.key, scope);
        EXPECT_TRUE(v.valid) << "scope '" << scope << "': " << to_json(v.info).dump();
    }
}

TEST_F(VerifyKey, WildcardScopeSatisfiesItsSubScopesOnly) {
    const auto created = root().create_key("models", "", {"models:*"}, {});
    for (const std::string scope : {"models:read", "models:write"}) {
        const auto v = root().verify_key(created.key, scope);
        EXPECT_TRUE(v.valid) << scope << ": " << to_json(v.info).dump();
    }
    for (const std::string scope : {"models", "datasets:read", "read", "modelsx:read"}) {
        const auto v = root().verify_key(created.key, scope);
        EXPECT_FALSE(v.valid) << scope;
        EXPECT_EQ(reason_of(v), "scope") << scope;
    }
}

TEST_F(VerifyKey, TellsMalformedKeysFromUnknownOnes) {
    const auto created = root().create_key("api", "", {}, {});
    for (const std::string& text :
         {std::string(""), std::string("ak_short"), std::string("not a key at all"),
          with_typo(created.key), created.key.substr(0, created.key.size() - 1),
          "AK_" + created.key.substr(3)}) {
        const auto v = root().verify_key(text, "");
        EXPECT_FALSE(v.valid) << "'" << text << "'";
        EXPECT_EQ(reason_of(v), "malformed") << "'" << text << "'";
        EXPECT_EQ(v.id, "");
    }
    // Well formed (the checksum matches) but never issued.
    for (const std::string& text : {unissued_key(), unissued_key("svc1"),
                                    std::string("ak_cqnLGp9NjmtNL1EihJvc7t3QMlJhc5B71op5rU")}) {
        const auto v = root().verify_key(text, "");
        EXPECT_FALSE(v.valid) << text;
        EXPECT_EQ(reason_of(v), "unknown") << text;
        EXPECT_EQ(v.id, "");
    }
    // None of these touched the real key.
    EXPECT_EQ(field<uint64_t>(root().get_key(created.id), "use_count"), 0u);
}

TEST_F(VerifyKey, CountsEverySuccessfulUseAtOnce) {
    const auto created = root().create_key("api", "", {"read"}, {});
    const uint64_t created_usec = field<uint64_t>(root().get_key(created.id), "created_usec");

    ASSERT_TRUE(root().verify_key(created.key, "read").valid);
    const auto first = root().get_key(created.id);
    EXPECT_EQ(field<uint64_t>(first, "use_count"), 1u);
    const uint64_t first_used = field<uint64_t>(first, "last_used_usec");
    EXPECT_GE(first_used, created_usec);

    const auto second = root().verify_key(created.key, "");
    ASSERT_TRUE(second.valid);
    EXPECT_EQ(field<uint64_t>(second.info, "use_count"), 2u) << "VerifyKey's info shows the use";
    const auto after = root().get_key(created.id);
    EXPECT_EQ(field<uint64_t>(after, "use_count"), 2u);
    EXPECT_GE(field<uint64_t>(after, "last_used_usec"), first_used);
    const auto listed = find_by_id(root().list_keys({}), created.id);
    ASSERT_TRUE(listed.has_value());
    EXPECT_EQ(field<uint64_t>(*listed, "use_count"), 2u) << "ListKeys shows the uses too";
}

TEST_F(VerifyKey, KeyWithMaxUsesIsExhaustedAfterThem) {
    const auto created = root().create_key("twice", "", {}, {{"max_uses", Value{uint64_t{2}}}});
    EXPECT_EQ(field<uint64_t>(root().get_key(created.id), "max_uses"), 2u);
    EXPECT_TRUE(root().verify_key(created.key, "").valid);
    EXPECT_TRUE(root().verify_key(created.key, "").valid);
    const auto third = root().verify_key(created.key, "");
    EXPECT_FALSE(third.valid);
    EXPECT_EQ(reason_of(third), "exhausted");
    EXPECT_EQ(third.id, created.id);
    const auto info = root().get_key(created.id);
    EXPECT_EQ(field<uint64_t>(info, "use_count"), 2u) << "a refused verification is not a use";
    EXPECT_EQ(field<std::string>(info, "state"), "active") << "documented: exhausted stays active";
}

TEST_F(VerifyKey, ExpiredKeyIsRefused) {
    const uint64_t before = now_usec();
    const auto created =
        root().create_key("short-lived", "", {}, {{"expires_in_sec", Value{uint64_t{1}}}});
    const auto info = root().get_key(created.id);
    const uint64_t expires = field<uint64_t>(info, "expires_usec");
    EXPECT_EQ(expires, field<uint64_t>(info, "created_usec") + 1'000'000);
    EXPECT_GE(expires, before + 1'000'000 - 2'000'000);
    EXPECT_TRUE(root().verify_key(created.key, "").valid) << "valid before its second is up";

    client::Verification last;
    const bool expired = eventually(
        [&] {
            last = root().verify_key(created.key, "");
            return !last.valid;
        },
        5s, 50ms);
    ASSERT_TRUE(expired) << "still valid 5 s after a 1 s expiry";
    EXPECT_EQ(reason_of(last), "expired");
    EXPECT_EQ(last.id, created.id);
    EXPECT_GE(now_usec(), expires) << "refused before its expiry";

    EXPECT_EQ(field<std::string>(root().get_key(created.id), "state"), "expired");
    EXPECT_FALSE(find_by_id(root().list_keys({}), created.id)) << "the default list is active keys";
    EXPECT_TRUE(find_by_id(root().list_keys(state_filter("expired")), created.id));
    EXPECT_TRUE(find_by_id(root().list_keys(state_filter("all")), created.id));
}

TEST_F(RevokeKey, RevokedKeyNoLongerVerifiesAndLeavesTheDefaultList) {
    const auto created = root().create_key("leaky", "", {"read"}, {});
    const auto kept = root().create_key("kept", "", {"read"}, {});
    const uint64_t before = now_usec();
    root().revoke_key(created.id, "leaked in a log");

    const auto v = root().verify_key(created.key, "read");
    EXPECT_FALSE(v.valid);
    EXPECT_EQ(reason_of(v), "revoked");
    EXPECT_EQ(v.id, created.id);
    EXPECT_TRUE(root().verify_key(kept.key, "read").valid) << "only the revoked key is affected";

    const auto info = root().get_key(created.id);
    EXPECT_EQ(field<std::string>(info, "state"), "revoked");
    EXPECT_EQ(field<std::string>(info, "revoke_reason"), "leaked in a log");
    EXPECT_GE(field<uint64_t>(info, "revoked_usec"), before - 2'000'000);

    EXPECT_EQ(ids_of(root().list_keys({})), std::vector<std::string>{kept.id});
    EXPECT_EQ(ids_of(root().list_keys(state_filter("active"))), std::vector<std::string>{kept.id});
    EXPECT_EQ(ids_of(root().list_keys(state_filter("revoked"))),
              std::vector<std::string>{created.id});
    EXPECT_EQ(ids_of(root().list_keys(state_filter("all"))),
              sorted(std::vector<std::string>{created.id, kept.id}));

    EXPECT_EQ(bus_error_name([&] { root().revoke_key(created.id, "again"); }),
              "org.apikeyd1.Error.Revoked");
    EXPECT_EQ(field<std::string>(root().get_key(created.id), "revoke_reason"), "leaked in a log")
        << "a second revoke must not overwrite the first";
}

TEST_F(ImportSecret, GetSecretReturnsTheExactBytes) {
    std::vector<uint8_t> secret = {'s', 'k', '-', 0x00, 0xff, 0x80, 0x00, '\n', 0xfe, 'x'};
    const auto more = random_bytes(200);
    secret.insert(secret.end(), more.begin(), more.end());
    secret.push_back(0x00);  // trailing NUL must survive too

    const auto id = root().import_secret("openai", "workstation key", secret, {});
    EXPECT_TRUE(std::regex_match(id, std::regex("k_[a-z2-7]{12}"))) << id;
    EXPECT_EQ(root().get_secret(id), secret);

    const auto info = root().get_key(id);
    EXPECT_EQ(field<std::string>(info, "kind"), "imported");
    EXPECT_EQ(field<std::string>(info, "name"), "openai");
    EXPECT_EQ(field<std::string>(info, "state"), "active");
    EXPECT_EQ(field<uint64_t>(info, "use_count"), 1u) << "a read counts as a use";
    EXPECT_GT(field<uint64_t>(info, "last_used_usec"), 0u);
    EXPECT_EQ(root().get_secret(id), secret);
    EXPECT_EQ(field<uint64_t>(root().get_key(id), "use_count"), 2u);
    EXPECT_TRUE(find_by_id(root().list_keys({}), id));
}

TEST_F(ImportSecret, RevokedSecretIsNoLongerReturned) {
    const auto id = root().import_secret("github", "", bytes_of("ghp_example"), {});
    root().revoke_key(id, "rotated");
    const auto caught = catch_bus_error([&] { root().get_secret(id); });
    EXPECT_EQ(caught.name, "org.apikeyd1.Error.Revoked") << caught.message;
    EXPECT_EQ(caught.message.find("ghp_example"), std::string::npos);
    EXPECT_EQ(field<std::string>(root().get_key(id), "state"), "revoked");
}

TEST_F(ImportSecret, ExpiredSecretIsNoLongerReturned) {
    const auto id = root().import_secret("temp", "", bytes_of("short-lived"),
                                         {{"expires_in_sec", Value{uint64_t{1}}}});
    EXPECT_EQ(root().get_secret(id), bytes_of("short-lived"));
    std::string error;
    ASSERT_TRUE(eventually(
        [&] {
            error = bus_error_name([&] { root().get_secret(id); });
            return !error.empty();
        },
        5s, 50ms))
        << "still readable 5 s after a 1 s expiry";
    EXPECT_EQ(error, "org.apikeyd1.Error.Expired");
    EXPECT_EQ(field<std::string>(root().get_key(id), "state"), "expired");
}

TEST_F(ImportSecret, IssuedKeyHasNoSecretToRead) {
    const auto created = root().create_key("api", "", {}, {});
    const auto caught = catch_bus_error([&] { root().get_secret(created.id); });
    EXPECT_EQ(caught.name, "org.apikeyd1.Error.InvalidArgument") << caught.message;
    EXPECT_EQ(caught.message.find(random_part(created.key)), std::string::npos);
}

TEST_F(ImportSecret, ImportedSecretIsNotAKeyToVerify) {
    // An imported secret that happens to look like an issued key is still
    // only a secret: VerifyKey does not accept it.
    const std::string lookalike = unissued_key();
    root().import_secret("lookalike", "", bytes_of(lookalike), {});
    const auto v = root().verify_key(lookalike, "");
    EXPECT_FALSE(v.valid);
    EXPECT_EQ(reason_of(v), "unknown");
}

TEST_F(Status, ReportsAnUnlockedDaemonWithItsSoftwareKeyslotAndAWarning) {
    root().create_key("one", "", {}, {});
    root().import_secret("two", "", bytes_of("x"), {});
    const auto status = root().get_status();
    EXPECT_FALSE(field<bool>(status, "locked"));
    EXPECT_EQ(field<uint64_t>(status, "keys"), 2u);
    EXPECT_FALSE(field<std::string>(status, "version").empty());
    const auto keyslots = field<std::vector<Dict>>(status, "keyslots");
    ASSERT_EQ(keyslots.size(), 1u) << to_json(status).dump();
    EXPECT_EQ(field<std::string>(keyslots[0], "type"), "software");
    const auto warnings = field<std::vector<std::string>>(status, "warnings");
    ASSERT_FALSE(warnings.empty()) << "the development-only keyslot must be called out";
    EXPECT_NE(warnings[0].find("software"), std::string::npos) << warnings[0];
}

TEST_F(Signals, CreateImportAndRevokeAreAnnounced) {
    auto watcher = BusConnection::connect(bus().address());
    watcher.watch_signals(bus_names::kBusName, bus_names::kInterface);
    ASSERT_EQ(watcher.call_manager("Subscribe"), "");
    const auto created = root().create_key("signalled", "", {}, {});
    EXPECT_TRUE(watcher.wait_for_signal("KeyCreated", created.id, scaled(5s)));
    const auto imported = root().import_secret("signalled", "", bytes_of("x"), {});
    EXPECT_TRUE(watcher.wait_for_signal("KeyCreated", imported, scaled(5s)));
    root().revoke_key(created.id, "");
    EXPECT_TRUE(watcher.wait_for_signal("KeyRevoked", created.id, scaled(5s)));
    for (const auto& s : watcher.signals()) {
        EXPECT_EQ(s.first_arg.find(random_part(created.key)), std::string::npos);
    }
}

}  // namespace
}  // namespace apikeyd::test
