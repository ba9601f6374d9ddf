// Every size and count a caller controls has a limit, refused at its edge
// with org.apikeyd1.Error.InvalidArgument; options the daemon does not know,
// or of the wrong type, are refused and named; failed verifications are rate
// limited per caller.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/as_nobody.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using nlohmann::json;

constexpr const char* kInvalidArgument = "org.apikeyd1.Error.InvalidArgument";

std::string repeat(const std::string& unit, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) {
        out += unit;
    }
    return out;
}

class Limits : public DaemonTest {
  protected:
    // Creates a key and says whether the daemon accepted it; a refusal must
    // be InvalidArgument and must not leave a key behind.
    std::string create_error(const std::string& name, const std::string& description,
                             const std::vector<std::string>& scopes, const Dict& options = {}) {
        const size_t before = root().list_keys(state_filter("all")).size();
        const auto caught =
            catch_bus_error([&] { root().create_key(name, description, scopes, options); });
        const size_t after = root().list_keys(state_filter("all")).size();
        EXPECT_EQ(after, before + (caught.thrown ? 0 : 1)) << caught.name << ": " << caught.message;
        last_message_ = caught.message;
        return caught.name;
    }
    std::string last_message_;
};

using RateLimit = DaemonTest;

TEST_F(Limits, NameOf128CharactersIsAcceptedAnd129Refused) {
    EXPECT_EQ(create_error(repeat("n", 128), "", {}), "");
    EXPECT_EQ(create_error(repeat("n", 129), "", {}), kInvalidArgument);
    // Characters, not bytes: 128 two-byte characters are 256 bytes.
    EXPECT_EQ(create_error(repeat("\xc3\xa9", 128), "", {}), "");
    EXPECT_EQ(create_error(repeat("\xc3\xa9", 129), "", {}), kInvalidArgument);
    EXPECT_EQ(create_error(repeat("\xf0\x9f\x94\x91", 128), "", {}), "") << "4-byte characters";
}

TEST_F(Limits, EmptyNameAndControlCharactersAreRefused) {
    EXPECT_EQ(create_error("", "", {}), kInvalidArgument);
    EXPECT_EQ(create_error("tab\there", "", {}), kInvalidArgument);
    EXPECT_EQ(create_error("new\nline", "", {}), kInvalidArgument);
    EXPECT_EQ(create_error("escape\x1b[31m", "", {}), kInvalidArgument);
    EXPECT_EQ(create_error("c1\xc2\x9b", "", {}), kInvalidArgument);
}

TEST_F(Limits, HiddenCharactersAndEdgeWhiteSpaceAreRefusedByCodePointEverywhere) {
    const std::string zero_width =
        "a\xe2\x80\x8b"
        "b";
    const std::string expected =
        "Invalid name: it contains U+200B (a format character) at character 2";
    EXPECT_EQ(create_error(zero_width, "", {}), kInvalidArgument);
    EXPECT_EQ(last_message_, expected);
    EXPECT_EQ(create_error("trailing ", "", {}), kInvalidArgument);
    EXPECT_EQ(last_message_, "Invalid name: it ends with U+0020 (white space)");
    EXPECT_EQ(create_error("d", "\xe2\x80\xae", {}), kInvalidArgument);
    EXPECT_NE(last_message_.find("description"), std::string::npos) << last_message_;

    const auto imported =
        catch_bus_error([&] { root().import_secret(zero_width, "", bytes_of("x"), {}); });
    EXPECT_EQ(imported.name, kInvalidArgument);
    EXPECT_EQ(imported.message, expected);
    const auto key = root().create_key("kept", "", {}, {});
    const auto renamed = catch_bus_error([&] {
        root().update_key(key.id, {{"name", Value{zero_width}}});
    });
    EXPECT_EQ(renamed.name, kInvalidArgument);
    EXPECT_EQ(renamed.message, expected);
    const auto revoked = catch_bus_error([&] { root().revoke_key(key.id, "para\xe2\x80\xa9"); });
    EXPECT_EQ(revoked.name, kInvalidArgument);
    EXPECT_EQ(revoked.message,
              "Invalid revoke reason: it contains U+2029 (a paragraph separator) at character 5");
    const auto info = root().get_key(key.id);
    EXPECT_EQ(field<std::string>(info, "name"), "kept");
    EXPECT_EQ(field<std::string>(info, "state"), "active");
}

