// Faults from outside, on the real daemon: kill -9 in the middle of a stream
// of creates and revokes, a state directory that runs out of room, and a
// database damaged on disk. What the daemon acknowledged must hold; what it
// cannot do it must refuse with a named error, and it must neither crash nor
// start on a database it cannot trust.

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/bus_names.hpp"
#include "tests/support/bus_connection.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/timing.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using Fault = DaemonTest;

// Whether the daemon still owns its name on the bus: a daemon that died is
// a zombie until reaped, and Daemon::running() does not reap.
bool serves(PrivateBus& bus, Daemon& daemon) {
    return BusConnection::connect(bus.address()).name_owner_pid(bus_names::kBusName) ==
           daemon.pid();
}

// ---------------------------------------------------------------------------
// kill -9 during a stream of creates and revokes

struct Acknowledged {
    std::mutex mutex;
    std::vector<client::CreatedKey> created;
    std::set<std::string> revoked;
    // The call that was on its way when the daemon died: it may or may not
    // have landed.
    std::string in_flight_kind;  // "create", "revoke" or ""
    std::string in_flight_id;    // the key a revoke in flight was about
    std::string error;           // what ended the loop
    std::atomic<size_t> operations{0};
};

// Creates keys and revokes every other one right after its create, until a
// call fails (the daemon died under it) or `limit` creates are done.
void create_and_revoke(const std::string& address, size_t limit, Acknowledged& ack) {
    auto client = client::Client::connect_address(address);
    for (size_t i = 0; i < limit; ++i) {
        try {
            {
                std::lock_guard lock(ack.mutex);
                ack.in_flight_kind = "create";
            }
            auto created = client.create_key("fault-" + std::to_string(i), "", {"read"}, {});
            std::string id = created.id;
            {
                std::lock_guard lock(ack.mutex);
                ack.created.push_back(std::move(created));
                ack.in_flight_kind.clear();
            }
            ++ack.operations;
            if (i % 2 == 1) {
                {
                    std::lock_guard lock(ack.mutex);
                    ack.in_flight_kind = "revoke";
                    ack.in_flight_id = id;
                }
                client.revoke_key(id, "fault test");
                {
                    std::lock_guard lock(ack.mutex);
                    ack.revoked.insert(id);
                    ack.in_flight_kind.clear();
                    ack.in_flight_id.clear();
                }
                ++ack.operations;
            }
        } catch (const std::exception& e) {
            std::lock_guard lock(ack.mutex);
            ack.error = e.what();
            return;
        }
    }
}

