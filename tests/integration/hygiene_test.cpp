// Secret hygiene: no key text, no part of it, and no imported secret byte
// sequence lands in any file of the state directory or in the daemon's log;
// the state files are the owner's alone; the daemon writes no core files.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/as_nobody.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/timing.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

namespace fs = std::filesystem;

std::string hex(const std::string& bytes, bool upper) {
    static const char* lower_digits = "0123456789abcdef";
    static const char* upper_digits = "0123456789ABCDEF";
    const char* digits = upper ? upper_digits : lower_digits;
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string base64(const std::string& bytes) {
    static const char* alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) |
                           (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                           static_cast<unsigned char>(bytes[i + 2]);
        for (int shift = 18; shift >= 0; shift -= 6) {
            out += alphabet[(n >> shift) & 63];
        }
    }
    return out;  // whole groups only: enough to find an encoded copy
}

// A secret and the forms it could take in a file: raw, hex, base64.
struct Needle {
    std::string label;
    std::string bytes;
};

std::vector<Needle> needles_for(const std::string& label, const std::string& secret) {
    return {{label, secret},
            {label + " (hex)", hex(secret, false)},
            {label + " (HEX)", hex(secret, true)},
            {label + " (base64)", base64(secret)}};
}

// "file: what" for every needle found in any file under `dir`.
std::vector<std::string> leaks_in_directory(const fs::path& dir,
                                            const std::vector<Needle>& needles) {
    std::vector<std::string> found;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        if (!entry.is_regular_file()) {
            continue;
        }
        const std::string content = read_file(entry.path());
        for (const auto& needle : needles) {
            if (content.find(needle.bytes) != std::string::npos) {
                found.push_back(entry.path().filename().string() + ": " + needle.label);
            }
        }
    }
    return found;
}

std::vector<std::string> leaks_in_text(const std::string& text,
                                       const std::vector<Needle>& needles) {
    std::vector<std::string> found;
    for (const auto& needle : needles) {
        if (text.find(needle.bytes) != std::string::npos) {
            found.push_back(needle.label);
        }
    }
    return found;
}

class Hygiene : public DaemonTest {
  protected:
    // Creates keys and imports secrets, uses them, provokes errors that could
    // echo them, and returns every form they could leak in.
    std::vector<Needle> exercise() {
        std::vector<Needle> needles;
        for (int i = 0; i < 3; ++i) {
            const auto created =
                root().create_key("hygiene " + std::to_string(i), "", {"read"},
                                  i == 1 ? Dict{{"prefix", Value{std::string("hyg")}}} : Dict{});
            auto add = needles_for("key text " + std::to_string(i), created.key);
            needles.insert(needles.end(), add.begin(), add.end());
            add = needles_for("key random part " + std::to_string(i), random_part(created.key));
            needles.insert(needles.end(), add.begin(), add.end());
            root().verify_key(created.key, "read");
            root().verify_key(created.key, "write");  // refused: scope
            root().verify_key(with_typo(created.key), "");
            root().verify_key(created.key + "x", "");
            if (i == 2) {
                root().revoke_key(created.id, "hygiene");
                root().verify_key(created.key, "");
            }
        }
        // A secret with a marker that is easy to spot, and one of random bytes.
        const std::string marker = "sk-hygiene-MARKER-7f3a9c1e5b2d4f6a";
        const auto random = random_bytes(48);
        const std::string random_secret(random.begin(), random.end());
        for (const auto& secret : {marker, random_secret}) {
            const auto id = root().import_secret("secret", "", bytes_of(secret), {});
            EXPECT_EQ(root().get_secret(id), bytes_of(secret));
        }
        auto add = needles_for("imported secret", marker);
        needles.insert(needles.end(), add.begin(), add.end());
        add = needles_for("random imported secret", random_secret);
        needles.insert(needles.end(), add.begin(), add.end());
        // The first 16 bytes alone, in case it is stored in pieces.
        add = needles_for("random imported secret prefix", random_secret.substr(0, 16));
        needles.insert(needles.end(), add.begin(), add.end());
        // Oversized key text: refused, and must not be echoed or logged.
        const std::string oversized = "ak_" + std::string(300, 'Q') + marker;
        catch_bus_error([&] { root().verify_key(oversized, ""); });
        return needles;
    }
};

