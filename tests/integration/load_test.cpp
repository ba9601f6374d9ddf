// Load: 32 clients, each on its own bus connection, call the real daemon
// through the private bus with a mix of what services do (mostly VerifyKey,
// then GetSecret, GetKey, GetUsage, a few creates, revokes and lists) for
// APIKEYD_LOAD_SECONDS seconds: 60 by default, 20 in a sanitized build (which
// runs several times slower; the point there is memory errors under
// concurrency, not figures). Every call must get the answer it should (a
// revoked key's "revoked" is a right answer), and in a plain build the
// daemon's memory must level off once it is warm. The figures go to the
// test log (ctest -V, or Testing/Temporary/LastTest.log).

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/stats.hpp"
#include "common/bus_names.hpp"
#include "tests/support/bus_connection.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/timing.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kClients = 32;
// After this much of the run the daemon is warm: SQLite's page cache is
// full, every client is connected, the allocator has its arenas.
constexpr auto kWarmUp = 10s;
// How much VmRSS may still grow from the warm-up mark to the end (and to
// its peak). Measured here (plain build, 2 busy shared cores, 60 s,
// 84,000-118,000 calls): warm ~14.6 MiB, 0.5-1.4 MiB of growth in four runs (see
// docs/SECURITY.md, "Fault and load tests"). What the daemon may
// legitimately gain meanwhile is the database's growth seen through
// SQLite's page cache (bounded at 2 MiB) and malloc keeping the peak of a
// ListKeys reply over the ~1,000 keys the run adds. 8 MiB is four times
// that and still catches a leak of ~100 bytes a call. A sanitized build is
// not held to it: ASan keeps freed memory in its quarantine (up to 256 MiB)
// on purpose, so there the figures are printed, not judged.
constexpr long kMaxGrowthKiB = 8 * 1024;

std::chrono::seconds load_duration() {
    if (const char* text = std::getenv("APIKEYD_LOAD_SECONDS"); text && *text) {
        return std::chrono::seconds(std::max(1L, std::strtol(text, nullptr, 10)));
    }
    return kSanitized ? 20s : 60s;
}

long vm_rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with("VmRSS:")) {
            return std::strtol(line.c_str() + 6, nullptr, 10);
        }
    }
    return -1;
}

enum Kind {
    kVerifyValid,
    kVerifyRevoked,
    kVerifyScope,
    kVerifyUnknown,
    kGetSecret,
    kGetKey,
    kGetUsage,
    kListKeys,
    kCreateKey,
    kRevokeKey,
    kKinds
};
constexpr std::array<const char*, kKinds> kKindNames = {
    "VerifyKey valid", "VerifyKey revoked", "VerifyKey scope", "VerifyKey unknown", "GetSecret",
    "GetKey",          "GetUsage",          "ListKeys",        "CreateKey",         "RevokeKey"};
// Relative weights of the mix; VerifyKey unknown is paced apart (below).
constexpr std::array<int, kKinds> kWeights = {440, 80, 50, 0, 120, 120, 80, 5, 10, 5};

struct Shared {
    std::vector<client::CreatedKey> valid;    // scope "read"
    std::vector<client::CreatedKey> revoked;  // scope "read"
    std::vector<std::string> secret_ids;
    std::vector<std::vector<uint8_t>> secrets;
};

struct Stats {
    std::array<std::vector<uint32_t>, kKinds> latency_us;
    size_t failures = 0;
    std::vector<std::string> first_failures;

    void fail(const std::string& what) {
        ++failures;
        if (first_failures.size() < 5) {
            first_failures.push_back(what);
        }
    }
};