TEST_F(Limits, DescriptionOf1024CharactersIsAcceptedAnd1025Refused) {
    EXPECT_EQ(create_error("d", "", {}), "") << "a description may be empty";
    EXPECT_EQ(create_error("d", repeat("d", 1024), {}), "");
    EXPECT_EQ(create_error("d", repeat("d", 1025), {}), kInvalidArgument);
    EXPECT_EQ(create_error("d", repeat("\xc3\xa9", 1024), {}), "");
    EXPECT_EQ(create_error("d", repeat("\xc3\xa9", 1025), {}), kInvalidArgument);
}

TEST_F(Limits, ThirtyTwoScopesAreAcceptedAndThirtyThreeRefused) {
    std::vector<std::string> scopes;
    for (int i = 0; i < 32; ++i) {
        scopes.push_back("scope" + std::to_string(i));
    }
    EXPECT_EQ(create_error("s", "", scopes), "");
    scopes.push_back("scope32");
    EXPECT_EQ(create_error("s", "", scopes), kInvalidArgument);
}

TEST_F(Limits, ScopeOf64CharactersIsAcceptedAnd65Refused) {
    EXPECT_EQ(create_error("s", "", {repeat("s", 64)}), "");
    EXPECT_EQ(create_error("s", "", {repeat("s", 65)}), kInvalidArgument);
    EXPECT_EQ(create_error("s", "", {"a-z0-9_.:*-"}), "") << "every allowed character";
    for (const std::string bad : {"", "Read", "read write", "read/write", "r\xc3\xa9"}) {
        EXPECT_EQ(create_error("s", "", {bad}), kInvalidArgument) << "'" << bad << "'";
        EXPECT_NE(last_message_.find("scope"), std::string::npos) << last_message_;
    }
}

TEST_F(Limits, PrefixOf16CharactersIsAcceptedAnd17Refused) {
    const auto prefix = [](const std::string& p) { return Dict{{"prefix", Value{p}}}; };
    EXPECT_EQ(create_error("p", "", {}, prefix(repeat("p", 16))), "");
    EXPECT_EQ(create_error("p", "", {}, prefix(repeat("p", 17))), kInvalidArgument);
    EXPECT_EQ(create_error("p", "", {}, prefix("Ak")), kInvalidArgument);
    EXPECT_EQ(create_error("p", "", {}, prefix("a_b")), kInvalidArgument);
}

TEST_F(Limits, EmptyPrefixIsRefused) {
    // A prefix is 1-16 characters; an empty one given explicitly is a
    // mistake, not a request for the default.
    EXPECT_EQ(create_error("p", "", {}, {{"prefix", Value{std::string()}}}), kInvalidArgument);
}

TEST_F(Limits, SecretOf64KiBIsAcceptedAndOneByteMoreRefused) {
    const auto largest = random_bytes(64 * 1024);
    const auto id = root().import_secret("big", "", largest, {});
    EXPECT_EQ(root().get_secret(id), largest);

    const auto too_big = random_bytes(64 * 1024 + 1);
    EXPECT_EQ(bus_error_name([&] { root().import_secret("bigger", "", too_big, {}); }),
              kInvalidArgument);
    EXPECT_EQ(bus_error_name([&] { root().import_secret("empty", "", {}, {}); }), kInvalidArgument);
    EXPECT_EQ(root().list_keys(state_filter("all")).size(), 1u) << "refused imports left a record";
}

TEST_F(Limits, KeyTextOver256CharactersIsRefusedAsInvalidArgument) {
    const std::string at_limit = repeat("a", 256);
    const auto v = root().verify_key(at_limit, "");
    EXPECT_FALSE(v.valid);
    EXPECT_EQ(field<std::string>(v.info, "reason"), "malformed") << "256 characters is allowed";

    const std::string over = repeat("a", 257);
    const auto caught = catch_bus_error([&] { root().verify_key(over, ""); });
    EXPECT_EQ(caught.name, kInvalidArgument) << caught.message;
    EXPECT_EQ(caught.message.find(repeat("a", 32)), std::string::npos)
        << "the error echoes the key text: " << caught.message;
    EXPECT_EQ(bus_error_name([&] { root().verify_key(repeat("b", 1 << 20), ""); }),
              kInvalidArgument);
}

