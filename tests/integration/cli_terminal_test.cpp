// apikeyctl on a terminal (a pseudo-terminal the test types into): create
// without a name walks a person through every setting; --copy puts the key on
// the clipboard through the terminal (OSC 52) or a clipboard tool's standard
// input, and never on a command line.

#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/cli_fixture.hpp"
#include "tests/support/pty.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/timing.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kUsecPerDay = 86'400'000'000;

std::string decode_base64(std::string_view text) {
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    uint32_t bits = 0;
    int count = 0;
    for (const char c : text) {
        const size_t value = kAlphabet.find(c);
        if (value == std::string_view::npos) {
            continue;  // padding
        }
        bits = (bits << 6) | static_cast<uint32_t>(value);
        count += 6;
        if (count >= 8) {
            count -= 8;
            out.push_back(static_cast<char>((bits >> count) & 0xFF));
        }
    }
    return out;
}

// The processes whose command line contains `text`.
std::vector<pid_t> processes_with_argument(const std::string& text) {
    std::vector<pid_t> pids;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        try {
            if (read_file(entry.path() / "cmdline").find(text) != std::string::npos) {
                pids.push_back(std::stoi(name));
            }
        } catch (const std::exception&) {
            // It ended while the list was read.
        }
    }
    return pids;
}

class CliTerminal : public CliTest {
  protected:
    std::vector<std::string> environment(const std::vector<std::string>& extra = {}) {
        auto env = base_environment();
        env.push_back("DBUS_SYSTEM_BUS_ADDRESS=" + bus().address());
        env.insert(env.end(), extra.begin(), extra.end());
        return env;
    }

    // The key text on a line of its own in the terminal's output.
    static std::string key_line(const std::string& output) {
        const size_t start = output.find("\nak_");
        if (start == std::string::npos) {
            return "";
        }
        const size_t end = output.find_first_of("\r\n", start + 1);
        return output.substr(start + 1, end - start - 1);
    }

    // --copy leaves a process behind that clears the clipboard 45 s later;
    // a test does not wait for it. It has the command line of the apikeyctl
    // it came from, with the name only this test used.
    static void end_clearing_process(const std::string& unique_name) {
        for (const pid_t pid : processes_with_argument(unique_name)) {
            kill(pid, SIGKILL);
        }
    }
};

TEST_F(CliTerminal, CreateWithoutANameAsksForEachSettingAndConfirms) {
    PtyProcess create({APIKEYCTL_BINARY, "create"}, environment());
    ASSERT_TRUE(create.wait_for("Name", scaled(10s))) << create.output();
    create.type("wizard-key\n");
    ASSERT_TRUE(create.wait_for("Description", scaled(5s))) << create.output();
    create.type("made on a terminal\n");
    ASSERT_TRUE(create.wait_for("read and write", scaled(5s))) << create.output();
    ASSERT_TRUE(create.wait_for("Choose [1-4]", scaled(5s))) << create.output();
    create.type("7\n");  // not a choice: asked again
    ASSERT_TRUE(create.wait_for("Choose [1-4]", scaled(5s))) << create.output();
    create.type("2\n");
    ASSERT_TRUE(create.wait_for("in 30 days", scaled(5s))) << create.output();
    ASSERT_TRUE(create.wait_for("Choose [1-5]", scaled(5s))) << create.output();
    create.type("2\n");
    ASSERT_TRUE(create.wait_for("Create it? [y/N]", scaled(5s))) << create.output();
    EXPECT_NE(create.output().find("read, write"), std::string::npos) << create.output();
    create.type("y\n");
    ASSERT_EQ(create.wait_exit(scaled(10s)), 0) << create.output();
    EXPECT_NE(create.output().find("will not be shown again"), std::string::npos);

    const std::string key = key_line(create.output());
    const auto verified = root().verify_key(key, "write");
    ASSERT_TRUE(verified.valid) << create.output();
    const auto info = root().get_key(verified.id);
    EXPECT_EQ(field<std::string>(info, "name"), "wizard-key");
    EXPECT_EQ(field<std::string>(info, "description"), "made on a terminal");
    EXPECT_EQ(field<std::vector<std::string>>(info, "scopes"),
              (std::vector<std::string>{"read", "write"}));
    EXPECT_EQ(field<uint64_t>(info, "expires_usec"),
              field<uint64_t>(info, "created_usec") + 30 * kUsecPerDay);
}

TEST_F(CliTerminal, CreateAsksForCustomScopesAndExpiryAndSkipsWhatWasGiven) {
    PtyProcess create({APIKEYCTL_BINARY, "create", "--description", "given"}, environment());
    ASSERT_TRUE(create.wait_for("Name", scaled(10s))) << create.output();
    create.type("\n");  // a name is needed: asked again
    ASSERT_TRUE(create.wait_for("Name", scaled(5s))) << create.output();
    create.type("custom-key\n");
    ASSERT_TRUE(create.wait_for("Choose [1-4]", scaled(5s))) << create.output();
    create.type("4\n");
    ASSERT_TRUE(create.wait_for("Scopes", scaled(5s))) << create.output();
    create.type("models:read, models:write\n");
    ASSERT_TRUE(create.wait_for("Choose [1-5]", scaled(5s))) << create.output();
    create.type("5\n");
    ASSERT_TRUE(create.wait_for("Expires after", scaled(5s))) << create.output();
    create.type("soon\n");
    ASSERT_TRUE(create.wait_for("not a duration", scaled(5s))) << create.output();
    create.type("45d\n");
    ASSERT_TRUE(create.wait_for("Create it? [y/N]", scaled(5s))) << create.output();
    EXPECT_EQ(create.output().find("Description ("), std::string::npos)
        << "the description was given as an option: " << create.output();
    create.type("y\n");
    ASSERT_EQ(create.wait_exit(scaled(10s)), 0) << create.output();

    const auto verified = root().verify_key(key_line(create.output()), "models:write");
    ASSERT_TRUE(verified.valid) << create.output();
    const auto info = root().get_key(verified.id);
    EXPECT_EQ(field<std::string>(info, "description"), "given");
    EXPECT_EQ(field<std::vector<std::string>>(info, "scopes"),
              (std::vector<std::string>{"models:read", "models:write"}));
    EXPECT_EQ(field<uint64_t>(info, "expires_usec"),
              field<uint64_t>(info, "created_usec") + 45 * kUsecPerDay);
}

