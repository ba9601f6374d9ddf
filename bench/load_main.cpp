// apikeyd_load: drives a running apikeyd over a bus address with 1..N client
// connections and prints one JSON line per (method, clients) cell: ops/s and
// latency percentiles, and beside it the Ping floor measured with the same
// number of clients in the same run, round by round in alternation, so that
// the ratio of the two is not skewed by whatever else the machine does.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/load_cell.hpp"
#include "bench/proc_cpu.hpp"
#include "bench/stats.hpp"

namespace apikeyd::bench {
namespace {

struct Flags {
    std::string address;
    double seconds = 3;
    size_t rounds = 3;
    std::vector<size_t> clients = {1, 4, 16};
    std::vector<std::string> methods = {"verify", "get", "create"};
    std::string keys_file;
    size_t pool = 256;
    // NAME=PID: processes whose CPU time per call is reported (the daemon, dbus-daemon).
    std::vector<std::string> watch;
};

struct Watched {
    std::string name;
    pid_t pid = 0;
};

std::vector<Watched> parse_watch(const std::vector<std::string>& specs) {
    std::vector<Watched> out;
    for (const auto& spec : specs) {
        const auto eq = spec.find('=');
        if (eq == std::string::npos) {
            throw std::runtime_error("--watch takes NAME=PID, not " + spec);
        }
        out.push_back({spec.substr(0, eq), static_cast<pid_t>(std::stol(spec.substr(eq + 1)))});
    }
    return out;
}

// Key texts and secret ids the calls use, made once before the cells run.
struct Pool {
    std::vector<std::string> keys;
    std::vector<std::string> secret_ids;
};

bool wants(const Flags& flags, const std::string& method) {
    return std::find(flags.methods.begin(), flags.methods.end(), method) != flags.methods.end();
}

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot read " + path);
    }
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
            lines.push_back(line);
        }
    }
    return lines;
}

Pool make_pool(const Flags& flags) {
    Pool pool;
    LoadClient setup(flags.address);
    if (wants(flags, "verify")) {
        if (!flags.keys_file.empty()) {
            pool.keys = read_lines(flags.keys_file);
        } else {
            for (size_t i = 0; i < flags.pool; ++i) {
                pool.keys.push_back(setup.create_key("load-verify").key);
            }
        }
        if (pool.keys.empty()) {
            throw std::runtime_error("no keys to verify");
        }
    }
    if (wants(flags, "get")) {
        // The size of a typical cloud API key.
        const std::vector<uint8_t> secret(64, 'x');
        for (size_t i = 0; i < flags.pool; ++i) {
            pool.secret_ids.push_back(setup.import_secret("load-get", secret));
        }
    }
    return pool;
}

// Spreads the clients over the pool so that they do not ask for the same
// record in lockstep.
const std::string& pick(const std::vector<std::string>& items, size_t client, size_t call) {
    return items[(client * 7919 + call) % items.size()];
}

Operation operation_for(const std::string& method, const Pool& pool) {
    if (method == "ping") {
        return [](LoadClient& c, size_t, size_t) { c.ping(); };
    }
    if (method == "verify") {
        return [&pool](LoadClient& c, size_t client, size_t call) {
            c.verify_key(pick(pool.keys, client, call), "read");
        };
    }
    if (method == "get") {
        return [&pool](LoadClient& c, size_t client, size_t call) {
            c.get_secret(pick(pool.secret_ids, client, call));
        };
    }
    if (method == "create") {
        return [](LoadClient& c, size_t, size_t) { c.create_key("load-create"); };
    }
    throw std::runtime_error("unknown method " + method + " (use verify, get, create)");
}

// Rounds of one method at one client count, summed up: the median round's
// throughput and the percentiles of every call of every round.
struct Summary {
    std::vector<double> ops_per_sec;
    // Per watched process: CPU microseconds per successful call, per round.
    std::map<std::string, std::vector<double>> cpu_us_per_call;
    std::vector<uint64_t> latencies_ns;
    uint64_t ops = 0;
    uint64_t errors = 0;
    std::string first_error;

