// The key service's whole paths in process, without D-Bus: what the daemon
// itself spends on one VerifyKey, GetSecret or CreateKey (store, crypto and
// rules together), to set against the load tool's figures over the bus.

#include <benchmark/benchmark.h>

#include <memory>

#include "bench/micro_support.hpp"
#include "daemon/commit_scheduler.hpp"
#include "daemon/key_service.hpp"
#include "daemon/keyslot_manager.hpp"
#include "daemon/keyslots/software_keyslot.hpp"

namespace apikeyd {
namespace {

// As the bus layer sees a caller: its executable and unit go into every
// usage event.
const Caller kRoot{0, 1, "/usr/local/bin/backend-api", "backend-api.service"};
constexpr size_t kPool = 256;
// The daemon writes pending usage (counters and one event per use) once a
// second; at the rates these paths run, that is about every 10,000 calls.
// Flushing as often here puts the write's share into each call's time.
constexpr size_t kCallsPerUsageFlush = 10'000;

void flush_usage_now_and_then(KeyService& service, size_t call, benchmark::State& state) {
    if (call % kCallsPerUsageFlush == 0 && !service.flush_usage()) {
        state.SkipWithError("usage flush failed");
    }
}

struct ServiceFixture {
    bench::ScratchDir dir;
    std::unique_ptr<Store> store = bench::open_store(dir.path() / "apikeyd.db");
    SystemClock clock;
    KeyslotManager keyslots{*store, dir.path(), clock};
    CommitScheduler commits{*store};
    KeyService service{*store, keyslots, clock, commits};

    ServiceFixture() {
        SoftwareKeyslot software(dir.path());
        if (!keyslots.initialize(software)) {
            throw std::runtime_error("cannot create a software keyslot");
        }
    }

    CreateKeyRequest request() const {
        CreateKeyRequest r;
        r.name = "bench";
        r.description = "load test key";
        r.scopes = {"read", "write"};
        return r;
    }
};

void BM_ServiceVerifyKey(benchmark::State& state) {
    ServiceFixture f;
    std::vector<std::string> keys;
    for (size_t i = 0; i < kPool; ++i) {
        keys.emplace_back(f.service.create_key(kRoot, f.request())->key_text.view());
    }
    size_t i = 0;
    for (auto _ : state) {
        auto v = f.service.verify_key(kRoot, keys[i++ % keys.size()], "read");
        if (!v || !v->valid) {
            state.SkipWithError("verification failed");
        }
        flush_usage_now_and_then(f.service, i, state);
    }
}
BENCHMARK(BM_ServiceVerifyKey);

void BM_ServiceGetSecret(benchmark::State& state) {
    ServiceFixture f;
    std::vector<std::string> ids;
    for (size_t i = 0; i < kPool; ++i) {
        ImportRequest r;
        r.name = "bench";
        r.secret = SecretBuffer::from_string(std::string(64, 'x'));
        ids.push_back(f.service.import_secret(kRoot, std::move(r))->id);
    }
    size_t i = 0;
    for (auto _ : state) {
        if (!f.service.get_secret(kRoot, ids[i++ % ids.size()])) {
            state.SkipWithError("get failed");
        }
        flush_usage_now_and_then(f.service, i, state);
    }
}
BENCHMARK(BM_ServiceGetSecret);

// GetKey by another user: on an id of root's keys, and on ids that do not
// exist. Both answer NotFound; they must cost the same, or the time tells
// another user's ids from free ones (PERFORMANCE.md sets one against the
// other).
void get_key_of_nobody(benchmark::State& state, bool existing) {
    ServiceFixture f;
    const Caller someone{1000, 2};
    std::vector<std::string> ids;
    for (size_t i = 0; i < kPool; ++i) {
        std::string id = f.service.create_key(kRoot, f.request())->id;
        if (!existing) {
            // Same length and alphabet, one character off: no such key.
            id.back() = id.back() == 'a' ? 'b' : 'a';
        }
        ids.push_back(std::move(id));
    }
    size_t i = 0;
    for (auto _ : state) {
        if (f.service.get_key(someone, ids[i++ % ids.size()])) {
            state.SkipWithError("another user's key was found");
        }
    }
}
void BM_ServiceGetKeyNotYours(benchmark::State& state) {
    get_key_of_nobody(state, true);
}
void BM_ServiceGetKeyNoSuchId(benchmark::State& state) {
    get_key_of_nobody(state, false);
}
BENCHMARK(BM_ServiceGetKeyNotYours);
BENCHMARK(BM_ServiceGetKeyNoSuchId);

// Durable: each key is committed (and synced) on its own, as a CreateKey
// over D-Bus is when no other change shares its batch.
void BM_ServiceCreateKey(benchmark::State& state) {
    ServiceFixture f;
    const auto request = f.request();
    for (auto _ : state) {
        if (!f.service.create_key(kRoot, request)) {
            state.SkipWithError("create failed");
        }
    }
}
BENCHMARK(BM_ServiceCreateKey)->UseRealTime();

// A user's create, 100 per transaction so the sync does not hide the rest,
// with the given number of keys already owned: the per-user quota check must
// not cost more as they add up.
void BM_ServiceCreateKeyAsOwnerOf(benchmark::State& state) {
    constexpr size_t kPerTransaction = 100;
    const Caller user{1000, 2};
    ServiceFixture f;
    const auto request = f.request();
    auto create_many = [&](size_t count) {
        return f.store->transaction([&]() -> Result<void> {
            for (size_t i = 0; i < count; ++i) {
                if (auto created = f.service.create_key(user, request); !created) {
                    return created.error();
                }
            }
            return {};
        });
    };
    for (size_t made = 0; made < static_cast<size_t>(state.range(0)); made += 10'000) {
        (void)create_many(10'000);
    }
    for (auto _ : state) {
        if (!create_many(kPerTransaction)) {
            state.SkipWithError("create failed");
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kPerTransaction));
}
BENCHMARK(BM_ServiceCreateKeyAsOwnerOf)->Arg(0)->Arg(20'000)->UseRealTime();

}  // namespace
}  // namespace apikeyd