void run_client(const std::string& address, const Shared& shared, int index, Clock::time_point end,
                Stats& stats) {
    auto client = client::Client::connect_address(address);
    std::mt19937 random(static_cast<unsigned>(index) * 7919u + 1u);
    std::discrete_distribution<int> pick(kWeights.begin(), kWeights.end());
    std::vector<std::string> mine;  // keys this client created and has not revoked
    // Failed verifications of unknown keys count against the caller's
    // brute-force guard (100 a minute, per uid, and every client here is
    // root): one client tries one a second, well inside it.
    auto next_unknown = Clock::now();
    while (Clock::now() < end) {
        int kind = pick(random);
        if (index == 0 && Clock::now() >= next_unknown) {
            kind = kVerifyUnknown;
            next_unknown += 1s;
        }
        if (kind == kRevokeKey && mine.empty()) {
            kind = kCreateKey;
        }
        const auto& key = shared.valid[random() % shared.valid.size()];
        const auto& gone = shared.revoked[random() % shared.revoked.size()];
        const size_t secret = random() % shared.secret_ids.size();
        const auto start = Clock::now();
        std::string wrong;
        try {
            switch (kind) {
                case kVerifyValid: {
                    const auto v = client.verify_key(key.key, "read");
                    if (!v.valid || v.id != key.id) {
                        wrong = "valid key refused: " + to_json(v.info).dump();
                    }
                    break;
                }
                case kVerifyRevoked: {
                    const auto v = client.verify_key(gone.key, "read");
                    if (v.valid || field<std::string>(v.info, "reason") != "revoked") {
                        wrong = "revoked key: " + to_json(v.info).dump();
                    }
                    break;
                }
                case kVerifyScope: {
                    const auto v = client.verify_key(key.key, "write");
                    if (v.valid || field<std::string>(v.info, "reason") != "scope") {
                        wrong = "scope: " + to_json(v.info).dump();
                    }
                    break;
                }
                case kVerifyUnknown: {
                    const auto v = client.verify_key(unissued_key(), "");
                    if (v.valid || field<std::string>(v.info, "reason") != "unknown") {
                        wrong = "unknown key: " + to_json(v.info).dump();
                    }
                    break;
                }
                case kGetSecret:
                    if (client.get_secret(shared.secret_ids[secret]) != shared.secrets[secret]) {
                        wrong = "GetSecret returned other bytes";
                    }
                    break;
                case kGetKey:
                    if (field<std::string>(client.get_key(key.id), "id") != key.id) {
                        wrong = "GetKey returned another key";
                    }
                    break;
                case kGetUsage:
                    if (client.get_usage(key.id, {}).empty()) {
                        wrong = "GetUsage of a used key is empty";
                    }
                    break;
                case kListKeys:
                    if (client.list_keys(state_filter("active")).size() < shared.valid.size()) {
                        wrong = "ListKeys lost keys";
                    }
                    break;
                case kCreateKey:
                    mine.push_back(
                        client.create_key("load-" + std::to_string(index), "", {"read"}, {}).id);
                    break;
                case kRevokeKey:
                    client.revoke_key(mine.back(), "load test");
                    mine.pop_back();
                    break;
                default:
                    break;
            }
        } catch (const std::exception& e) {
            wrong = std::string(kKindNames[kind]) + " failed: " + e.what();
        }
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
        if (!wrong.empty()) {
            stats.fail(wrong);
        }
        stats.latency_us[kind].push_back(static_cast<uint32_t>(us.count()));
    }
}

class Load : public DaemonTest {};

// Whether the daemon still owns its name on the bus: a daemon that died is
// a zombie until reaped, and Daemon::running() does not reap.
bool serves(PrivateBus& bus, Daemon& daemon) {
    return BusConnection::connect(bus.address()).name_owner_pid(bus_names::kBusName) ==
           daemon.pid();
}

