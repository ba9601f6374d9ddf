// apikeyctl against the real daemon: every command, its --json output and
// its exit statuses (0 ok, 1 verify: invalid, 2 usage, 3 daemon refused,
// 4 daemon unreachable). Keys and secrets go in on stdin, never in argv.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/cli.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using nlohmann::json;

class Cli : public DaemonTest {
  protected:
    // Verifies `key` with a copy of apikeyctl at `path`, which usage then
    // shows as the caller's executable.
    void verify_as(const std::filesystem::path& path, const std::string& key) {
        std::filesystem::copy_file(APIKEYCTL_BINARY, path);
        auto env = base_environment();
        env.push_back("DBUS_SYSTEM_BUS_ADDRESS=" + bus().address());
        const auto verified = run_process({path.string(), "verify"}, key + "\n", env);
        ASSERT_EQ(verified.exit_code, 0) << verified.describe();
    }
    ProcessResult cli(const std::vector<std::string>& args, const std::string& stdin_text = "") {
        return run_cli(bus().address(), args, stdin_text);
    }
    // Runs a command that prints JSON; fails the test unless it exits 0 with valid JSON.
    json cli_json(const std::vector<std::string>& args, const std::string& stdin_text = "") {
        const auto r = cli(args, stdin_text);
        EXPECT_EQ(r.exit_code, 0) << r.describe();
        const auto parsed = json::parse(r.out, nullptr, false);
        EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << r.describe();
        return parsed.is_discarded() ? json() : parsed;
    }
};

size_t line_count(const std::string& text) {
    size_t lines = 0;
    for (char c : text) {
        lines += c == '\n';
    }
    return lines + (!text.empty() && text.back() != '\n');
}

TEST_F(Cli, CreateWithJsonPrintsAnIdAndAKeyThatVerifies) {
    const auto created = cli_json({"create", "web", "--description", "the web API", "--scope",
                                   "read", "--scope", "write", "--yes", "--json"});
    ASSERT_TRUE(created.contains("id") && created.contains("key")) << created.dump();
    const std::string id = created["id"];
    const std::string key = created["key"];
    const auto v = root().verify_key(key, "write");
    EXPECT_TRUE(v.valid) << to_json(v.info).dump();
    EXPECT_EQ(v.id, id);
    const auto info = root().get_key(id);
    EXPECT_EQ(field<std::string>(info, "name"), "web");
    EXPECT_EQ(field<std::string>(info, "description"), "the web API");
    EXPECT_EQ(field<std::vector<std::string>>(info, "scopes"),
              (std::vector<std::string>{"read", "write"}));
}