TEST_F(Fault, AcknowledgedCreatesAndRevokesSurviveKill9MidStream) {
    // At most 1,000 creates (and 500 revokes); the kill lands at a point
    // drawn at random from the first ~600 operations, while the next call is
    // on its way (the client never pauses between calls).
    constexpr size_t kCreates = 1000;
    std::random_device seed_source;
    const unsigned seed = seed_source();
    std::mt19937 random(seed);
    const size_t kill_after = std::uniform_int_distribution<size_t>(150, 600)(random);
    SCOPED_TRACE("seed " + std::to_string(seed) + ", kill after " + std::to_string(kill_after) +
                 " acknowledged operations");

    Acknowledged ack;
    std::thread worker(create_and_revoke, bus().address(), kCreates, std::ref(ack));
    const bool reached = eventually([&] { return ack.operations.load() >= kill_after; },
                                    scaled(std::chrono::seconds(30)), 1ms);
    daemon().kill9();
    worker.join();
    ASSERT_TRUE(reached) << "only " << ack.operations.load() << " operations in the time bound; "
                         << ack.error;
    ASSERT_FALSE(ack.error.empty()) << "the stream ended before the kill: nothing was in flight";

    daemon().start();
    reconnect();

    const auto all = root().list_keys(state_filter("all"));
    const size_t acknowledged = ack.created.size();
    const bool create_in_flight = ack.in_flight_kind == "create";
    EXPECT_GE(all.size(), acknowledged) << "an acknowledged create was lost";
    EXPECT_LE(all.size(), acknowledged + (create_in_flight ? 1 : 0))
        << "more keys than were created";
    std::cout << "[ figures  ] kill -9 after " << ack.operations.load()
              << " acknowledged operations (" << acknowledged << " creates, " << ack.revoked.size()
              << " revokes), in flight: "
              << (ack.in_flight_kind.empty() ? "nothing" : ack.in_flight_kind)
              << "; keys after restart: " << all.size() << std::endl;

    size_t checked_active = 0;
    size_t checked_revoked = 0;
    for (const auto& created : ack.created) {
        const auto info = find_by_id(all, created.id);
        ASSERT_TRUE(info.has_value()) << created.id << " was acknowledged and is gone";
        if (created.id == ack.in_flight_id) {
            continue;  // its revoke was in flight: either state is right
        }
        const auto v = root().verify_key(created.key, "read");
        if (ack.revoked.contains(created.id)) {
            EXPECT_FALSE(v.valid) << created.id << ": an acknowledged revoke was lost";
            EXPECT_EQ(field<std::string>(v.info, "reason"), "revoked") << created.id;
            EXPECT_EQ(field<std::string>(*info, "state"), "revoked") << created.id;
            ++checked_revoked;
        } else {
            EXPECT_TRUE(v.valid) << created.id << ": " << to_json(v.info).dump();
            EXPECT_EQ(field<std::string>(*info, "state"), "active") << created.id;
            ++checked_active;
        }
    }
    EXPECT_GT(checked_active, 0u);
    EXPECT_GT(checked_revoked, 0u);
    // The daemon can go on: a create after the restart lands and verifies.
    const auto after = root().create_key("after-restart", "", {}, {});
    EXPECT_TRUE(root().verify_key(after.key, "").valid);
}

// ---------------------------------------------------------------------------
// A full state directory

// Sets the daemon's RLIMIT_FSIZE soft limit (the hard limit stays unlimited,
// so the test can lift it again): a write past it fails as on a full disk,
// with EFBIG instead of ENOSPC, and raises SIGXFSZ.
void limit_file_size(pid_t pid, rlim_t bytes) {
    const rlimit limit{bytes, RLIM_INFINITY};
    ASSERT_EQ(prlimit(pid, RLIMIT_FSIZE, &limit, nullptr), 0) << std::strerror(errno);
}

uintmax_t largest_file_in(const fs::path& dir) {
    uintmax_t largest = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.is_regular_file()) {
            largest = std::max(largest, entry.file_size());
        }
    }
    return largest;
}

