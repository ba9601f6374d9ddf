// apikeyctl's commands for a key after it was created, against the real
// daemon: rotate (with and without a grace period), update, usage (the
// events and the chart per day), watch (the signals, as a child process read
// line by line) and sign (checked against OpenSSL's HMAC).

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/cli_fixture.hpp"
#include "tests/support/timing.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr uint64_t kUsecPerSec = 1'000'000;

std::string reason_of(const client::Verification& v) {
    const auto it = v.info.find("reason");
    return it == v.info.end() ? "(none)" : field<std::string>(v.info, "reason");
}

// The one line of stdout, without its newline.
std::string only_line(const ProcessResult& r) {
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.describe();
    return r.out.substr(0, r.out.find('\n'));
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::stringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

using CliRotate = CliTest;
using CliUpdate = CliTest;
using CliUsage = CliTest;
using CliWatch = CliTest;
using CliSign = CliTest;

TEST_F(CliRotate, WithoutGraceTheOldTextStopsAtOnce) {
    const auto created = root().create_key("rotated", "", {"read"}, {});
    const auto r = cli({"rotate", created.id});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const std::string key = only_line(r);
    EXPECT_NE(key, created.key);
    EXPECT_NE(r.err.find("no longer works"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("will not be shown again"), std::string::npos) << r.describe();
    EXPECT_EQ(r.err.find(random_part(key)), std::string::npos) << "the key also went to stderr";

    const auto fresh = root().verify_key(key, "read");
    EXPECT_TRUE(fresh.valid) << to_json(fresh.info).dump();
    EXPECT_EQ(fresh.id, created.id);
    const auto old = root().verify_key(created.key, "");
    EXPECT_FALSE(old.valid);
    EXPECT_EQ(reason_of(old), "rotated");

    const auto again = cli_json({"rotate", created.id, "--json"});
    EXPECT_EQ(again["id"], created.id) << again.dump();
    ASSERT_TRUE(again["key"].is_string()) << again.dump();
    EXPECT_TRUE(root().verify_key(again["key"].get<std::string>(), "").valid);
    EXPECT_FALSE(root().verify_key(key, "").valid);
}

TEST_F(CliRotate, WithGraceTheOldTextWorksUntilTheGraceEnds) {
    const auto created = root().create_key("graceful", "", {"read"}, {});
    const auto r = cli({"rotate", created.id, "--grace", "2s"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const std::string key = only_line(r);
    EXPECT_NE(r.err.find("keeps working for 2 seconds"), std::string::npos) << r.describe();

    const auto during = root().verify_key(created.key, "read");
    EXPECT_TRUE(during.valid) << "the grace period has just begun: " << reason_of(during);
    EXPECT_EQ(during.id, created.id);
    EXPECT_TRUE(root().verify_key(key, "read").valid);

    EXPECT_TRUE(
        eventually([&] { return reason_of(root().verify_key(created.key, "")) == "rotated"; },
                   scaled(10s), 100ms))
        << "the old text still verifies after its grace";
    EXPECT_TRUE(root().verify_key(key, "read").valid);
}

TEST_F(CliRotate, RefusesImportedSecretsAndBadGracePeriods) {
    const auto secret = root().import_secret("imported", "", bytes_of("s3cret"), {});
    const auto imported = cli({"rotate", secret});
    EXPECT_EQ(imported.exit_code, 3) << imported.describe();
    EXPECT_EQ(imported.out, "") << imported.describe();

    const auto created = root().create_key("kept", "", {}, {});
    const auto soon = cli({"rotate", created.id, "--grace", "soon"});
    EXPECT_EQ(soon.exit_code, 2) << soon.describe();
    const auto too_long = cli({"rotate", created.id, "--grace", "91d"});
    EXPECT_EQ(too_long.exit_code, 3) << too_long.describe();
    EXPECT_TRUE(root().verify_key(created.key, "").valid) << "a refused rotation changed the key";
}

TEST_F(CliUpdate, ChangesEachFieldAndLeavesTheRest) {
    const auto created = root().create_key("before", "old text", {"read"}, {});
    const auto update = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"update", created.id});
        const auto r = cli(args);
        EXPECT_EQ(r.exit_code, 0) << r.describe();
        EXPECT_NE(r.out.find("Updated key " + created.id), std::string::npos) << r.describe();
        return root().get_key(created.id);
    };

    auto info = update({"--name", "after"});
    EXPECT_EQ(field<std::string>(info, "name"), "after");
    EXPECT_EQ(field<std::string>(info, "description"), "old text");

    info = update({"--description", "new text"});
    EXPECT_EQ(field<std::string>(info, "description"), "new text");
    EXPECT_EQ(field<std::string>(info, "name"), "after");

    info = update({"--scopes", "models:read,write"});
    EXPECT_EQ(field<std::vector<std::string>>(info, "scopes"),
              (std::vector<std::string>{"models:read", "write"}));
    info = update({"--access", "full"});
    EXPECT_EQ(field<std::vector<std::string>>(info, "scopes"), (std::vector<std::string>{"*"}));
    info = update({"--access", "write"});
    EXPECT_EQ(field<std::vector<std::string>>(info, "scopes"),
              (std::vector<std::string>{"read", "write"}));

    const uint64_t before = now_usec();
    info = update({"--expires-in", "1h"});
    const uint64_t expires = field<uint64_t>(info, "expires_usec");
    EXPECT_GE(expires, before + 3600 * kUsecPerSec);
    EXPECT_LE(expires, now_usec() + 3600 * kUsecPerSec);
    info = update({"--never-expires"});
    EXPECT_EQ(field<uint64_t>(info, "expires_usec"), 0u);

    info = update({"--max-uses", "5"});
    EXPECT_EQ(field<uint64_t>(info, "max_uses"), 5u);
    info = update({"--max-uses", "0"});
    EXPECT_EQ(field<uint64_t>(info, "max_uses"), 0u);

    info = update({"--rate-limit", "7"});
    EXPECT_EQ(field<uint32_t>(info, "rate_limit_per_min"), 7u);

    const auto as_json =
        cli_json({"update", created.id, "--name", "both", "--rate-limit", "0", "--json"});
    EXPECT_EQ(as_json["name"], "both") << as_json.dump();
    EXPECT_EQ(as_json["rate_limit_per_min"], 0) << as_json.dump();
    EXPECT_EQ(as_json["description"], "new text") << as_json.dump();
    EXPECT_TRUE(root().verify_key(created.key, "write").valid) << "an update changed the text";
}

TEST_F(CliUpdate, RefusesNothingToChangeAndContradictions) {
    const auto created = root().create_key("unchanged", "", {"read"}, {});
    const auto nothing = cli({"update", created.id});
    EXPECT_EQ(nothing.exit_code, 2) << nothing.describe();
    EXPECT_NE(nothing.err.find("Nothing to change"), std::string::npos) << nothing.describe();

    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--scopes", "a", "--access", "read"},
          std::vector<std::string>{"--expires-in", "1h", "--never-expires"},
          std::vector<std::string>{"--access", "admin"},
          std::vector<std::string>{"--max-uses", "-1"},
          std::vector<std::string>{"--rate-limit", "99999999999"}}) {
        std::vector<std::string> full = {"update", created.id};
        full.insert(full.end(), args.begin(), args.end());
        const auto r = cli(full);
        EXPECT_EQ(r.exit_code, 2) << testing::PrintToString(args) << "\n" << r.describe();
    }
    EXPECT_EQ(field<std::vector<std::string>>(root().get_key(created.id), "scopes"),
              (std::vector<std::string>{"read"}));

    root().revoke_key(created.id, "");
    const auto revoked = cli({"update", created.id, "--name", "late"});
    EXPECT_EQ(revoked.exit_code, 3) << revoked.describe();
    const auto secret = root().import_secret("imported", "", bytes_of("s3cret"), {});
    const auto scopes = cli({"update", secret, "--scopes", "read"});
    EXPECT_EQ(scopes.exit_code, 3) << scopes.describe();
}

