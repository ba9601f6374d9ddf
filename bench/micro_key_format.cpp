// Key text: making a new key (CSPRNG + Base62 + checksum) and checking one
// that a client presents (parse + checksum), in process.

#include <benchmark/benchmark.h>

#include "common/key_format.hpp"
#include "daemon/crypto.hpp"

namespace apikeyd {
namespace {

void BM_KeyGeneration(benchmark::State& state) {
    for (auto _ : state) {
        auto random = crypto::random_base62(key_format::kRandomLength);
        SecretBuffer text(key_format::issued_length(key_format::kDefaultPrefix));
        key_format::compose(key_format::kDefaultPrefix, random->view(),
                            reinterpret_cast<char*>(text.data()));
        benchmark::DoNotOptimize(text.data());
    }
}
BENCHMARK(BM_KeyGeneration);

void BM_Checksum(benchmark::State& state) {
    auto random = crypto::random_base62(key_format::kRandomLength);
    for (auto _ : state) {
        benchmark::DoNotOptimize(key_format::checksum(random->view()));
    }
}
BENCHMARK(BM_Checksum);

void BM_ParseKeyText(benchmark::State& state) {
    auto random = crypto::random_base62(key_format::kRandomLength);
    std::string text(key_format::issued_length(key_format::kDefaultPrefix), '\0');
    key_format::compose(key_format::kDefaultPrefix, random->view(), text.data());
    for (auto _ : state) {
        benchmark::DoNotOptimize(key_format::parse(text));
    }
}
BENCHMARK(BM_ParseKeyText);

}  // namespace
}  // namespace apikeyd