TEST_F(CliTerminal, CreateMakesNoKeyWhenTheAnswerIsNoOrTheInputEnds) {
    PtyProcess declined({APIKEYCTL_BINARY, "create", "--scope", "read", "--expires-in", "1d"},
                        environment());
    ASSERT_TRUE(declined.wait_for("Name", scaled(10s))) << declined.output();
    declined.type("declined\n");
    ASSERT_TRUE(declined.wait_for("Description", scaled(5s))) << declined.output();
    declined.type("\n");
    ASSERT_TRUE(declined.wait_for("Create it? [y/N]", scaled(5s))) << declined.output();
    declined.type("n\n");
    EXPECT_EQ(declined.wait_exit(scaled(10s)), 0) << declined.output();
    EXPECT_NE(declined.output().find("no key was created"), std::string::npos);

    PtyProcess ended({APIKEYCTL_BINARY, "create"}, environment());
    ASSERT_TRUE(ended.wait_for("Name", scaled(10s))) << ended.output();
    ended.type("\x04");  // Ctrl-D
    EXPECT_EQ(ended.wait_exit(scaled(10s)), 0) << ended.output();
    EXPECT_NE(ended.output().find("no key was created"), std::string::npos) << ended.output();

    EXPECT_EQ(root().list_keys(state_filter("all")).size(), 0u);
}

TEST_F(CliTerminal, CopyWithoutADisplaySendsTheKeyToTheTerminalByOsc52) {
    const std::string name = "osc52-" + random_part(unissued_key()).substr(0, 12);
    PtyProcess create({APIKEYCTL_BINARY, "create", name, "--yes", "--copy"}, environment());
    const int exit_code = create.wait_exit(scaled(10s));
    const std::string& output = create.output();
    const std::string key = key_line(output);
    // While the clearing process still runs.
    const auto with_key_in_argv =
        key.empty() ? std::vector<pid_t>{} : processes_with_argument(random_part(key));
    end_clearing_process(name);
    ASSERT_EQ(exit_code, 0) << output;
    ASSERT_TRUE(root().verify_key(key, "").valid) << output;
    const size_t start = output.find("\x1b]52;c;");
    ASSERT_NE(start, std::string::npos) << output;
    const size_t payload = start + 7;
    const size_t end = output.find('\a', payload);
    ASSERT_NE(end, std::string::npos) << output;
    EXPECT_EQ(decode_base64(output.substr(payload, end - payload)), key);
    EXPECT_NE(output.find("will be cleared at"), std::string::npos) << output;
    EXPECT_TRUE(with_key_in_argv.empty()) << "the key is on a command line";
}

TEST_F(CliTerminal, CopyGivesTheKeyToTheClipboardToolOnItsStandardInput) {
    // A stand-in for xclip that keeps the clipboard in a file and logs its
    // arguments: the real tool needs an X server.
    TempDir tools;
    const std::string log = (tools / "argv.log").string();
    const std::string clipboard = (tools / "clipboard").string();
    std::string script = "#!/bin/sh\n";
    script += "printf '%s\\n' \"$*\" >> '" + log + "'\n";
    script += "case \"$*\" in\n";
    script += "  *-in*) cat > '" + clipboard + "' ;;\n";
    script += "  *-out*) cat '" + clipboard + "' ;;\n";
    script += "esac\n";
    write_file(tools / "xclip", script);
    std::filesystem::permissions(tools / "xclip", std::filesystem::perms::owner_all);
    const std::string name = "xclip-" + random_part(unissued_key()).substr(0, 12);

    auto env = base_environment();
    for (auto& entry : env) {
        if (entry.starts_with("PATH=")) {
            entry = "PATH=" + tools.path().string() + ":" + entry.substr(5);
        }
    }
    env.push_back("DISPLAY=:99");
    env.push_back("DBUS_SYSTEM_BUS_ADDRESS=" + bus().address());
    const auto r = run_process({APIKEYCTL_BINARY, "create", name, "--copy"}, "", env,
                               scaled(std::chrono::seconds(30)));
    end_clearing_process(name);
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    ASSERT_FALSE(r.timed_out) << "the clipboard tool kept apikeyctl's output open";

    const std::string key = r.out.substr(0, r.out.find('\n'));
    ASSERT_TRUE(root().verify_key(key, "").valid) << r.describe();
    EXPECT_EQ(read_file(tools / "clipboard"), key);
    const std::string argv_log = read_file(tools / "argv.log");
    EXPECT_NE(argv_log.find("-selection clipboard -in"), std::string::npos) << argv_log;
    EXPECT_EQ(argv_log.find(random_part(key)), std::string::npos) << argv_log;
    EXPECT_NE(r.err.find("Copied the key to the clipboard with xclip"), std::string::npos)
        << r.describe();
    EXPECT_NE(r.err.find("will be cleared at"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace apikeyd::test
