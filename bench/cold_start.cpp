// apikeyd_cold_start: starts the daemon again and again on the same state
// directory and times each start from spawn to its READY=1 on a
// NOTIFY_SOCKET this tool owns; prints the median (and spread) as JSON.
//   apikeyd_cold_start --address BUS --runs N -- apikeyd --state-directory=DIR ...

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "bench/spawn.hpp"
#include "bench/stats.hpp"
#include "common/bus_names.hpp"
#include "dbus/sdbus.hpp"

namespace apikeyd::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStartBound = std::chrono::seconds(30);

// A datagram socket bound in a private directory; both go away with it.
class NotifySocket {
  public:
    NotifySocket() {
        char pattern[] = "/tmp/apikeyd-cold-start-XXXXXX";
        if (!mkdtemp(pattern)) {
            throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
        }
        dir_ = pattern;
        path_ = dir_ / "notify";
        fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
        if (fd_ < 0 ||
            bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
            throw std::runtime_error("cannot bind " + path_.string());
        }
    }
    ~NotifySocket() {
        close(fd_);
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    const std::filesystem::path& path() const { return path_; }
    // Waits up to `timeout` for a datagram; "" when none came.
    std::string receive(std::chrono::milliseconds timeout) {
        pollfd pfd{fd_, POLLIN, 0};
        if (poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) {
            return {};
        }
        char buffer[4096];
        const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
        return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
    }
    void drain() {
        while (!receive(std::chrono::milliseconds(0)).empty()) {
        }
    }

  private:
    std::filesystem::path dir_;
    std::filesystem::path path_;
    int fd_ = -1;
};

sdbus::BusPtr connect(const std::string& address) {
    sd_bus* raw = nullptr;
    if (sd_bus_new(&raw) < 0) {
        throw std::runtime_error("sd_bus_new failed");
    }
    sdbus::BusPtr bus(raw);
    if (sd_bus_set_address(bus.get(), address.c_str()) < 0 ||
        sd_bus_set_bus_client(bus.get(), 1) < 0 || sd_bus_start(bus.get()) < 0) {
        throw std::runtime_error("cannot connect to " + address);
    }
    return bus;
}

bool name_has_owner(sd_bus* bus) {
    sdbus::Error error;
    sd_bus_message* raw = nullptr;
    if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "NameHasOwner", error.get(), &raw, "s",
                           bus_names::kBusName) < 0) {
        throw std::runtime_error(std::string("NameHasOwner: ") + error.message());
    }
    sdbus::MessagePtr reply(raw);
    int owned = 0;
    sd_bus_message_read(reply.get(), "b", &owned);
    return owned != 0;
}

// The previous daemon's name must be gone, or the next one cannot own it.
void wait_until_name_free(sd_bus* bus) {
    const auto deadline = Clock::now() + kStartBound;
    while (name_has_owner(bus)) {
        if (Clock::now() > deadline) {
            throw std::runtime_error("org.apikeyd1 is still owned");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

// One start: spawn → READY=1. Stops the daemon afterwards (untimed).
double time_one_start(const std::vector<std::string>& command, const std::string& address,
                      NotifySocket& notify, int log_fd) {
    notify.drain();
    const auto start = Clock::now();
    const pid_t pid = spawn(
        SpawnSpec{command,
                  {"NOTIFY_SOCKET=" + notify.path().string(), "DBUS_SYSTEM_BUS_ADDRESS=" + address},
                  -1,
                  log_fd});
    std::string failure;
    double ms = 0;
    for (;;) {
        const std::string datagram = notify.receive(std::chrono::milliseconds(5));
        if (datagram.find("READY=1") != std::string::npos) {
            ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
            if (datagram.find("Locked") != std::string::npos) {
                failure = "the daemon started locked: " + datagram;
            }
            break;
        }
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            throw std::runtime_error("apikeyd " + describe_wait_status(status) + " before READY=1");
        }
        if (Clock::now() - start > kStartBound) {
            failure = "no READY=1 in time";
            break;
        }
    }
    kill(pid, SIGTERM);
    const int status = wait_for(pid);
    if (failure.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        failure = "apikeyd " + describe_wait_status(status) + " after SIGTERM";
    }
    if (!failure.empty()) {
        throw std::runtime_error(failure);
    }
    return ms;
}

}  // namespace
}  // namespace apikeyd::bench

int main(int argc, char** argv) {
    using namespace apikeyd::bench;
    std::string address;
    size_t runs = 30;
    std::string log_path = "/dev/null";
    std::vector<std::string> command;
    CLI::App app{"Time apikeyd from spawn to READY=1, many times"};
    app.add_option("--address", address, "The bus the daemon serves on")->required();
    app.add_option("--runs", runs, "Timed starts (one untimed start comes first)");
    app.add_option("--log", log_path, "Where the daemon's stderr goes");
    app.add_option("command", command, "apikeyd and its arguments")->required();
    CLI11_PARSE(app, argc, argv);
    try {
        const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0) {
            throw std::runtime_error("cannot open " + log_path);
        }
        NotifySocket notify;
        auto bus = connect(address);
        std::vector<double> ms;
        for (size_t i = 0; i <= runs; ++i) {
            wait_until_name_free(bus.get());
            const double t = time_one_start(command, address, notify, log_fd);
            if (i > 0) {
                ms.push_back(t);
            }
        }
        const nlohmann::json line = {
            {"runs", runs},
            {"median_ms", median(ms)},
            {"p90_ms", percentile(ms, 0.9)},
            {"min_ms", percentile(ms, 0.0)},
            {"max_ms", percentile(ms, 1.0)},
        };
        std::cout << line.dump() << std::endl;
        return EXIT_SUCCESS;
    } catch (const std::exception& e) {
        std::cerr << "apikeyd_cold_start: " << e.what() << '\n';
        return EXIT_FAILURE;
    }
}