TEST_F(CliUsage, ShowsTheEventsAndAChartOfEveryDay) {
    const auto created = root().create_key("used", "", {"read"}, {});
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(root().verify_key(created.key, "read").valid);
    }
    for (int i = 0; i < 2; ++i) {
        ASSERT_FALSE(root().verify_key(created.key, "write").valid);
    }

    // Verification events are written in batches, about every second.
    json usage;
    const auto verifications = [&usage] {
        size_t n = 0;
        for (const auto& event : usage["events"]) {
            n += event["action"] == "verify";
        }
        return n;
    };
    ASSERT_TRUE(eventually(
        [&] {
            usage = cli_json({"usage", created.id, "--json"});
            return verifications() == 5;
        },
        scaled(10s), 200ms))
        << usage.dump(2);
    EXPECT_EQ(usage["id"], created.id);
    const auto& newest = usage["events"][0];
    EXPECT_EQ(newest["action"], "verify") << usage.dump(2);
    EXPECT_EQ(newest["result"], "scope") << usage.dump(2);
    EXPECT_EQ(newest["caller_uid"], 0) << usage.dump(2);

    const auto& days = usage["days"];
    ASSERT_EQ(days.size(), 30u) << "the default window, gaps filled: " << days.dump();
    const auto& today = days.back();
    const uint64_t today_usec = now_usec() / (86400 * kUsecPerSec) * 86400 * kUsecPerSec;
    EXPECT_EQ(today["day_usec"], today_usec) << today.dump();
    EXPECT_GE(today["ok"].get<uint64_t>(), 3u) << today.dump();
    EXPECT_EQ(today["refused"], 2) << today.dump();
    EXPECT_EQ(days.front()["ok"], 0) << days.dump();
    EXPECT_EQ(days.front()["refused"], 0) << days.dump();

    const auto r = cli({"usage", created.id});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    for (const std::string expected : {"TIME", "ACTION", "RESULT", "UID", "PID", "EXE", "UNIT",
                                       "verify", "scope", "Per day (UTC)"}) {
        EXPECT_NE(r.out.find(expected), std::string::npos) << expected << "\n" << r.describe();
    }
    const std::string date = today["date"];
    const size_t chart = r.out.find("Per day (UTC)");
    ASSERT_NE(chart, std::string::npos) << r.describe();
    const std::string today_line = [&] {
        for (const auto& line : lines_of(r.out.substr(chart))) {
            if (line.starts_with(date)) {
                return line;
            }
        }
        return std::string();
    }();
    ASSERT_FALSE(today_line.empty()) << r.describe();
    // The widest day is today: its bar is the full 40 cells, ok then refused.
    EXPECT_TRUE(std::regex_search(today_line, std::regex("(\u2588)+(\u2591)+ "))) << today_line;
    EXPECT_NE(today_line.find(std::to_string(today["ok"].get<uint64_t>()) + " ok"),
              std::string::npos)
        << today_line;
    EXPECT_NE(today_line.find("2 refused"), std::string::npos) << today_line;
    EXPECT_TRUE(lines_of(r.out).back().starts_with(date)) << "the chart ends with today\n" << r.out;

    const auto narrow = cli_json({"usage", created.id, "--days", "7", "--limit", "2", "--json"});
    EXPECT_EQ(narrow["days"].size(), 7u) << narrow.dump();
    EXPECT_EQ(narrow["events"].size(), 2u) << narrow.dump();
    const auto recent = cli_json({"usage", created.id, "--since", "1h", "--json"});
    EXPECT_EQ(recent["events"], usage["events"]) << recent.dump();

    const auto unknown = cli({"usage", "k_aaaaaaaaaaaa"});
    EXPECT_EQ(unknown.exit_code, 3) << unknown.describe();
}