TEST_F(Limits, UnknownOptionIsRefusedAndNamed) {
    // A typo must not silently drop an expiry.
    const Dict typo = {{"expires_in_secs", Value{uint64_t{60}}}};
    EXPECT_EQ(create_error("typo", "", {}, typo), kInvalidArgument);
    EXPECT_NE(last_message_.find("expires_in_secs"), std::string::npos) << last_message_;

    const auto caught =
        catch_bus_error([&] { root().import_secret("typo", "", bytes_of("x"), typo); });
    EXPECT_EQ(caught.name, kInvalidArgument);
    EXPECT_NE(caught.message.find("expires_in_secs"), std::string::npos) << caught.message;

    const auto filter = catch_bus_error([&] {
        root().list_keys({{"stat", Value{std::string("all")}}});
    });
    EXPECT_EQ(filter.name, kInvalidArgument);
    EXPECT_NE(filter.message.find("stat"), std::string::npos) << filter.message;
    EXPECT_EQ(bus_error_name([&] { root().list_keys(state_filter("everything")); }),
              kInvalidArgument);
}

TEST_F(Limits, OptionOfTheWrongTypeIsRefusedAndNamed) {
    EXPECT_EQ(create_error("t", "", {}, {{"expires_in_sec", Value{std::string("60")}}}),
              kInvalidArgument);
    EXPECT_NE(last_message_.find("expires_in_sec"), std::string::npos) << last_message_;
    EXPECT_EQ(create_error("t", "", {}, {{"max_uses", Value{uint32_t{5}}}}), kInvalidArgument);
    EXPECT_NE(last_message_.find("max_uses"), std::string::npos) << last_message_;
    EXPECT_EQ(create_error("t", "", {}, {{"prefix", Value{uint64_t{1}}}}), kInvalidArgument);
    EXPECT_NE(last_message_.find("prefix"), std::string::npos) << last_message_;
    const auto caught = catch_bus_error([&] {
        root().import_secret("t", "", bytes_of("x"), {{"expires_in_sec", Value{int64_t{60}}}});
    });
    EXPECT_EQ(caught.name, kInvalidArgument);
    EXPECT_NE(caught.message.find("expires_in_sec"), std::string::npos) << caught.message;
}

TEST_F(RateLimit, RepeatedFailuresAreLimitedForThatCallerOnly) {
    const auto key = root().create_key("root's", "", {"read"}, {});
    const std::string address = bus().address();
    const auto guesses = run_as_nobody([&] {
        auto client = client::Client::connect_address(address);
        json reasons = json::array();
        for (int i = 0; i < 150; ++i) {
            const auto v = client.verify_key(unissued_key(), "");
            reasons.push_back({v.valid, v.id,
                               v.info.count("reason") ? field<std::string>(v.info, "reason") : ""});
        }
        return reasons;
    });
    ASSERT_TRUE(guesses.ok) << guesses.error;
    const auto& reasons = guesses.value;
    ASSERT_EQ(reasons.size(), 150u);
    for (size_t i = 0; i < 50; ++i) {
        EXPECT_EQ(reasons[i][2], "unknown") << "guess " << i << " limited too early";
    }
    size_t first_limited = reasons.size();
    for (size_t i = 0; i < reasons.size(); ++i) {
        EXPECT_EQ(reasons[i][0], false) << "guess " << i;
        if (reasons[i][2] == "rate_limited" && first_limited == reasons.size()) {
            first_limited = i;
            EXPECT_EQ(reasons[i][1], "") << "a limited answer carries no id";
        }
    }
    ASSERT_LT(first_limited, reasons.size()) << "150 failures in a burst were never rate limited";
    EXPECT_GE(first_limited, 80u) << "limited after only " << first_limited << " failures";

    // Another caller (here root, the key's owner) is unaffected...
    const auto v = root().verify_key(key.key, "read");
    EXPECT_TRUE(v.valid) << to_json(v.info).dump();
    EXPECT_EQ(field<std::string>(root().verify_key(unissued_key(), "").info, "reason"), "unknown");

    // ...while nobody stays limited, on a new connection too: the limit is per user.
    // (The allowance refills slowly, so a slow machine may see one guess pass.)
    const auto again = run_as_nobody([&] {
        auto client = client::Client::connect_address(address);
        json answers = json::array();
        for (int i = 0; i < 3; ++i) {
            answers.push_back(to_json(client.verify_key(unissued_key(), "").info)["reason"]);
        }
        return answers;
    });
    ASSERT_TRUE(again.ok) << again.error;
    EXPECT_NE(std::find(again.value.begin(), again.value.end(), "rate_limited"), again.value.end())
        << again.value.dump();
}

}  // namespace
}  // namespace apikeyd::test