TEST_F(Load, ThirtyTwoClientsGetTheRightAnswerAndMemoryLevelsOff) {
    const auto duration = load_duration();
    Shared shared;
    for (int i = 0; i < 64; ++i) {
        shared.valid.push_back(root().create_key("valid-" + std::to_string(i), "", {"read"}, {}));
    }
    for (int i = 0; i < 8; ++i) {
        shared.revoked.push_back(
            root().create_key("revoked-" + std::to_string(i), "", {"read"}, {}));
        root().revoke_key(shared.revoked.back().id, "load test");
    }
    for (int i = 0; i < 16; ++i) {
        shared.secrets.push_back(random_bytes(32 + static_cast<size_t>(i) * 64));
        shared.secret_ids.push_back(
            root().import_secret("secret-" + std::to_string(i), "", shared.secrets.back(), {}));
    }
    // Every key has a use before GetUsage asks for one (flushed within 1 s).
    for (const auto& key : shared.valid) {
        ASSERT_TRUE(root().verify_key(key.key, "read").valid);
    }

    const pid_t pid = daemon().pid();
    std::vector<Stats> stats(kClients);
    std::vector<std::thread> clients;
    const auto begin = Clock::now();
    const auto end = begin + duration;
    for (int i = 0; i < kClients; ++i) {
        clients.emplace_back(run_client, bus().address(), std::cref(shared), i, end,
                             std::ref(stats[i]));
    }
    // VmRSS once a second, from the main thread.
    std::vector<std::pair<double, long>> rss;  // seconds since begin, KiB
    while (Clock::now() < end) {
        rss.emplace_back(std::chrono::duration<double>(Clock::now() - begin).count(),
                         vm_rss_kib(pid));
        std::this_thread::sleep_for(1s);
    }
    for (auto& t : clients) {
        t.join();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    rss.emplace_back(seconds, vm_rss_kib(pid));
    ASSERT_TRUE(serves(bus(), daemon())) << daemon().log();

    // Figures.
    Stats all;
    for (auto& s : stats) {
        all.failures += s.failures;
        for (const auto& f : s.first_failures) {
            if (all.first_failures.size() < 10) {
                all.first_failures.push_back(f);
            }
        }
        for (int k = 0; k < kKinds; ++k) {
            all.latency_us[k].insert(all.latency_us[k].end(), s.latency_us[k].begin(),
                                     s.latency_us[k].end());
        }
    }
    std::vector<uint32_t> every;
    std::ostringstream out;
    out << std::fixed << std::setprecision(0);
    out << "[ figures  ] " << kClients << " clients for " << std::setprecision(1) << seconds << " s"
        << (kSanitized ? " (sanitized build)" : "") << std::setprecision(0) << "\n";
    for (int k = 0; k < kKinds; ++k) {
        auto& l = all.latency_us[k];
        every.insert(every.end(), l.begin(), l.end());
        out << "[ figures  ]   " << std::left << std::setw(18) << kKindNames[k] << std::right
            << std::setw(8) << static_cast<double>(l.size()) / seconds << " calls/s  p50 "
            << std::setw(7) << bench::percentile(l, 0.50) << " us  p99 " << std::setw(8)
            << bench::percentile(l, 0.99) << " us  (" << l.size() << " calls)\n";
    }
    const uint32_t p50 = bench::percentile(every, 0.50);
    const uint32_t p99 = bench::percentile(every, 0.99);
    const double total_rate = static_cast<double>(every.size()) / seconds;
    out << "[ figures  ]   " << std::left << std::setw(18) << "all" << std::right << std::setw(8)
        << total_rate << " calls/s  p50 " << std::setw(7) << p50 << " us  p99 " << std::setw(8)
        << p99 << " us  (" << every.size() << " calls)\n";
    long warm = -1;
    long peak = 0;
    for (const auto& [t, kib] : rss) {
        if (warm < 0 &&
            t >= std::min<double>(std::chrono::duration<double>(kWarmUp).count(),
                                  std::chrono::duration<double>(duration).count() / 3)) {
            warm = kib;
        }
        peak = std::max(peak, kib);
    }
    out << "[ figures  ]   VmRSS start " << rss.front().second << " KiB, warm " << warm
        << " KiB, peak " << peak << " KiB, end " << rss.back().second << " KiB\n";
    std::cout << out.str() << std::flush;
    RecordProperty("calls_per_second", std::to_string(static_cast<long>(total_rate)));
    RecordProperty("p50_us", std::to_string(p50));
    RecordProperty("p99_us", std::to_string(p99));
    RecordProperty("rss_start_kib", std::to_string(rss.front().second));
    RecordProperty("rss_warm_kib", std::to_string(warm));
    RecordProperty("rss_peak_kib", std::to_string(peak));
    RecordProperty("rss_end_kib", std::to_string(rss.back().second));

    EXPECT_EQ(all.failures, 0u) << "first failures:\n"
                                << [&] {
                                       std::string s;
                                       for (const auto& f : all.first_failures) {
                                           s += "  " + f + "\n";
                                       }
                                       return s;
                                   }();
    for (int k = 0; k < kKinds; ++k) {
        EXPECT_GT(all.latency_us[k].size(), 0u) << kKindNames[k] << " never ran";
    }
    ASSERT_GT(warm, 0) << "no VmRSS sample after the warm-up";
    if (!kSanitized) {
        EXPECT_LT(peak - warm, kMaxGrowthKiB)
            << "VmRSS grew by " << (peak - warm) << " KiB after the warm-up";
        EXPECT_LT(rss.back().second - warm, kMaxGrowthKiB);
    }
}

}  // namespace
}  // namespace apikeyd::test