// Reads `fd` until `lines` whole lines have arrived, or the time is up.
std::string read_lines(int fd, size_t lines, std::chrono::milliseconds timeout) {
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) < lines) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            break;
        }
        char buffer[1024];
        const ssize_t n = read(fd, buffer, sizeof buffer);
        if (n <= 0) {
            break;
        }
        text.append(buffer, static_cast<size_t>(n));
    }
    return text;
}

struct Watcher {
    Pipe out = make_pipe();
    Pipe err = make_pipe();
    ChildProcess process;

    Watcher(const std::string& bus_address, std::vector<std::string> args) {
        args.insert(args.begin(), {APIKEYCTL_BINARY, "watch"});
        auto env = base_environment();
        env.push_back("DBUS_SYSTEM_BUS_ADDRESS=" + bus_address);
        process = ChildProcess(spawn({args, env, -1, out.write.get(), err.write.get()}));
        out.write.reset();
        err.write.reset();
    }
};

TEST_F(CliWatch, PrintsCreatedChangedAndRevokedAsTheyHappen) {
    Watcher text(bus().address(), {});
    Watcher as_json(bus().address(), {"--json"});
    // It says so once it is subscribed: what happens after is not missed.
    for (Watcher* w : {&text, &as_json}) {
        const std::string ready = read_lines(w->err.read.get(), 1, scaled(10s));
        ASSERT_NE(ready.find("Watching"), std::string::npos) << ready;
    }

    const auto created = root().create_key("watched", "", {}, {});
    root().update_key(created.id, {{"name", Value{std::string("renamed")}}});
    root().revoke_key(created.id, "");

    const auto lines = lines_of(read_lines(text.out.read.get(), 3, scaled(10s)));
    ASSERT_EQ(lines.size(), 3u) << testing::PrintToString(lines);
    const char* events[] = {"created", "changed", "revoked"};
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_TRUE(
            std::regex_match(lines[i], std::regex("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ " +
                                                  std::string(events[i]) + " " + created.id)))
            << lines[i];
    }

    const auto records = lines_of(read_lines(as_json.out.read.get(), 3, scaled(10s)));
    ASSERT_EQ(records.size(), 3u) << testing::PrintToString(records);
    for (size_t i = 0; i < 3; ++i) {
        const auto record = json::parse(records[i], nullptr, false);
        ASSERT_FALSE(record.is_discarded()) << records[i];
        EXPECT_EQ(record["event"], events[i]) << records[i];
        EXPECT_EQ(record["id"], created.id) << records[i];
        EXPECT_TRUE(record["time"].is_string() && record["time_usec"].is_number()) << records[i];
    }

    // Until interrupted.
    EXPECT_TRUE(text.process.running());
    const auto stopped = text.process.stop(SIGINT, scaled(5s));
    EXPECT_FALSE(stopped.timed_out);
    EXPECT_EQ(exit_code_of(stopped.wait_status), 128 + SIGINT);
}