TEST_F(Fault, AFullStateDirectoryRefusesWritesWithANamedErrorAndLosesNothing) {
    std::vector<client::CreatedKey> keys;
    for (int i = 0; i < 5; ++i) {
        keys.push_back(root().create_key("before-" + std::to_string(i), "", {"read"}, {}));
    }
    const auto secret = random_bytes(256);
    const auto secret_id = root().import_secret("before-secret", "", secret, {});

    // 32 KiB of room: a few creates (each appends ~5 pages to the WAL) fit,
    // then the WAL reaches the limit.
    limit_file_size(daemon().pid(), largest_file_in(daemon().state_dir()) + 32 * 1024);
    CaughtError refused;
    for (int i = 0; i < 200 && !refused.thrown; ++i) {
        refused = catch_bus_error([&] {
            keys.push_back(root().create_key("filling-" + std::to_string(i), "", {"read"}, {}));
        });
    }
    ASSERT_TRUE(refused.thrown) << "200 creates fit in 32 KiB: the limit did not apply";
    ASSERT_TRUE(serves(bus(), daemon())) << "the daemon died when the disk was full:\n"
                                         << daemon().log();
    EXPECT_EQ(refused.name, "org.apikeyd1.Error.Internal");
    EXPECT_NE(refused.message.find("full"), std::string::npos) << refused.message;
    // A bigger write does not fit either, and is refused the same way.
    const auto big =
        catch_bus_error([&] { root().import_secret("too-big", "", random_bytes(64 * 1024), {}); });
    EXPECT_TRUE(big.thrown);
    EXPECT_EQ(big.name, "org.apikeyd1.Error.Internal");
    EXPECT_NE(big.message.find("full"), std::string::npos) << big.message;
    ASSERT_TRUE(serves(bus(), daemon())) << daemon().log();

    // Reads need no room: every acknowledged key still answers.
    for (const auto& key : keys) {
        EXPECT_TRUE(root().verify_key(key.key, "read").valid) << key.id;
    }
    EXPECT_EQ(root().get_secret(secret_id), secret);
    const std::string log = daemon().log();
    EXPECT_NE(log.find("File too large"), std::string::npos) << "the log does not name the cause:\n"
                                                             << log;

    // Room again: writes work at once, without a restart.
    limit_file_size(daemon().pid(), RLIM_INFINITY);
    keys.push_back(root().create_key("after-room", "", {"read"}, {}));
    const auto revoked = root().create_key("revoked-after-room", "", {"read"}, {});
    root().revoke_key(revoked.id, "fault test");

    // Nothing acknowledged was lost, nothing refused landed.
    EXPECT_EQ(daemon().stop(), 0) << daemon().log();
    daemon().start();
    reconnect();
    EXPECT_EQ(root().list_keys(state_filter("all")).size(), keys.size() + 2);
    for (const auto& key : keys) {
        EXPECT_TRUE(root().verify_key(key.key, "read").valid) << key.id;
    }
    EXPECT_EQ(field<std::string>(root().verify_key(revoked.key, "").info, "reason"), "revoked");
    EXPECT_EQ(root().get_secret(secret_id), secret);
    std::cout << "[ figures  ] " << keys.size() - 6
              << " creates fitted in 32 KiB before the first refusal" << std::endl;
}

// ---------------------------------------------------------------------------
// A damaged database

// Starts apikeyd by hand on `state` and waits for it to end by itself; a
// daemon that accepts the database keeps running until the time bound.
ProcessResult start_daemon_on(const fs::path& state, const std::string& bus_address) {
    auto env = base_environment();
    env.push_back("DBUS_SYSTEM_BUS_ADDRESS=" + bus_address);
    return run_process({APIKEYD_BINARY, "--state-directory=" + state.string()}, "", env,
                       scaled(std::chrono::seconds(5)));
}

// Stops the daemon cleanly and checks that the database file alone holds
// everything (the WAL was checkpointed into it), so damage to it counts.
void stop_with_everything_in_the_main_file(Daemon& daemon) {
    ASSERT_EQ(daemon.stop(), 0) << daemon.log();
    const auto wal = daemon.state_dir() / "apikeyd.db-wal";
    ASSERT_TRUE(!fs::exists(wal) || fs::file_size(wal) == 0) << "the WAL was not checkpointed";
    fs::remove(daemon.state_dir() / "apikeyd.db-shm");
}

struct Damage {
    std::string name;
    std::function<void(std::string& bytes)> apply;
};

