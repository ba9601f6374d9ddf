// The SQLite store, in process, on the disk that holds /tmp: inserting a key
// alone (a durable commit each, as CreateKey does) or many per transaction,
// and finding one by HMAC lookup value (VerifyKey) or by id (GetSecret,
// GetKey) among many.

#include <benchmark/benchmark.h>

#include <map>
#include <memory>

#include "bench/micro_support.hpp"
#include "daemon/crypto.hpp"
#include "daemon/ids.hpp"
#include "daemon/store.hpp"

namespace apikeyd {
namespace {

KeyRecord random_record() {
    KeyRecord r;
    r.id = *new_key_id();
    r.name = "bench";
    r.description = "load test key";
    r.scopes = {"read", "write"};
    r.created_usec = 1'800'000'000'000'000;
    r.lookup.resize(crypto::kMacSize);
    r.mac.resize(crypto::kMacSize);
    (void)crypto::random_bytes(r.lookup);
    (void)crypto::random_bytes(r.mac);
    return r;
}

struct StoreFixture {
    bench::ScratchDir dir;
    std::unique_ptr<Store> store = bench::open_store(dir.path() / "apikeyd.db");
    std::vector<KeyRecord> records;

    void fill(size_t rows) {
        constexpr size_t kBatch = 10'000;
        while (records.size() < rows) {
            (void)store->transaction([&]() -> Result<void> {
                for (size_t i = 0; i < kBatch && records.size() < rows; ++i) {
                    records.push_back(random_record());
                    if (auto ok = store->insert_key(records.back()); !ok) {
                        return ok;
                    }
                }
                return {};
            });
        }
    }
};

// One filled store per size, shared by every run of the benchmarks that ask
// for it: filling 100,000 rows takes seconds.
StoreFixture& filled_store(size_t rows) {
    static std::map<size_t, std::unique_ptr<StoreFixture>> stores;
    auto& slot = stores[rows];
    if (!slot) {
        slot = std::make_unique<StoreFixture>();
        slot->fill(rows);
    }
    return *slot;
}

void BM_StoreInsertDurable(benchmark::State& state) {
    StoreFixture fixture;
    for (auto _ : state) {
        state.PauseTiming();
        KeyRecord record = random_record();
        state.ResumeTiming();
        if (!fixture.store->insert_key(record)) {
            state.SkipWithError("insert failed");
        }
    }
}
BENCHMARK(BM_StoreInsertDurable)->UseRealTime();

void BM_StoreInsertBatched(benchmark::State& state) {
    StoreFixture fixture;
    const auto batch = static_cast<size_t>(state.range(0));
    std::vector<KeyRecord> records(batch);
    for (auto _ : state) {
        state.PauseTiming();
        for (auto& r : records) {
            r = random_record();
        }
        state.ResumeTiming();
        auto ok = fixture.store->transaction([&]() -> Result<void> {
            for (const auto& r : records) {
                if (auto inserted = fixture.store->insert_key(r); !inserted) {
                    return inserted;
                }
            }
            return {};
        });
        if (!ok) {
            state.SkipWithError("insert failed");
        }
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_StoreInsertBatched)->Arg(16)->Arg(1000)->UseRealTime();

void BM_StoreFindByLookup(benchmark::State& state) {
    auto& fixture = filled_store(static_cast<size_t>(state.range(0)));
    size_t i = 0;
    for (auto _ : state) {
        const auto& record = fixture.records[(i += 7919) % fixture.records.size()];
        auto found = fixture.store->find_key_by_lookup(record.lookup);
        if (!found || !*found) {
            state.SkipWithError("lookup failed");
        }
    }
}
BENCHMARK(BM_StoreFindByLookup)->Arg(1000)->Arg(100'000);

void BM_StoreFindById(benchmark::State& state) {
    auto& fixture = filled_store(static_cast<size_t>(state.range(0)));
    size_t i = 0;
    for (auto _ : state) {
        const auto& record = fixture.records[(i += 7919) % fixture.records.size()];
        auto found = fixture.store->find_key(record.id);
        if (!found || !*found) {
            state.SkipWithError("lookup failed");
        }
    }
}
BENCHMARK(BM_StoreFindById)->Arg(1000)->Arg(100'000);

}  // namespace
}  // namespace apikeyd