TEST_F(Hygiene, StateDirectoryHoldsNoKeyTextOrSecret) {
    const auto needles = exercise();
    const auto state = daemon().state_dir();
    ASSERT_TRUE(fs::exists(state / "apikeyd.db")) << "the test looks in the wrong place";
    // While running: the WAL holds the recent writes.
    EXPECT_EQ(leaks_in_directory(state, needles), std::vector<std::string>{});
    // After a clean stop, with the WAL checkpointed (or left) on disk.
    EXPECT_EQ(daemon().stop(), 0) << daemon().log();
    EXPECT_EQ(leaks_in_directory(state, needles), std::vector<std::string>{});
}

TEST_F(Hygiene, LogHoldsNoKeyTextOrSecret) {
    const auto needles = exercise();
    daemon().stop();
    const std::string log = daemon().log();
    EXPECT_FALSE(log.empty()) << "the daemon logs nothing at all: the check would prove nothing";
    EXPECT_EQ(leaks_in_text(log, needles), std::vector<std::string>{}) << log;
}

TEST_F(Hygiene, ErrorMessagesNeverEchoAKey) {
    const auto created = root().create_key("echo", "", {}, {});
    const std::string part = random_part(created.key);
    const std::vector<std::string> messages = {
        catch_bus_error([&] {
            root().verify_key(created.key + std::string(300, 'x'), "");
        }).message,
        catch_bus_error([&] { root().verify_key(created.key, "BAD SCOPE"); }).message,
        catch_bus_error([&] { root().get_key(created.key); }).message,
        catch_bus_error([&] { root().revoke_key(created.key, ""); }).message,
        catch_bus_error([&] { root().get_secret(created.id); }).message,
    };
    for (const auto& message : messages) {
        EXPECT_FALSE(message.empty());
        EXPECT_EQ(message.find(part), std::string::npos) << message;
    }
}