    void add(CellResult&& cell) {
        ops_per_sec.push_back(cell.ops_per_sec());
        ops += cell.ops;
        errors += cell.errors;
        if (first_error.empty()) {
            first_error = std::move(cell.first_error);
        }
        latencies_ns.insert(latencies_ns.end(), cell.latencies_ns.begin(), cell.latencies_ns.end());
    }

    nlohmann::json to_json(const std::string& method, size_t clients, double seconds) const {
        auto us = [&](double q) { return static_cast<double>(percentile(latencies_ns, q)) / 1e3; };
        nlohmann::json line = {
            {"method", method},
            {"clients", clients},
            {"seconds_per_round", seconds},
            {"rounds", ops_per_sec.size()},
            {"ops_per_sec", median(ops_per_sec)},
            {"ops_per_sec_rounds", ops_per_sec},
            {"p50_us", us(0.50)},
            {"p99_us", us(0.99)},
            {"ops", ops},
            {"errors", errors},
        };
        if (!first_error.empty()) {
            line["first_error"] = first_error;
        }
        for (const auto& [name, rounds] : cpu_us_per_call) {
            line["cpu_us_per_call"][name] = median(rounds);
        }
        return line;
    }
};

// One round of a cell, with the CPU time each watched process spent in it.
CellResult measure(const CellSpec& spec, const Operation& operation,
                   const std::vector<Watched>& watched, Summary& summary) {
    std::vector<double> before;
    for (const auto& w : watched) {
        before.push_back(process_cpu_seconds(w.pid));
    }
    CellResult cell = run_cell(spec, operation);
    for (size_t i = 0; i < watched.size(); ++i) {
        const double spent = process_cpu_seconds(watched[i].pid) - before[i];
        summary.cpu_us_per_call[watched[i].name].push_back(
            cell.ops ? spent * 1e6 / static_cast<double>(cell.ops) : 0);
    }
    return cell;
}

int run(const Flags& flags) {
    const auto watched = parse_watch(flags.watch);
    const Pool pool = make_pool(flags);
    const auto duration = std::chrono::milliseconds(static_cast<int64_t>(flags.seconds * 1000));
    uint64_t errors = 0;
    for (const size_t clients : flags.clients) {
        for (const auto& method : flags.methods) {
            const CellSpec spec{flags.address, clients, duration};
            const Operation floor = operation_for("ping", pool);
            const Operation measured = operation_for(method, pool);
            Summary ping_summary;
            Summary method_summary;
            for (size_t round = 0; round < flags.rounds; ++round) {
                ping_summary.add(measure(spec, floor, watched, ping_summary));
                method_summary.add(measure(spec, measured, watched, method_summary));
            }
            auto ping_line = ping_summary.to_json("ping", clients, flags.seconds);
            ping_line["floor_for"] = method;
            std::cout << ping_line.dump() << '\n'
                      << method_summary.to_json(method, clients, flags.seconds).dump() << std::endl;
            errors += ping_summary.errors + method_summary.errors;
        }
    }
    return errors == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

}  // namespace
}  // namespace apikeyd::bench

int main(int argc, char** argv) {
    apikeyd::bench::Flags flags;
    CLI::App app{"Load apikeyd over D-Bus and compare each method with the Ping floor"};
    app.add_option("--address", flags.address, "Bus address, e.g. unix:path=/run/bus_socket")
        ->required();
    app.add_option("--seconds", flags.seconds, "Timed seconds per round of each cell");
    app.add_option("--rounds", flags.rounds, "Rounds per cell, alternating with the Ping floor");
    app.add_option("--clients", flags.clients, "Client connections per cell")->delimiter(',');
    app.add_option("--methods", flags.methods, "verify, get, create")->delimiter(',');
    app.add_option("--keys", flags.keys_file,
                   "Key texts to verify, one per line (default: create --pool keys first)");
    app.add_option("--pool", flags.pool, "Keys and secrets to create for verify and get")
        ->check(CLI::PositiveNumber);
    app.add_option("--watch", flags.watch,
                   "NAME=PID of a process whose CPU time per call to report (repeatable)");
    CLI11_PARSE(app, argc, argv);
    try {
        return apikeyd::bench::run(flags);
    } catch (const std::exception& e) {
        std::cerr << "apikeyd_load: " << e.what() << '\n';
        return EXIT_FAILURE;
    }
}
