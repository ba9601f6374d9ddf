#pragma once
// One cell of the load run: `clients` threads, each with its own connection,
// repeat one operation back to back (closed loop) for a fixed time; every
// call's latency is kept.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/load_client.hpp"

namespace apikeyd::bench {

// The call a client repeats. `client_index` and `call_index` let clients walk
// a pool of keys in different orders.
using Operation = std::function<void(LoadClient&, size_t client_index, size_t call_index)>;

struct CellResult {
    size_t clients = 0;
    double seconds = 0;  // the timed window as it really ran
    uint64_t ops = 0;    // successful calls
    uint64_t errors = 0;
    std::string first_error;
    std::vector<uint64_t> latencies_ns;  // of the successful calls

    double ops_per_sec() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
};

struct CellSpec {
    std::string address;
    size_t clients = 1;
    std::chrono::milliseconds duration{1000};
    // Untimed calls per client first: the daemon learns the new connection's
    // caller and both sides' caches fill.
    size_t warmup_calls = 20;
};

CellResult run_cell(const CellSpec& spec, const Operation& operation);

}  // namespace apikeyd::bench
