// The D-Bus contract: what the running daemon introspects is exactly
// dbus/org.apikeyd1.Manager.xml, its dictionaries carry the documented fields
// with the documented types, and its errors use the documented names.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "common/bus_names.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/introspection.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using bus_names::kInterface;

// The info dictionary of docs/dbus-api.md.
const std::map<std::string, std::string> kInfoFieldTypes = {
    {"id", "s"},           {"name", "s"},           {"description", "s"}, {"kind", "s"},
    {"scopes", "as"},      {"owner_uid", "u"},      {"state", "s"},       {"created_usec", "t"},
    {"expires_usec", "t"}, {"last_used_usec", "t"}, {"use_count", "t"},   {"max_uses", "t"},
    {"revoked_usec", "t"}, {"revoke_reason", "s"},
};

// Each documented field is present with its type; extra fields are allowed.
std::vector<std::string> type_mismatches(const Dict& dict,
                                         const std::map<std::string, std::string>& expected) {
    std::vector<std::string> problems;
    for (const auto& [name, type] : expected) {
        const auto it = dict.find(name);
        if (it == dict.end()) {
            problems.push_back(name + " missing");
        } else if (client::signature_of(it->second) != type) {
            problems.push_back(name + " is " + client::signature_of(it->second) + ", not " + type);
        }
    }
    return problems;
}

using Contract = DaemonTest;

TEST_F(Contract, DaemonIntrospectsExactlyTheInterfaceXml) {
    const auto contract =
        parse_xml(read_file(std::string(APIKEYD_SOURCE_DIR) + "/dbus/org.apikeyd1.Manager.xml"));
    const auto expected = interface_shape(contract, kInterface);
    // Guard against comparing two empty documents: the members of the first
    // slice must be in the contract (more may be added).
    for (const char* member :
         {"method CreateKey(", "method ImportSecret(", "method ListKeys(", "method GetKey(",
          "method RevokeKey(", "method VerifyKey(", "method GetSecret(", "method GetStatus(",
          "signal KeyCreated(", "signal KeyChanged(", "signal KeyRevoked("}) {
        EXPECT_TRUE(std::any_of(expected.begin(), expected.end(),
                                [&](const std::string& line) { return line.starts_with(member); }))
            << member << " missing in the contract XML";
    }

    const std::string introspected = root().introspect();
    const auto running = parse_xml(introspected);
    EXPECT_EQ(interface_shape(running, kInterface), expected)
        << "the daemon's introspection of /org/apikeyd1:\n"
        << introspected;
}

TEST_F(Contract, ObjectOffersTheStandardInterfacesBesideTheManager) {
    const auto names = interface_names(parse_xml(root().introspect()));
    for (const char* name : {"org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Peer",
                             "org.freedesktop.DBus.Properties", kInterface}) {
        EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
    }
}

TEST_F(Contract, InfoDictionariesHaveTheDocumentedFieldsAndTypes) {
    const auto issued = root().create_key("contract", "types", {"read"}, {});
    const auto imported = root().import_secret("contract-secret", "", bytes_of("s3cret"), {});

    for (const auto& id : {issued.id, imported}) {
        const auto info = root().get_key(id);
        EXPECT_EQ(type_mismatches(info, kInfoFieldTypes), std::vector<std::string>{})
            << "GetKey " << to_json(info).dump();
    }
    const auto listed = root().list_keys({});
    ASSERT_EQ(listed.size(), 2u) << to_json(listed).dump();
    for (const auto& info : listed) {
        EXPECT_EQ(type_mismatches(info, kInfoFieldTypes), std::vector<std::string>{})
            << "ListKeys " << to_json(info).dump();
    }
    const auto verified = root().verify_key(issued.key, "read");
    ASSERT_TRUE(verified.valid) << to_json(verified.info).dump();
    EXPECT_EQ(type_mismatches(verified.info, kInfoFieldTypes), std::vector<std::string>{})
        << "VerifyKey " << to_json(verified.info).dump();
}

