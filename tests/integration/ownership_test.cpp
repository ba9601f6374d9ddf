// Who may do what: a key belongs to the user who created it; other users
// cannot see, use or revoke it and cannot even learn that it exists; root
// sees all. The second user is `nobody`, in a child that dropped to it. Also
// the bus policy: nobody may call the daemon but not own its name.

#include <gtest/gtest.h>

#include <string>

#include "common/bus_names.hpp"
#include "tests/support/as_nobody.hpp"
#include "tests/support/bus_connection.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using nlohmann::json;

json error_json(const CaughtError& e) {
    return json{{"name", e.name}, {"message", e.message}};
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (size_t at = text.find(from); at != std::string::npos;
         at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
    return text;
}

using Ownership = DaemonTest;
using BusPolicy = DaemonTest;

TEST_F(Ownership, KeyCreatedByNobodyBelongsToNobodyAndRootSeesIt) {
    const auto roots = root().create_key("root's", "", {}, {});
    const std::string address = bus().address();
    const auto outcome = run_as_nobody([&] {
        auto client = client::Client::connect_address(address);
        const auto created = client.create_key("nobody's", "", {"read"}, {});
        const auto verified = client.verify_key(created.key, "read");
        return json{{"id", created.id},
                    {"valid", verified.valid},
                    {"listed", to_json(client.list_keys(state_filter("all")))},
                    {"status", to_json(client.get_status())}};
    });
    ASSERT_TRUE(outcome.ok) << outcome.error;
    const std::string id = outcome.value["id"];
    EXPECT_TRUE(outcome.value["valid"].get<bool>()) << "nobody verifies its own key";
    const auto& listed = outcome.value["listed"];
    ASSERT_EQ(listed.size(), 1u) << "nobody lists only its own key: " << listed.dump();
    EXPECT_EQ(listed[0]["id"], id);
    EXPECT_EQ(listed[0]["owner_uid"], kNobodyUid);
    EXPECT_EQ(outcome.value["status"]["keys"], 1) << "status counts only the caller's keys";

    const auto info = root().get_key(id);
    EXPECT_EQ(field<uint32_t>(info, "owner_uid"), kNobodyUid);
    EXPECT_EQ(field<uint64_t>(info, "use_count"), 1u);
    EXPECT_EQ(ids_of(root().list_keys({})),
              ids_of(std::vector<Dict>{info, root().get_key(roots.id)}))
        << "root lists every user's keys";
    EXPECT_EQ(field<uint64_t>(root().get_status(), "keys"), 2u);
}

TEST_F(Ownership, NobodyCannotSeeUseOrRevokeRootsKeys) {
    const auto key = root().create_key("root's key", "", {"*"}, {});
    const auto secret = root().import_secret("root's secret", "", bytes_of("root-only"), {});
    const std::string address = bus().address();

    const auto outcome = run_as_nobody([&] {
        auto client = client::Client::connect_address(address);
        const auto verified = client.verify_key(key.key, "");
        return json{
            {"list", to_json(client.list_keys(state_filter("all")))},
            {"get_key", error_json(catch_bus_error([&] { client.get_key(key.id); }))},
            {"get_secret_info", error_json(catch_bus_error([&] { client.get_key(secret); }))},
            {"revoke", error_json(catch_bus_error([&] { client.revoke_key(key.id, "mine now"); }))},
            {"revoke_secret", error_json(catch_bus_error([&] { client.revoke_key(secret, ""); }))},
            {"get_secret", error_json(catch_bus_error([&] { client.get_secret(secret); }))},
            {"verify",
             {{"valid", verified.valid}, {"id", verified.id}, {"info", to_json(verified.info)}}},
        };
    });
    ASSERT_TRUE(outcome.ok) << outcome.error;
    const auto& r = outcome.value;
    EXPECT_EQ(r["list"], json::array()) << "nobody must not list root's keys";
    for (const char* call :
         {"get_key", "get_secret_info", "revoke", "revoke_secret", "get_secret"}) {
        EXPECT_EQ(r[call]["name"], "org.apikeyd1.Error.NotFound") << call << ": " << r[call].dump();
    }
    EXPECT_EQ(r["verify"]["valid"], false);
    EXPECT_EQ(r["verify"]["id"], "") << "verification must not reveal the key's id";
    EXPECT_EQ(r["verify"]["info"]["reason"], "unknown") << r["verify"].dump();
    EXPECT_FALSE(r["verify"]["info"].contains("name")) << r["verify"].dump();

    // Nothing nobody tried changed root's keys.
    const auto info = root().get_key(key.id);
    EXPECT_EQ(field<std::string>(info, "state"), "active");
    EXPECT_EQ(field<uint64_t>(info, "use_count"), 0u) << "nobody's attempt counted as a use";
    EXPECT_EQ(field<std::string>(root().get_key(secret), "state"), "active");
    EXPECT_EQ(root().get_secret(secret), bytes_of("root-only"));
    EXPECT_TRUE(root().verify_key(key.key, "").valid);
}

TEST_F(Ownership, AnotherUsersKeyIsIndistinguishableFromNoKey) {
    const auto key = root().create_key("root's key", "", {}, {});
    const std::string absent = "k_aaaaaaaaaaaa";
    const std::string address = bus().address();
    const auto outcome = run_as_nobody([&] {
        auto client = client::Client::connect_address(address);
        return json{{"existing", error_json(catch_bus_error([&] { client.get_key(key.id); }))},
                    {"absent", error_json(catch_bus_error([&] { client.get_key(absent); }))}};
    });
    ASSERT_TRUE(outcome.ok) << outcome.error;
    const auto& existing = outcome.value["existing"];
    const auto& missing = outcome.value["absent"];
    EXPECT_EQ(existing["name"], "org.apikeyd1.Error.NotFound");
    EXPECT_EQ(existing["name"], missing["name"]);
    EXPECT_EQ(replace_all(existing["message"], key.id, "<id>"),
              replace_all(missing["message"], absent, "<id>"))
        << "the error text must not tell an existing key from a missing one";
}

TEST_F(BusPolicy, EveryUserMayCallAndIntrospectTheDaemon) {
    const std::string address = bus().address();
    const auto outcome = run_as_nobody([&] {
        auto client = client::Client::connect_address(address);
        return json{{"status", to_json(client.get_status())},
                    {"introspection", client.introspect()}};
    });
    ASSERT_TRUE(outcome.ok) << outcome.error;
    EXPECT_EQ(outcome.value["status"]["locked"], false);
    EXPECT_NE(outcome.value["introspection"].get<std::string>().find(bus_names::kInterface),
              std::string::npos);
}

TEST_F(BusPolicy, NobodyCannotOwnTheDaemonsName) {
    // Whoever owns org.apikeyd1 receives every key and secret sent to it.
    daemon().stop();  // even while the name is free
    const std::string address = bus().address();
    const auto outcome = run_as_nobody([&] {
        auto connection = BusConnection::connect(address);
        return json{{"request", connection.request_name(bus_names::kBusName)},
                    {"owned", connection.name_has_owner(bus_names::kBusName)}};
    });
    ASSERT_TRUE(outcome.ok) << outcome.error;
    EXPECT_EQ(outcome.value["request"], "org.freedesktop.DBus.Error.AccessDenied");
    EXPECT_EQ(outcome.value["owned"], false);
}

}  // namespace
}  // namespace apikeyd::test
