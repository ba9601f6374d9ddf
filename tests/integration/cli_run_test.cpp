// `apikeyctl run`: imported secrets reach a command through its environment
// only, never its command line; with --mask whatever it prints has them
// concealed, also when a secret arrives in pieces or in hex or Base64; the
// exit status is the command's.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/cli_fixture.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

// What `filter` (a coreutils command) prints for `data`.
std::string filtered(const std::vector<std::string>& filter, const std::string& data) {
    const auto r = run_process(filter, data, base_environment());
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return r.out;
}

std::string sha256_hex(const std::string& data) {
    return filtered({"sha256sum"}, data).substr(0, 64);
}

class CliRun : public CliTest {
  protected:
    // A secret nobody could guess, so that finding it in output means it leaked.
    std::string new_secret() { return "sk-test-" + random_part(unissued_key()); }

    std::string import(const std::string& secret) {
        return root().import_secret("run-test", "", bytes_of(secret), {});
    }

    // `script` run by sh with the secret `id` in $TOKEN, its output masked.
    ProcessResult masked(const std::string& id, const std::string& script) {
        return cli({"run", "--env", "TOKEN=" + id, "--mask", "--", "sh", "-c", script});
    }
};

TEST_F(CliRun, TheCommandFindsTheSecretInItsEnvironmentAndNotOnItsCommandLine) {
    const std::string secret = new_secret();
    const auto id = import(secret);
    const auto r = cli({"run", "--env", "API_TOKEN=" + id, "--", "sh", "-c",
                        "printf %s \"$API_TOKEN\" | sha256sum; tr '\\0' ' ' < /proc/$$/cmdline; "
                        "echo; cat /proc/$PPID/comm"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_TRUE(r.out.starts_with(sha256_hex(secret))) << r.describe();
    EXPECT_NE(r.out.find("sh -c printf"), std::string::npos) << r.describe();
    EXPECT_EQ(r.out.find(secret), std::string::npos) << "the secret is on a command line";
    EXPECT_EQ(r.err.find(secret), std::string::npos);
    // Without --mask the command replaced apikeyctl: its parent is the test.
    EXPECT_EQ(r.out.find("apikeyctl"), std::string::npos) << r.describe();
}

TEST_F(CliRun, ReplacesVariablesOfTheSameNameAndTakesSeveral) {
    const std::string first = new_secret();
    const std::string second = new_secret();
    const auto r = cli({"run", "-e", "ONE=" + import(first), "-e", "TWO=" + import(second), "--",
                        "sh", "-c", "printf '%s\\n' \"$ONE\" \"$TWO\" \"$KEPT\""},
                       "", {"ONE=old", "KEPT=kept"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_EQ(r.out, first + "\n" + second + "\nkept\n");
}

TEST_F(CliRun, ExitsWithTheCommandsStatus) {
    const auto id = import(new_secret());
    for (const bool mask : {false, true}) {
        std::vector<std::string> args = {"run", "--env", "X=" + id};
        if (mask) {
            args.push_back("--mask");
        }
        auto exits = args;
        exits.insert(exits.end(), {"--", "sh", "-c", "exit 7"});
        EXPECT_EQ(cli(exits).exit_code, 7) << "mask " << mask;
        auto killed = args;
        killed.insert(killed.end(), {"--", "sh", "-c", "kill -TERM $$"});
        EXPECT_EQ(cli(killed).exit_code, 128 + 15) << "mask " << mask;
        auto missing = args;
        missing.insert(missing.end(), {"--", "/nonexistent/command"});
        const auto r = cli(missing);
        EXPECT_EQ(r.exit_code, 127) << "mask " << mask << "\n" << r.describe();
        EXPECT_NE(r.err.find("/nonexistent/command"), std::string::npos) << r.describe();
    }
}

TEST_F(CliRun, MaskConcealsTheSecretInOutputAndErrors) {
    const std::string secret = new_secret();
    const auto id = import(secret);
    const auto r =
        masked(id,
               "echo \"token: $TOKEN, twice: $TOKEN$TOKEN\"; echo \"error: $TOKEN\" >&2; "
               "cat /proc/$PPID/comm");
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_EQ(r.out,
              "token: <concealed>, twice: <concealed><concealed>\n"
              "apikeyctl\n");
    EXPECT_EQ(r.err, "error: <concealed>\n");
}

TEST_F(CliRun, MaskConcealsASecretSplitAcrossWritesAndPassesNearMisses) {
    const std::string secret = new_secret();
    const auto id = import(secret);
    // Separate writes with a pause between them arrive as separate reads.
    const auto r = masked(id,
                          "printf '<%s' \"${TOKEN%??????????}\"; sleep 0.3; "
                          "printf '%s>\\n' \"${TOKEN#${TOKEN%??????????}}\"; "
                          "printf 'near miss: %s!\\n' \"${TOKEN%?}\"; sleep 0.3; "
                          "printf '%s' \"${TOKEN%?}\"");
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const std::string almost = secret.substr(0, secret.size() - 1);
    EXPECT_EQ(r.out, "<<concealed>>\nnear miss: " + almost + "!\n" + almost) << r.describe();
}

TEST_F(CliRun, MaskConcealsTheSecretInHexAndBase64) {
    const std::string secret = new_secret();
    ASSERT_NE(secret.size() % 3, 0u) << "the padded Base64 below must have padding";
    const auto id = import(secret);
    const auto r = masked(id,
                          "printf %s \"$TOKEN\" | od -An -v -tx1 | tr -d ' \\n'; echo; "
                          "printf %s \"$TOKEN\" | basenc --base16 -w0; echo; "
                          "printf %s \"$TOKEN\" | base64 -w0; echo; "
                          "printf %s \"$TOKEN\" | basenc --base64url -w0 | tr -d =; echo");
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_EQ(r.out, "<concealed>\n<concealed>\n<concealed>\n<concealed>\n");
}

// Base64 of a longer stream holds the secret's encoding in one of three
// shapes, by where the secret starts modulo 3; the characters that mix its
// bits with the bytes around it are all that may be shown.
TEST_F(CliRun, MaskConcealsTheSecretInsideALongerBase64Stream) {
    const std::string secret = new_secret();
    const auto id = import(secret);
    for (const std::string before : {"", "x", "xy"}) {
        const auto r = masked(id, "printf '" + before + "%s!\\n' \"$TOKEN\" | base64 -w0");
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        const std::string encoded = filtered({"base64", "-w0"}, before + secret + "!\n");
        const size_t at = r.out.find("<concealed>");
        ASSERT_NE(at, std::string::npos) << "before '" << before << "'\n" << r.describe();
        const std::string shown_before = r.out.substr(0, at);
        const std::string shown_after = r.out.substr(at + std::string("<concealed>").size());
        EXPECT_TRUE(encoded.starts_with(shown_before)) << shown_before;
        EXPECT_TRUE(encoded.ends_with(shown_after)) << shown_after;
        // The secret's 8n bits fill 8n/6 characters; at most one at each end
        // is shared with the bytes around it.
        const size_t hidden = encoded.size() - shown_before.size() - shown_after.size();
        EXPECT_GE(3 * hidden + 5, 4 * secret.size()) << "before '" << before << "'\n" << r.out;
    }
}

TEST_F(CliRun, RefusesBadNamesBadIdsAndSecretsWithANulByte) {
    const std::string secret = new_secret();
    const auto id = import(secret);
    for (const auto& binding : std::vector<std::string>{"1X=" + id, "X-Y=" + id, "=" + id,
                                                        "X=" + secret, "X", "X=k_short"}) {
        const auto r = cli({"run", "--env", binding, "--", "true"});
        EXPECT_EQ(r.exit_code, 2) << binding << "\n" << r.describe();
        EXPECT_EQ(r.err.find(secret), std::string::npos) << "the secret was echoed: " << r.err;
    }
    const auto twice = cli({"run", "-e", "X=" + id, "-e", "X=" + id, "--", "true"});
    EXPECT_EQ(twice.exit_code, 2) << twice.describe();
    const auto no_command = cli({"run", "-e", "X=" + id});
    EXPECT_EQ(no_command.exit_code, 2) << no_command.describe();

    const std::string with_nul("nul\0inside", 10);
    const auto nul_id = root().import_secret("nul", "", bytes_of(with_nul), {});
    const auto nul = cli({"run", "--env", "X=" + nul_id, "--", "sh", "-c", "echo ran"});
    EXPECT_EQ(nul.exit_code, 2) << nul.describe();
    EXPECT_EQ(nul.out, "") << "the command ran";
    EXPECT_NE(nul.err.find("NUL"), std::string::npos) << nul.describe();
    EXPECT_EQ(nul.err.find("inside"), std::string::npos) << nul.describe();

    const auto issued = root().create_key("issued", "", {}, {});
    const auto refused = cli({"run", "--env", "X=" + issued.id, "--", "sh", "-c", "echo ran"});
    EXPECT_EQ(refused.exit_code, 3) << refused.describe();
    EXPECT_EQ(refused.out, "");
}

}  // namespace
}  // namespace apikeyd::test