TEST_F(Cli, CreatePrintsTheKeyAloneOnStdoutAndTheWarningOnStderr) {
    // stdin is a pipe, not a terminal: no confirmation is asked.
    const auto r = cli({"create", "plain", "--scope", "read,models:*", "--expires-in", "1h",
                        "--max-uses", "3", "--prefix", "web"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    ASSERT_EQ(line_count(r.out), 1u) << r.describe();
    const std::string key = r.out.substr(0, r.out.size() - 1);
    EXPECT_TRUE(key.starts_with("web_")) << r.describe();
    EXPECT_NE(r.err.find("will not be shown again"), std::string::npos) << r.describe();
    EXPECT_EQ(r.err.find(random_part(key)), std::string::npos) << "the key also went to stderr";

    const auto v = root().verify_key(key, "models:read");
    ASSERT_TRUE(v.valid) << to_json(v.info).dump();
    EXPECT_EQ(field<uint64_t>(v.info, "max_uses"), 3u);
    EXPECT_EQ(field<uint64_t>(v.info, "expires_usec"),
              field<uint64_t>(v.info, "created_usec") + 3600ull * 1'000'000);
}

TEST_F(Cli, ListShowsActiveKeysAndAllWithAll) {
    const auto kept = root().create_key("kept-key", "", {"read"}, {});
    const auto gone = root().create_key("revoked-key", "", {}, {});
    root().revoke_key(gone.id, "");

    const auto active = cli_json({"list", "--json"});
    ASSERT_TRUE(active.is_array()) << active.dump();
    ASSERT_EQ(active.size(), 1u) << active.dump();
    EXPECT_EQ(active[0]["id"], kept.id);
    EXPECT_EQ(active[0]["name"], "kept-key");
    EXPECT_EQ(active[0]["state"], "active");

    const auto all = cli_json({"list", "--all", "--json"});
    ASSERT_EQ(all.size(), 2u) << all.dump();

    const auto table = cli({"list"});
    ASSERT_EQ(table.exit_code, 0) << table.describe();
    EXPECT_NE(table.out.find("ID"), std::string::npos) << table.describe();
    EXPECT_NE(table.out.find(kept.id), std::string::npos) << table.describe();
    EXPECT_NE(table.out.find("kept-key"), std::string::npos) << table.describe();
    EXPECT_EQ(table.out.find(gone.id), std::string::npos) << table.describe();
    EXPECT_EQ(table.out.find(random_part(kept.key)), std::string::npos);
    EXPECT_NE(cli({"list", "--all"}).out.find(gone.id), std::string::npos);
}

TEST_F(Cli, ListReadsEveryPageOfAStoreLargerThanOneReply) {
    std::vector<std::string> made;
    for (int i = 0; i < 1005; ++i) {
        made.push_back(root().create_key("key-" + std::to_string(i), "", {}, {}).id);
    }
    EXPECT_EQ(root().list_keys({}).size(), 1000u) << "one ListKeys reply holds at most 1000";

    const auto listed = cli_json({"list", "--json"});
    ASSERT_TRUE(listed.is_array()) << listed.dump().substr(0, 500);
    std::vector<std::string> ids;
    for (const auto& key : listed) {
        ids.push_back(key["id"]);
    }
    EXPECT_EQ(ids, made) << "every key once, in creation order";
}

TEST_F(Cli, ShowPrintsOneKey) {
    const auto key = root().create_key("shown", "described", {"read"}, {});
    const auto r = cli({"show", key.id});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    for (const std::string& expected : {key.id, std::string("shown"), std::string("described"),
                                        std::string("active"), std::string("read")}) {
        EXPECT_NE(r.out.find(expected), std::string::npos) << expected << "\n" << r.describe();
    }
    const auto info = cli_json({"show", key.id, "--json"});
    EXPECT_EQ(info["id"], key.id);
    EXPECT_EQ(info["owner_uid"], 0);
}

// A caller chooses its own executable path, which usage shows to the key's
// owner, and the daemon cannot refuse it: apikeyctl must escape it.
TEST_F(Cli, TextACallerChoseIsShownEscapedAndPrintableUtf8AsItIs) {
    const std::string name =
        "r\xc3\xab"
        "ad \xe6\x97\xa5\xe6\x9c\xac";
    const auto key = root().create_key(name, "line one\n\tline two", {"read"}, {});
    TempDir dir("apikeyd-exe");
    // An escape sequence, a right-to-left override and a zero-width space.
    const auto hostile = dir /
                         "ctl\x1b[2J\xe2\x80\xae"
                         "gnp\xe2\x80\x8b.exe";
    verify_as(hostile, key.key);

    const auto usage = cli({"usage", key.id});
    ASSERT_EQ(usage.exit_code, 0) << usage.describe();
    EXPECT_NE(usage.out.find("/ctl\\u{1B}[2J\\u{202E}gnp\\u{200B}.exe"), std::string::npos)
        << usage.describe();
    for (const std::string raw : {"\x1b", "\xe2\x80\xae", "\xe2\x80\x8b"}) {
        EXPECT_EQ(usage.out.find(raw), std::string::npos) << usage.describe();
    }
    // JSON carries the path itself, escaped as JSON escapes it.
    const auto events = cli_json({"usage", key.id, "--json"})["events"];
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events[0]["caller_exe"], hostile.string());

    const auto shown = cli({"show", key.id});
    ASSERT_EQ(shown.exit_code, 0) << shown.describe();
    EXPECT_NE(shown.out.find("line one\\n\\tline two\n"), std::string::npos) << shown.describe();
    EXPECT_NE(shown.out.find(name + "\n"), std::string::npos) << shown.describe();
    const auto listed = cli({"list"});
    EXPECT_NE(listed.out.find(name), std::string::npos) << listed.describe();
}

// A path need not be UTF-8; a D-Bus string must be. The daemon escapes the
// bytes that are not, or no usage reply holding the event could be sent.
TEST_F(Cli, UsageOfACallerWhosePathIsNotUtf8CanStillBeRead) {
    const auto key = root().create_key("bytes", "", {"read"}, {});
    TempDir dir("apikeyd-exe");
    verify_as(dir / "ctl\xff\xfe", key.key);
    const auto usage = cli({"usage", key.id});
    ASSERT_EQ(usage.exit_code, 0) << usage.describe();
    EXPECT_NE(usage.out.find("/ctl\\xFF\\xFE"), std::string::npos) << usage.describe();
}

TEST_F(Cli, VerifyReadsTheKeyFromStdinAndExitsByValidity) {
    const auto key = root().create_key("checked", "", {"read"}, {});

    const auto valid = cli({"verify", "--scope", "read"}, key.key + "\n");
    EXPECT_EQ(valid.exit_code, 0) << valid.describe();
    EXPECT_NE(valid.out.find(key.id), std::string::npos) << valid.describe();

    const auto scope = cli({"verify", "--scope", "write"}, key.key + "\n");
    EXPECT_EQ(scope.exit_code, 1) << scope.describe();
    EXPECT_NE(scope.out.find("scope"), std::string::npos) << scope.describe();

    const auto typo = cli({"verify"}, with_typo(key.key) + "\n");
    EXPECT_EQ(typo.exit_code, 1) << typo.describe();
    EXPECT_NE(typo.out.find("malformed"), std::string::npos) << typo.describe();

    const auto as_json = cli_json({"verify", "--json"}, key.key);
    EXPECT_EQ(as_json["valid"], true) << as_json.dump();
    EXPECT_EQ(as_json["id"], key.id) << as_json.dump();

    EXPECT_EQ(field<uint64_t>(root().get_key(key.id), "use_count"), 2u)
        << "the two valid verifications through the CLI";
}

TEST_F(Cli, VerifyRefusesAKeyOnTheCommandLineWithoutEchoingIt) {
    const auto key = root().create_key("argv", "", {}, {});
    const auto r = cli({"verify", key.key});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_EQ(r.out.find(random_part(key.key)), std::string::npos) << r.describe();
    EXPECT_EQ(r.err.find(random_part(key.key)), std::string::npos) << r.describe();
    EXPECT_EQ(field<uint64_t>(root().get_key(key.id), "use_count"), 0u);
}

TEST_F(Cli, ImportFromStdinAndGetReturnTheExactBytes) {
    const auto imported = cli_json({"import", "openai", "--description", "workstation", "--json"},
                                   "sk-test-\x01\xff value\n");
    ASSERT_TRUE(imported.contains("id")) << imported.dump();
    const std::string id = imported["id"];
    // One trailing newline of stdin is dropped, as `echo "$TOKEN" |` adds it.
    EXPECT_EQ(root().get_secret(id), bytes_of("sk-test-\x01\xff value"));
    EXPECT_EQ(field<std::string>(root().get_key(id), "kind"), "imported");

    const auto got = cli({"get", id});
    ASSERT_EQ(got.exit_code, 0) << got.describe();
    EXPECT_EQ(got.out, "sk-test-\x01\xff value") << "a pipe gets the exact bytes, no newline";
}

TEST_F(Cli, ImportFromFileKeepsEveryByte) {
    TempDir dir;
    std::string secret("bin\0ary\xff\n\n", 10);
    write_file(dir / "secret", secret);
    const auto imported =
        cli_json({"import", "binary", "--from-file", (dir / "secret").string(), "--json"});
    const std::string id = imported.value("id", "");
    ASSERT_FALSE(id.empty()) << imported.dump();
    const auto got = cli({"get", id});
    ASSERT_EQ(got.exit_code, 0) << got.describe();
    EXPECT_EQ(got.out, secret);
}

TEST_F(Cli, RevokeEndsAKey) {
    const auto key = root().create_key("to-revoke", "", {}, {});
    const auto r = cli({"revoke", key.id, "--reason", "leaked"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const auto info = root().get_key(key.id);
    EXPECT_EQ(field<std::string>(info, "state"), "revoked");
    EXPECT_EQ(field<std::string>(info, "revoke_reason"), "leaked");

    const auto verify = cli({"verify"}, key.key + "\n");
    EXPECT_EQ(verify.exit_code, 1) << verify.describe();
    EXPECT_NE(verify.out.find("revoked"), std::string::npos) << verify.describe();

    const auto again = cli({"revoke", key.id});
    EXPECT_EQ(again.exit_code, 3) << again.describe();
}

TEST_F(Cli, StatusShowsTheDaemonsState) {
    root().create_key("one", "", {}, {});
    const auto r = cli({"status"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("unlocked"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("software"), std::string::npos) << r.describe();
    const auto status = cli_json({"status", "--json"});
    EXPECT_EQ(status["locked"], false) << status.dump();
    EXPECT_EQ(status["keys"], 1) << status.dump();
}

TEST_F(Cli, DaemonRefusalIsOneSentenceAndExitStatus3) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"show", "k_aaaaaaaaaaaa"},
          std::vector<std::string>{"revoke", "k_aaaaaaaaaaaa"},
          std::vector<std::string>{"get", "k_aaaaaaaaaaaa"}}) {
        const auto r = cli(args);
        EXPECT_EQ(r.exit_code, 3) << r.describe();
        EXPECT_EQ(r.out, "") << r.describe();
        EXPECT_EQ(line_count(r.err), 1u) << r.describe();
        EXPECT_TRUE(r.err.starts_with("apikeyctl: ")) << r.describe();
        EXPECT_NE(r.err.find("k_aaaaaaaaaaaa"), std::string::npos) << r.describe();
        EXPECT_EQ(r.err.find("org.apikeyd1.Error"), std::string::npos) << r.describe();
    }
    const auto issued = root().create_key("issued", "", {}, {});
    const auto get = cli({"get", issued.id});
    EXPECT_EQ(get.exit_code, 3) << get.describe();
    EXPECT_EQ(get.out, "");
}

TEST_F(Cli, UsageErrorsExitWith2) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{}, std::vector<std::string>{"frobnicate"},
          std::vector<std::string>{"show", "not-an-id"}, std::vector<std::string>{"create"},
          std::vector<std::string>{"create", "x", "--expires-in", "soon"}}) {
        const auto r = cli(args);
        EXPECT_EQ(r.exit_code, 2) << testing::PrintToString(args) << "\n" << r.describe();
        EXPECT_FALSE(r.err.empty()) << r.describe();
    }
    EXPECT_EQ(root().list_keys(state_filter("all")).size(), 0u) << "a usage error created a key";
    const auto empty = cli({"verify"}, "");
    EXPECT_EQ(empty.exit_code, 2) << empty.describe();
}