// Lines a caller's text could have shaped: anything but one printable line
// with its own <N> priority prefix, of bounded length.
std::vector<std::string> malformed_log_lines(const std::string& log, size_t max_length) {
    std::vector<std::string> bad;
    std::istringstream lines(log);
    std::string line;
    while (std::getline(lines, line)) {
        const bool prefixed = line.size() >= 3 && line[0] == '<' && line[1] >= '0' &&
                              line[1] <= '7' && line[2] == '>';
        const bool printable =
            std::all_of(line.begin(), line.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
        // A forged record would start a line of its own; quoted inside a
        // line it is only text.
        const bool forged = line.find("FORGED") < line.find('\'');
        if (!prefixed || !printable || forged || line.size() > max_length) {
            bad.push_back(line.substr(0, 200));
        }
    }
    return bad;
}

TEST_F(Hygiene, HostileTextNeverShapesALogLine) {
    const std::string forged = "recovery\n<0>FORGED LINE uid=0 result=ok\x1b[2J";
    const std::string huge = std::string(1 << 20, 'A') + "\n<0>FORGED";
    const auto own = root().create_key("own", "", {"read"}, {});
    const std::string log_before = daemon().log();
    const size_t lines_before = std::count(log_before.begin(), log_before.end(), '\n');
    size_t calls = 0;
    const auto refused = [&](const std::function<void()>& call) {
        ++calls;
        catch_bus_error(call);
    };
    for (const std::string& text : {forged, huge}) {
        refused([&] { root().unlock(text, {}); });
        refused([&] { root().unlock("recovery", {{"keyslot", text}}); });
        refused([&] { root().add_keyslot(text, {}); });
        refused([&] { root().remove_keyslot(text); });
        refused([&] { root().get_key(text); });
        refused([&] { root().revoke_key(text, text); });
        refused([&] { root().update_key(text, {{"name", text}}); });
        refused([&] { root().rotate_key(text, 0); });
        refused([&] { root().create_key(text, text, {text}, {}); });
        refused([&] { root().import_secret(text, text, {1}, {}); });
        refused([&] { root().get_secret(text); });
        refused([&] { root().sign(text, text, {}); });
        refused([&] { root().sign(own.id, text, {}); });
        refused([&] { root().get_usage(text, {}); });
        refused([&] { root().list_keys(state_filter(text)); });
        refused([&] { root().verify_key(text, text); });
        refused([&] { root().verify_key(own.key, text); });
        refused([&] { root().identify_key(text); });
    }
    const std::string address = bus().address();
    const auto outcome = run_as_nobody([&] {
        auto client = client::Client::connect_address(address);
        for (const std::string& text : {forged, huge}) {
            catch_bus_error([&] { client.unlock(text, {}); });
            catch_bus_error([&] { client.add_keyslot(text, {}); });
        }
        return nlohmann::json();
    });
    ASSERT_TRUE(outcome.ok) << outcome.error;
    calls += 4;
    daemon().stop();

    const std::string log = daemon().log();
    const size_t lines_after = std::count(log.begin(), log.end(), '\n');
    EXPECT_LE(lines_after - lines_before, calls + 2) << "more than one line per call (and the two "
                                                        "of stopping)";
    EXPECT_EQ(malformed_log_lines(log, 512), std::vector<std::string>{});
}

TEST_F(Hygiene, ARefusalLoopWritesABoundedNumberOfLines) {
    const auto own = root().create_key("own", "", {"read"}, {});
    for (int i = 0; i < 1000; ++i) {
        EXPECT_FALSE(root().verify_key(own.key, "write").valid);
    }
    // Refusals spend the caller's event budget like uses: stored up to it,
    // only counted beyond.
    const auto stored = root().get_usage(own.id, {{"limit", uint32_t{1000}}}).size();
    EXPECT_GE(stored, 600u);
    EXPECT_LT(stored, 1000u);
    const auto days = root().get_usage_by_day(own.id, {});
    ASSERT_EQ(days.size(), 1u);
    EXPECT_EQ(field<uint64_t>(days[0], "refused"), 1000u);
    EXPECT_EQ(field<uint64_t>(days[0], "unrecorded"), 1001u - stored);
    daemon().stop();
    std::istringstream lines(daemon().log());
    std::string line;
    size_t refusals = 0;
    while (std::getline(lines, line)) {
        refusals += line.starts_with("<4>event=verify") ? 1 : 0;
    }
    EXPECT_GE(refusals, 1u) << "no refusal logged at all: the check would prove nothing";
    EXPECT_LE(refusals, 20u) << "LogThrottle::kLinesPerWindow lines per user and minute";
}

TEST_F(Hygiene, AChangeLoopByAUserWritesABoundedNumberOfLines) {
    const std::string address = bus().address();
    const auto outcome = run_as_nobody([&] {
        auto client = client::Client::connect_address(address);
        const auto key = client.create_key("flip", "", {"read"}, {});
        for (int i = 0; i < 200; ++i) {
            client.update_key(key.id, {{"name", std::string(i % 2 ? "flip" : "flop")}});
        }
        return nlohmann::json();
    });
    ASSERT_TRUE(outcome.ok) << outcome.error;
    const auto root_key = root().create_key("admin's", "", {"read"}, {});
    root().revoke_key(root_key.id, "");
    daemon().stop();
    std::istringstream lines(daemon().log());
    std::string line;
    size_t changes = 0;
    size_t roots = 0;
    while (std::getline(lines, line)) {
        changes += line.starts_with("<5>event=") && line.find(" uid=65534 ") != std::string::npos;
        roots += line.starts_with("<5>event=") && line.find(" uid=0 ") != std::string::npos;
    }
    EXPECT_GE(changes, 1u) << "no change logged at all: the check would prove nothing";
    EXPECT_LE(changes, 20u) << "LogThrottle::kLinesPerWindow lines per user and minute";
    EXPECT_EQ(roots, 2u) << "root's create and revoke are always logged";
}

TEST_F(Hygiene, StateFilesAreTheOwnersAlone) {
    exercise();
    const auto state = daemon().state_dir();
    struct stat st {};
    ASSERT_EQ(stat((state / "apikeyd.db").c_str(), &st), 0) << "apikeyd.db missing";
    EXPECT_EQ(st.st_mode & 07777, 0600u)
        << "apikeyd.db has mode " << std::oct << (st.st_mode & 07777);
    ASSERT_EQ(stat((state / "software-keyslot.key").c_str(), &st), 0)
        << "software-keyslot.key missing";
    EXPECT_EQ(st.st_mode & 0077, 0u)
        << "software-keyslot.key has mode " << std::oct << (st.st_mode & 07777);
    // Everything else too (the WAL files come and go), and the directory.
    for (const auto& entry : fs::recursive_directory_iterator(state)) {
        ASSERT_EQ(lstat(entry.path().c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0077, 0u)
            << entry.path().filename() << " is open to others: " << std::oct
            << (st.st_mode & 07777);
        EXPECT_EQ(st.st_uid, geteuid()) << entry.path().filename();
    }
}

TEST_F(Hygiene, DaemonWritesNoCoreFiles) {
    const std::string limits = read_file("/proc/" + std::to_string(daemon().pid()) + "/limits");
    std::istringstream lines(limits);
    std::string line;
    bool found = false;
    while (std::getline(lines, line)) {
        if (line.starts_with("Max core file size")) {
            found = true;
            std::istringstream fields(line.substr(std::string("Max core file size").size()));
            std::string soft, hard;
            fields >> soft >> hard;
            EXPECT_EQ(soft, "0") << line;
            EXPECT_EQ(hard, "0") << line << " (a hard limit of 0 cannot be raised again)";
        }
    }
    EXPECT_TRUE(found) << limits;
}

TEST_F(Hygiene, KeysAndSecretsDoNotLingerInTheDaemonsMemory) {
    if (kSanitized) {
        GTEST_SKIP() << "a core of a sanitized process holds its shadow memory: too big";
    }
    if (!fs::exists("/usr/bin/gcore")) {
        GTEST_SKIP() << "gcore (gdb) is not installed";
    }
    // A name the daemon keeps (in SQLite's page cache): it must be found, or
    // the core proves nothing.
    const std::string control = "memory-control-name-4b1d";
    const auto created = root().create_key(control, "", {}, {});
    ASSERT_TRUE(root().verify_key(created.key, "").valid);
    const std::string marker = "sk-memory-MARKER-0e5c2a7f9b13d846";
    const auto id = root().import_secret("secret", "", bytes_of(marker), {});
    ASSERT_EQ(root().get_secret(id), bytes_of(marker));
    // Sign with the secret: its data is often a request body, as private as
    // the secret, and the HMAC runs on the opened secret inside the daemon.
    const std::string signed_marker = "signed-data-MARKER-93d1f0a6c4e27b58";
    const auto mac = root().sign(id, "hmac-sha256", bytes_of("payload:" + signed_marker));
    ASSERT_EQ(mac.size(), 32u);

    // As a crash dump would see it: gcore works as root on a non-dumpable process.
    TempDir dir;
    const auto core_prefix = dir / "core";
    const auto dumped =
        run_process({"gcore", "-o", core_prefix.string(), std::to_string(daemon().pid())}, "",
                    base_environment(), scaled(std::chrono::seconds(60)));
    const auto core = fs::path(core_prefix.string() + "." + std::to_string(daemon().pid()));
    ASSERT_TRUE(fs::exists(core)) << dumped.describe();
    const std::string memory = read_file(core);
    ASSERT_NE(memory.find(control), std::string::npos) << "the core lacks the daemon's heap";
    EXPECT_EQ(memory.find(random_part(created.key)), std::string::npos)
        << "the key text stays in the daemon's memory after the calls that carried it";
    EXPECT_EQ(memory.find(marker), std::string::npos)
        << "the imported secret stays in the daemon's memory after the calls that carried it";
    EXPECT_EQ(memory.find(signed_marker), std::string::npos)
        << "the data of a Sign call stays in the daemon's memory after the call";
    EXPECT_EQ(memory.find(std::string(mac.begin(), mac.end())), std::string::npos)
        << "the MAC of a Sign call stays in the daemon's memory after the call";
}

}  // namespace
}  // namespace apikeyd::test