// HMAC-SHA256(key, data) as `openssl dgst` computes it, in hex.
std::string openssl_hmac(const std::string& key, const std::string& data) {
    const auto r =
        run_process({"openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt", "key:" + key}, data,
                    base_environment());
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    const auto hex = r.out.substr(r.out.rfind(' ') + 1);
    return hex.substr(0, hex.find('\n'));
}

std::string bytes_to_hex(const std::string& bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string hex;
    for (const unsigned char c : bytes) {
        hex += kDigits[c >> 4];
        hex += kDigits[c & 0x0F];
    }
    return hex;
}

TEST_F(CliSign, GivesTheHmacOpenSslComputesForTheSameSecretAndData) {
    const std::string key = "test-hmac-key-" + random_part(unissued_key());
    const auto id = root().import_secret("hmac", "", bytes_of(key), {});
    constexpr char kData[] = "payload\n\0\xff with binary bytes";
    const std::string data(kData, sizeof kData - 1);
    const std::string expected = openssl_hmac(key, data);
    ASSERT_EQ(expected.size(), 64u) << expected;

    const auto hex = cli({"sign", id}, data);
    ASSERT_EQ(hex.exit_code, 0) << hex.describe();
    EXPECT_EQ(hex.out, expected + "\n");

    const auto raw = cli({"sign", id, "--raw"}, data);
    ASSERT_EQ(raw.exit_code, 0) << raw.describe();
    EXPECT_EQ(bytes_to_hex(raw.out), expected);

    const auto base64 = cli({"sign", id, "--base64"}, data);
    ASSERT_EQ(base64.exit_code, 0) << base64.describe();
    const auto decoded = run_process({"base64", "-d"}, base64.out, base_environment());
    EXPECT_EQ(bytes_to_hex(decoded.out), expected) << base64.describe();

    const auto as_json = cli_json({"sign", id, "--json"}, data);
    EXPECT_EQ(as_json["hex"], expected) << as_json.dump();
    EXPECT_EQ(as_json["base64"].get<std::string>() + "\n", base64.out) << as_json.dump();
    EXPECT_EQ(as_json["algorithm"], "hmac-sha256") << as_json.dump();

    EXPECT_EQ(cli({"sign", id}, "").out, openssl_hmac(key, "") + "\n") << "empty data";
    EXPECT_EQ(field<uint64_t>(root().get_key(id), "use_count"), 5u);
}

TEST_F(CliSign, RefusesIssuedKeysUnknownAlgorithmsAndTooMuchData) {
    const auto issued = root().create_key("issued", "", {}, {});
    const auto r = cli({"sign", issued.id}, "data");
    EXPECT_EQ(r.exit_code, 3) << r.describe();
    EXPECT_EQ(r.out, "") << r.describe();

    const auto id = root().import_secret("hmac", "", bytes_of("k"), {});
    const auto md5 = cli({"sign", id, "--algorithm", "hmac-md5"}, "data");
    EXPECT_EQ(md5.exit_code, 3) << md5.describe();
    EXPECT_NE(md5.err.find("hmac-sha256"), std::string::npos) << md5.describe();

    const auto big = cli({"sign", id}, std::string(16 * 1024 * 1024 + 1, 'x'));
    EXPECT_EQ(big.exit_code, 2) << big.exit_code << "\n" << big.err;
    EXPECT_EQ(field<uint64_t>(root().get_key(id), "use_count"), 0u);
}

}  // namespace
}  // namespace apikeyd::test