TEST_F(Contract, FailedVerificationCarriesAReasonString) {
    const auto created = root().create_key("contract", "", {"read"}, {});
    const auto refused = root().verify_key(created.key, "write");
    EXPECT_FALSE(refused.valid);
    EXPECT_EQ(type_mismatches(refused.info, {{"reason", "s"}}), std::vector<std::string>{})
        << to_json(refused.info).dump();
    // The key is the caller's, so its info comes along.
    EXPECT_EQ(type_mismatches(refused.info, kInfoFieldTypes), std::vector<std::string>{})
        << to_json(refused.info).dump();

    const auto unknown = root().verify_key(unissued_key(), "");
    EXPECT_FALSE(unknown.valid);
    EXPECT_EQ(type_mismatches(unknown.info, {{"reason", "s"}}), std::vector<std::string>{})
        << to_json(unknown.info).dump();
}

TEST_F(Contract, UsageEntriesHaveTheDocumentedFieldsAndTypes) {
    const auto created = root().create_key("contract", "", {"read"}, {});
    ASSERT_TRUE(root().verify_key(created.key, "read").valid);
    const auto events = root().get_usage(created.id, {});
    ASSERT_EQ(events.size(), 2u) << to_json(events).dump();
    for (const auto& event : events) {
        EXPECT_EQ(type_mismatches(event, {{"time_usec", "t"},
                                          {"action", "s"},
                                          {"result", "s"},
                                          {"caller_uid", "u"},
                                          {"caller_pid", "u"}}),
                  std::vector<std::string>{})
            << to_json(event).dump();
    }
    const auto days = root().get_usage_by_day(created.id, {});
    ASSERT_EQ(days.size(), 1u) << to_json(days).dump();
    EXPECT_EQ(
        type_mismatches(
            days[0],
            {{"day_usec", "t"}, {"date", "s"}, {"ok", "t"}, {"refused", "t"}, {"unrecorded", "t"}}),
        std::vector<std::string>{})
        << to_json(days).dump();
}

TEST_F(Contract, StatusHasTheDocumentedFieldsAndTypes) {
    const auto status = root().get_status();
    EXPECT_EQ(type_mismatches(status, {{"locked", "b"},
                                       {"keyslots", "aa{sv}"},
                                       {"keys", "t"},
                                       {"version", "s"},
                                       {"warnings", "as"}}),
              std::vector<std::string>{})
        << to_json(status).dump();
    const auto keyslots = field<std::vector<Dict>>(status, "keyslots");
    ASSERT_FALSE(keyslots.empty()) << to_json(status).dump();
    for (const auto& slot : keyslots) {
        EXPECT_EQ(type_mismatches(slot, {{"id", "s"}, {"type", "s"}}), std::vector<std::string>{})
            << to_json(slot).dump();
    }
}

TEST_F(Contract, ErrorsUseTheDocumentedNames) {
    const auto issued = root().create_key("contract", "", {}, {});
    const auto revoked_secret = root().import_secret("gone", "", bytes_of("x"), {});
    root().revoke_key(revoked_secret, "test");
    const std::string absent_id = "k_aaaaaaaaaaaa";  // well formed, never issued

    const struct {
        const char* what;
        std::function<void()> call;
        const char* error;
    } cases[] = {
        {"GetKey of an id never issued", [&] { root().get_key(absent_id); },
         "org.apikeyd1.Error.NotFound"},
        {"RevokeKey of an id never issued", [&] { root().revoke_key(absent_id, ""); },
         "org.apikeyd1.Error.NotFound"},
        {"GetSecret of an id never issued", [&] { root().get_secret(absent_id); },
         "org.apikeyd1.Error.NotFound"},
        {"GetKey of a malformed id", [&] { root().get_key("not-an-id"); },
         "org.apikeyd1.Error.InvalidArgument"},
        {"CreateKey with an empty name", [&] { root().create_key("", "", {}, {}); },
         "org.apikeyd1.Error.InvalidArgument"},
        {"GetSecret of an issued key", [&] { root().get_secret(issued.id); },
         "org.apikeyd1.Error.InvalidArgument"},
        {"RevokeKey of a revoked key", [&] { root().revoke_key(revoked_secret, ""); },
         "org.apikeyd1.Error.Revoked"},
        {"GetSecret of a revoked secret", [&] { root().get_secret(revoked_secret); },
         "org.apikeyd1.Error.Revoked"},
    };
    for (const auto& c : cases) {
        const auto caught = catch_bus_error(c.call);
        EXPECT_EQ(caught.name, c.error) << c.what << ": " << caught.message;
        EXPECT_FALSE(caught.message.empty()) << c.what;
    }
}

}  // namespace
}  // namespace apikeyd::test
