// apikeyd_seed: fills a state directory with issued keys through the
// daemon's own KeyService (same ids, HMAC lookups and record MACs) in large
// batches (the daemon's group commit, one COMMIT per batch), while no
// daemon runs: the million-key cell gets its store in minutes without
// waiting on the bus. Writes every --sample-every'th key text to --keys-out
// for the load tool to verify. An empty state directory gets a software
// keyslot, as `apikeyd --insecure-software-keyslot` would make.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "daemon/commit_scheduler.hpp"
#include "daemon/key_service.hpp"
#include "daemon/keyslot_manager.hpp"
#include "daemon/keyslots/software_keyslot.hpp"

namespace apikeyd {
namespace {

struct Flags {
    std::string state_directory;
    size_t count = 0;
    std::string keys_out;
    size_t sample_every = 1000;
    size_t batch = 10'000;
    uint32_t owner = 0;
};

Result<void> prepare(KeyslotManager& keyslots, const std::filesystem::path& dir) {
    auto initialized = keyslots.initialized();
    if (!initialized) {
        return initialized.error();
    }
    if (!*initialized) {
        SoftwareKeyslot software(dir);
        return keyslots.initialize(software);
    }
    keyslots.unlock();
    if (keyslots.locked()) {
        return make_error(ErrorCode::Locked, keyslots.lock_reason());
    }
    return {};
}

int seed(const Flags& flags) {
    const std::filesystem::path dir = flags.state_directory;
    auto store = Store::open(dir / Store::kFileName);
    if (!store) {
        std::cerr << "apikeyd_seed: " << store.error().message << '\n';
        return EXIT_FAILURE;
    }
    SystemClock clock;
    KeyslotManager keyslots(**store, dir, clock);
    if (auto ok = prepare(keyslots, dir); !ok) {
        std::cerr << "apikeyd_seed: " << ok.error().message << '\n';
        return EXIT_FAILURE;
    }
    CommitScheduler commits(**store);
    KeyService service(**store, keyslots, clock, commits);
    std::ofstream keys_out(flags.keys_out, std::ios::trunc);
    const Caller owner{flags.owner, static_cast<uint32_t>(getpid())};
    CreateKeyRequest request;
    request.name = "seeded";
    request.description = "load test key";
    request.scopes = {"read", "write"};

    const auto start = std::chrono::steady_clock::now();
    size_t made = 0;
    while (made < flags.count) {
        const size_t batch_end = std::min(flags.count, made + flags.batch);
        if (auto ok = commits.open(); !ok) {
            std::cerr << "apikeyd_seed: " << ok.error().message << '\n';
            return EXIT_FAILURE;
        }
        for (; made < batch_end; ++made) {
            auto created = service.create_key(owner, request);
            if (!created) {
                std::cerr << "apikeyd_seed: " << created.error().message << '\n';
                return EXIT_FAILURE;
            }
            if (made % flags.sample_every == 0) {
                keys_out << created->key_text.view() << '\n';
            }
        }
        if (auto ok = commits.commit_now(); !ok) {
            std::cerr << "apikeyd_seed: " << ok.error().message << '\n';
            return EXIT_FAILURE;
        }
    }
    keys_out.close();
    if (!keys_out) {
        std::cerr << "apikeyd_seed: cannot write " << flags.keys_out << '\n';
        return EXIT_FAILURE;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << nlohmann::json{{"seeded", made}, {"seconds", seconds}}.dump() << std::endl;
    return EXIT_SUCCESS;
}

}  // namespace
}  // namespace apikeyd

int main(int argc, char** argv) {
    apikeyd::Flags flags;
    CLI::App app{"Fill an apikeyd state directory with keys, in process"};
    app.add_option("--state-directory", flags.state_directory)->required();
    app.add_option("--count", flags.count, "Keys to add")->required();
    app.add_option("--keys-out", flags.keys_out, "Sampled key texts, one per line")->required();
    app.add_option("--sample-every", flags.sample_every)->check(CLI::PositiveNumber);
    app.add_option("--batch", flags.batch, "Keys per batch (one COMMIT each)")
        ->check(CLI::PositiveNumber);
    app.add_option("--owner", flags.owner, "The keys' owner, a UID (default 0, root)");
    CLI11_PARSE(app, argc, argv);
    return apikeyd::seed(flags);
}
