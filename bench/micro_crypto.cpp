// The crypto of the hot paths, in process: the HMAC that turns key text into
// its lookup value, the record MAC every read checks, and AES-256-GCM of an
// imported secret.

#include <benchmark/benchmark.h>

#include "daemon/crypto.hpp"
#include "daemon/record_seal.hpp"

namespace apikeyd {
namespace {

constexpr std::string_view kKeyText = "ak_Ptqw7JNEocWCzvgHf5Ahh9w0JjuBEzuR2ThGDM";

KeyRecord typical_record() {
    KeyRecord r;
    r.id = "k_3mfq7w2xk4ab";
    r.name = "demo-service";
    r.description = "Key for the demo web API";
    r.scopes = {"read", "write"};
    r.created_usec = 1'800'000'000'000'000;
    r.lookup.assign(crypto::kMacSize, 0x5a);
    return r;
}

void BM_HmacLookup(benchmark::State& state) {
    auto pepper = crypto::random_secret(crypto::kKeySize);
    for (auto _ : state) {
        benchmark::DoNotOptimize(crypto::hmac_sha256(pepper->span(), crypto::bytes_of(kKeyText)));
    }
}
BENCHMARK(BM_HmacLookup);

void BM_RecordMacVerify(benchmark::State& state) {
    auto mac_key = crypto::random_secret(crypto::kKeySize);
    KeyRecord record = typical_record();
    (void)record_seal::seal(*mac_key, record);
    for (auto _ : state) {
        benchmark::DoNotOptimize(record_seal::verify(*mac_key, record));
    }
}
BENCHMARK(BM_RecordMacVerify);

void BM_RecordEncrypt(benchmark::State& state) {
    auto key = crypto::random_secret(crypto::kKeySize);
    const std::vector<uint8_t> secret(static_cast<size_t>(state.range(0)), 'x');
    const auto associated = record_seal::secret_associated_data(typical_record());
    for (auto _ : state) {
        benchmark::DoNotOptimize(crypto::aes256gcm_seal(key->span(), secret, associated));
    }
}
BENCHMARK(BM_RecordEncrypt)->Arg(64)->Arg(4096);

void BM_RecordDecrypt(benchmark::State& state) {
    auto key = crypto::random_secret(crypto::kKeySize);
    const std::vector<uint8_t> secret(static_cast<size_t>(state.range(0)), 'x');
    const auto associated = record_seal::secret_associated_data(typical_record());
    auto sealed = crypto::aes256gcm_seal(key->span(), secret, associated);
    for (auto _ : state) {
        benchmark::DoNotOptimize(crypto::aes256gcm_open(key->span(), *sealed, associated));
    }
}
BENCHMARK(BM_RecordDecrypt)->Arg(64)->Arg(4096);

}  // namespace
}  // namespace apikeyd