TEST_F(Fault, ADamagedDatabaseIsRefusedAtStartWithAClearMessage) {
    std::vector<client::CreatedKey> keys;
    for (int i = 0; i < 30; ++i) {
        keys.push_back(root().create_key("damage-" + std::to_string(i), "", {"read"}, {}));
    }
    stop_with_everything_in_the_main_file(daemon());
    const fs::path db = daemon().state_dir() / "apikeyd.db";
    const std::string original = read_file(db);
    ASSERT_GE(original.size(), 3u * 4096) << "expected a few pages";
    // A b-tree page past the schema: where the first key id is stored.
    const size_t row_page = original.find(keys[0].id) / 4096 * 4096;
    ASSERT_NE(row_page, 0u) << "key rows not found past the first page";

    std::mt19937 random(42);
    const std::vector<Damage> damages = {
        {"header overwritten with garbage",
         [&](std::string& b) {
             for (size_t i = 0; i < 100; ++i) {
                 b[i] = static_cast<char>(random());
             }
         }},
        {"truncated to half", [](std::string& b) { b.resize(b.size() / 2); }},
        {"zero bytes long", [](std::string& b) { b.clear(); }},
        {"replaced by a text file",
         [](std::string& b) { b = "this is not a database\n" + std::string(5000, '#'); }},
        {"the b-tree header of a page holding a key id overwritten",
         [&](std::string& b) {
             for (size_t i = 0; i < 16; ++i) {
                 b[row_page + i] = static_cast<char>(0xa5);
             }
         }},
        {"the schema's text of the keys table overwritten",
         [&](std::string& b) {
             const size_t at = b.find("CREATE TABLE keys");
             ASSERT_NE(at, std::string::npos);
             for (size_t i = at; i < at + 64; ++i) {
                 b[i] = static_cast<char>(random());
             }
         }},
    };
    for (const auto& damage : damages) {
        SCOPED_TRACE(damage.name);
        std::string bytes = original;
        damage.apply(bytes);
        write_file(db, bytes);
        const auto started = start_daemon_on(daemon().state_dir(), bus().address());
        EXPECT_FALSE(started.timed_out) << "apikeyd started on the damaged database";
        EXPECT_EQ(started.exit_code, 1) << started.describe();
        EXPECT_NE(started.err.find(db.string()), std::string::npos)
            << "the message does not name the file: " << started.err;
        EXPECT_NE(started.err.find("damaged"), std::string::npos) << started.err;
        for (const auto& key : keys) {
            ASSERT_EQ(started.err.find(random_part(key.key)), std::string::npos) << started.err;
        }
        std::cout << "[ message  ] " << damage.name << ": " << started.err;
        // Nothing was written over the damage: the evidence stays.
        EXPECT_EQ(read_file(db), bytes) << "apikeyd changed the damaged file";
        fs::remove(daemon().state_dir() / "apikeyd.db-wal");
        fs::remove(daemon().state_dir() / "apikeyd.db-shm");
    }

    // The undamaged file still opens, with every key.
    write_file(db, original);
    daemon().start();
    reconnect();
    for (const auto& key : keys) {
        EXPECT_TRUE(root().verify_key(key.key, "read").valid) << key.id;
    }
}

TEST_F(Fault, ARowChangedOnDiskIsRefusedNotObeyedAndTheDaemonStaysUp) {
    // A change SQLite cannot see (a byte of a row's text): the record MAC
    // catches it when the row is read.
    const std::string victim_name = "victim-Q7Q7Q7Q7";
    const auto victim = root().create_key(victim_name, "", {"read"}, {});
    const auto bystander = root().create_key("bystander", "", {"read"}, {});
    stop_with_everything_in_the_main_file(daemon());
    const fs::path db = daemon().state_dir() / "apikeyd.db";
    std::string bytes = read_file(db);
    const size_t at = bytes.find(victim_name);
    ASSERT_NE(at, std::string::npos);
    ASSERT_EQ(bytes.find(victim_name, at + 1), std::string::npos) << "the name is stored twice";
    bytes[at + victim_name.size() - 1] = 'R';
    write_file(db, bytes);

    daemon().start();
    reconnect();
    const auto get = catch_bus_error([&] { root().get_key(victim.id); });
    EXPECT_TRUE(get.thrown);
    EXPECT_EQ(get.name, "org.apikeyd1.Error.Internal");
    const auto v = root().verify_key(victim.key, "read");
    EXPECT_FALSE(v.valid);
    EXPECT_EQ(field<std::string>(v.info, "reason"), "unknown");
    const auto listed = root().list_keys(state_filter("all"));
    EXPECT_FALSE(find_by_id(listed, victim.id).has_value()) << "a changed row is listed";
    EXPECT_TRUE(find_by_id(listed, bystander.id).has_value());
    EXPECT_TRUE(root().verify_key(bystander.key, "read").valid);
    EXPECT_TRUE(serves(bus(), daemon()));
    EXPECT_NE(daemon().log().find("failed its integrity check"), std::string::npos);
}

}  // namespace
}  // namespace apikeyd::test
