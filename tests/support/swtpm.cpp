#include "tests/support/swtpm.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <random>
#include <span>
#include <stdexcept>
#include <system_error>

#include "tests/support/timing.hpp"

namespace apikeyd::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// swtpm has no resource manager and few object slots; a test that needs more
// than a handful of tries to find ports has a host problem worth seeing.
constexpr int kStartAttempts = 5;
constexpr uint16_t kLowestPort = 20000;
constexpr uint16_t kHighestPort = 32000;  // the ephemeral range starts at 32768

// TPM2_Shutdown(TPM2_SU_CLEAR): tag ST_NO_SESSIONS, size 12, CC 0x145, type 0.
constexpr std::array<uint8_t, 12> kTpm2ShutdownClear = {0x80, 0x01, 0, 0,    0, 12,
                                                        0,    0,    1, 0x45, 0, 0};
// swtpm control channel CMD_SHUTDOWN (big-endian 3): swtpm saves state and exits.
constexpr std::array<uint8_t, 4> kCtrlShutdown = {0, 0, 0, 3};

sockaddr_in loopback(uint16_t port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

bool port_is_free(uint16_t port) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return false;
    }
    // As swtpm binds its own: a connection in TIME_WAIT does not block it.
    const int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in address = loopback(port);
    return bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
}

// A blocking loopback connection whose reads and writes give up after
// `timeout`, so a wedged swtpm fails the test instead of hanging it.
UniqueFd connect_loopback(uint16_t port, milliseconds timeout) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return fd;
    }
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const sockaddr_in address = loopback(port);
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        return UniqueFd();
    }
    return fd;
}

// Sends `request` and reads at least `min_reply` bytes; false on any failure.
bool exchange(uint16_t port, std::span<const uint8_t> request, size_t min_reply) {
    UniqueFd fd = connect_loopback(port, scaled(seconds(5)));
    if (!fd) {
        return false;
    }
    size_t sent = 0;
    while (sent < request.size()) {
        const ssize_t n =
            send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        sent += static_cast<size_t>(n);
    }
    std::array<uint8_t, 64> reply{};
    size_t received = 0;
    while (received < min_reply) {
        const ssize_t n = recv(fd.get(), reply.data() + received, reply.size() - received, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        received += static_cast<size_t>(n);
    }
    return true;
}

}  // namespace

uint16_t find_free_port_pair() {
    static std::mt19937 random{std::random_device{}()};
    std::uniform_int_distribution<int> pick(kLowestPort / 2, kHighestPort / 2 - 1);
    for (int i = 0; i < 1000; ++i) {
        const auto port = static_cast<uint16_t>(pick(random) * 2);
        if (port_is_free(port) && port_is_free(static_cast<uint16_t>(port + 1))) {
            return port;
        }
    }
    throw std::runtime_error("no free even port pair between 20000 and 32000 on 127.0.0.1");
}

Swtpm::Swtpm() : state_dir_(dir_ / "state"), log_path_(dir_ / "swtpm.log") {
    std::filesystem::create_directory(state_dir_);
    for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
        // Another test may bind the port between our check and swtpm's bind.
        port_ = find_free_port_pair();
        if (launch()) {
            return;
        }
    }
    throw std::runtime_error("swtpm did not start after " + std::to_string(kStartAttempts) +
                             " tries:\n" + log());
}

Swtpm::~Swtpm() {
    try {
        if (process_.running()) {
            stop();
        }
    } catch (...) {
        // ChildProcess's own destructor still kills and reaps it.
    }
}

std::string Swtpm::tcti() const {
    return "swtpm:host=127.0.0.1,port=" + std::to_string(port_);
}

bool Swtpm::launch() {
    const std::string port = std::to_string(port_);
    const std::string ctrl_port = std::to_string(port_ + 1);
    const std::vector<std::string> argv = {
        "swtpm",
        "socket",
        "--tpm2",
        "--server",
        "type=tcp,port=" + port + ",bindaddr=127.0.0.1",
        "--ctrl",
        "type=tcp,port=" + ctrl_port + ",bindaddr=127.0.0.1",
        // Ready without a TPM2_Startup from us, as firmware would leave it.
        "--flags",
        "not-need-init,startup-clear",
        "--tpmstate",
        "dir=" + state_dir_.string(),
    };
    UniqueFd log_fd(open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!log_fd) {
        throw std::runtime_error("cannot open " + log_path_.string());
    }
    process_ =
        ChildProcess(spawn(SpawnOptions{argv, base_environment(), -1, log_fd.get(), log_fd.get()}));

    bool exited = false;
    const bool ready = eventually(
        [&] {
            if (process_.poll()) {
                exited = true;
                return true;
            }
            return static_cast<bool>(connect_loopback(port_, milliseconds(500))) &&
                   static_cast<bool>(
                       connect_loopback(static_cast<uint16_t>(port_ + 1), milliseconds(500)));
        },
        scaled(seconds(10)), milliseconds(5));
    if (exited) {
        return false;
    }
    if (!ready) {
        process_.stop(SIGKILL, seconds(5));
        throw std::runtime_error("swtpm did not accept connections on port " + port +
                                 " in time:\n" + log());
    }
    return true;
}

void Swtpm::start() {
    if (process_.running()) {
        throw std::logic_error("Swtpm::start while it runs");
    }
    if (!launch()) {
        throw std::runtime_error("swtpm did not restart on port " + std::to_string(port_) + ":\n" +
                                 log());
    }
}

void Swtpm::stop() {
    if (!process_.running()) {
        return;
    }
    // Best effort: a TPM that refuses (already shut down) still gets stopped.
    exchange(port_, kTpm2ShutdownClear, 10);
    if (exchange(static_cast<uint16_t>(port_ + 1), kCtrlShutdown, 4) &&
        process_.wait(scaled(seconds(5)))) {
        return;
    }
    process_.stop(SIGTERM, scaled(seconds(5)));
}

void Swtpm::kill9() {
    if (process_.running()) {
        process_.stop(SIGKILL, seconds(5));
    }
}

void Swtpm::wipe_state() {
    stop();
    for (const auto& entry : std::filesystem::directory_iterator(state_dir_)) {
        std::filesystem::remove_all(entry.path());
    }
    start();
}

std::string Swtpm::log() const {
    std::error_code ignored;
    if (!std::filesystem::exists(log_path_, ignored)) {
        return {};
    }
    return read_file(log_path_);
}

}  // namespace apikeyd::test
