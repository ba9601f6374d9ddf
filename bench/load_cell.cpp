#include "bench/load_cell.hpp"

#include <atomic>
#include <exception>
#include <latch>
#include <optional>
#include <thread>

namespace apikeyd::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct ClientOutcome {
    uint64_t errors = 0;
    std::string first_error;
    std::vector<uint64_t> latencies_ns;
    Clock::time_point finished;
};

void note_error(ClientOutcome& out, const std::exception& e) {
    if (out.errors++ == 0) {
        out.first_error = e.what();
    }
}

}  // namespace

CellResult run_cell(const CellSpec& spec, const Operation& operation) {
    std::vector<ClientOutcome> outcomes(spec.clients);
    std::latch ready(static_cast<std::ptrdiff_t>(spec.clients));
    std::atomic<bool> go{false};
    Clock::time_point start;
    Clock::time_point deadline;

    auto client_main = [&](size_t index) {
        ClientOutcome& out = outcomes[index];
        std::optional<LoadClient> client;
        try {
            client.emplace(spec.address);
            for (size_t i = 0; i < spec.warmup_calls; ++i) {
                operation(*client, index, i);
            }
        } catch (const std::exception& e) {
            note_error(out, e);
            client.reset();
        }
        ready.count_down();
        go.wait(false);
        size_t call = spec.warmup_calls;
        while (client) {
            const auto before = Clock::now();
            if (before >= deadline) {
                break;
            }
            try {
                operation(*client, index, call++);
                out.latencies_ns.push_back(static_cast<uint64_t>(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - before)
                        .count()));
            } catch (const std::exception& e) {
                note_error(out, e);
            }
        }
        out.finished = Clock::now();
    };

    std::vector<std::thread> threads;
    threads.reserve(spec.clients);
    for (size_t i = 0; i < spec.clients; ++i) {
        threads.emplace_back(client_main, i);
    }
    ready.wait();
    start = Clock::now();
    deadline = start + spec.duration;
    go.store(true);
    go.notify_all();
    for (auto& t : threads) {
        t.join();
    }

    CellResult result;
    result.clients = spec.clients;
    Clock::time_point last = start;
    for (auto& out : outcomes) {
        last = std::max(last, out.finished);
        result.ops += out.latencies_ns.size();
        result.errors += out.errors;
        if (result.first_error.empty()) {
            result.first_error = out.first_error;
        }
        result.latencies_ns.insert(result.latencies_ns.end(), out.latencies_ns.begin(),
                                   out.latencies_ns.end());
    }
    result.seconds = std::chrono::duration<double>(last - start).count();
    return result;
}

}  // namespace apikeyd::bench