TEST_F(Cli, EveryCommandHasHelp) {
    for (const std::string command :
         {"", "create", "list", "show", "revoke", "verify", "import", "get", "status"}) {
        std::vector<std::string> args;
        if (!command.empty()) {
            args.push_back(command);
        }
        args.push_back("--help");
        const auto r = cli(args);
        EXPECT_EQ(r.exit_code, 0) << command << "\n" << r.describe();
        EXPECT_NE(r.out.find("Usage"), std::string::npos) << command << "\n" << r.describe();
    }
}

TEST(CliWithoutDaemon, UnreachableDaemonExitsWith4) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "integration tests run as root";
    }
    PrivateBus bus;  // a bus, but no apikeyd on it
    const auto no_daemon = run_cli(bus.address(), {"status"});
    EXPECT_EQ(no_daemon.exit_code, 4) << no_daemon.describe();
    EXPECT_TRUE(no_daemon.err.starts_with("apikeyctl: ")) << no_daemon.describe();

    TempDir dir;
    const auto no_bus = run_cli("unix:path=" + (dir / "no_such_socket").string(), {"list"});
    EXPECT_EQ(no_bus.exit_code, 4) << no_bus.describe();
    EXPECT_EQ(line_count(no_bus.err), 1u) << no_bus.describe();
}

}  // namespace
}  // namespace apikeyd::test
