#include "tests/support/bus_connection.hpp"

#include <systemd/sd-bus.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "common/bus_names.hpp"
#include "dbus/sdbus.hpp"

namespace apikeyd::test {
namespace {

constexpr const char* kDriver = "org.freedesktop.DBus";
constexpr const char* kDriverPath = "/org/freedesktop/DBus";

using sdbus::MessagePtr;

// An sd_bus_error that frees itself.
struct Error {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    ~Error() { sd_bus_error_free(&error); }
    std::string name() const { return error.name != nullptr ? error.name : ""; }
    std::string describe(int r) const {
        if (error.name != nullptr) {
            return std::string(error.name) + ": " + (error.message ? error.message : "");
        }
        return std::strerror(-r);
    }
};

}  // namespace

struct BusConnection::Impl {
    sdbus::BusPtr bus;
    sd_bus_slot* match_slot = nullptr;
    std::vector<ReceivedSignal> signals;

    ~Impl() { sd_bus_slot_unref(match_slot); }

    static int on_signal(sd_bus_message* m, void* userdata, sd_bus_error*) {
        auto* self = static_cast<Impl*>(userdata);
        ReceivedSignal signal;
        signal.member = sd_bus_message_get_member(m) ? sd_bus_message_get_member(m) : "";
        const char* arg = nullptr;
        if (sd_bus_message_read_basic(m, 's', &arg) > 0 && arg != nullptr) {
            signal.first_arg = arg;
        }
        self->signals.push_back(std::move(signal));
        return 0;
    }
};

BusConnection::BusConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BusConnection::~BusConnection() = default;
BusConnection::BusConnection(BusConnection&&) noexcept = default;
BusConnection& BusConnection::operator=(BusConnection&&) noexcept = default;

BusConnection BusConnection::connect(const std::string& address) {
    sd_bus* raw = nullptr;
    int r = sd_bus_new(&raw);
    if (r < 0) {
        throw std::runtime_error(std::string("sd_bus_new: ") + std::strerror(-r));
    }
    auto impl = std::make_unique<Impl>();
    impl->bus.reset(raw);
    if ((r = sd_bus_set_address(raw, address.c_str())) < 0 ||
        (r = sd_bus_set_bus_client(raw, 1)) < 0 || (r = sd_bus_start(raw)) < 0) {
        throw std::runtime_error("cannot connect to " + address + ": " + std::strerror(-r));
    }
    return BusConnection(std::move(impl));
}

bool BusConnection::name_has_owner(const std::string& name) {
    Error error;
    sd_bus_message* reply = nullptr;
    const int r = sd_bus_call_method(impl_->bus.get(), kDriver, kDriverPath, kDriver,
                                     "NameHasOwner", &error.error, &reply, "s", name.c_str());
    MessagePtr owned(reply);
    if (r < 0) {
        throw std::runtime_error("NameHasOwner(" + name + "): " + error.describe(r));
    }
    int has = 0;
    if (sd_bus_message_read(reply, "b", &has) < 0) {
        throw std::runtime_error("NameHasOwner: unexpected reply");
    }
    return has != 0;
}

std::optional<pid_t> BusConnection::name_owner_pid(const std::string& name) {
    Error error;
    sd_bus_message* reply = nullptr;
    const int r =
        sd_bus_call_method(impl_->bus.get(), kDriver, kDriverPath, kDriver,
                           "GetConnectionUnixProcessID", &error.error, &reply, "s", name.c_str());
    MessagePtr owned(reply);
    if (r < 0) {
        if (error.name() == "org.freedesktop.DBus.Error.NameHasNoOwner") {
            return std::nullopt;
        }
        throw std::runtime_error("GetConnectionUnixProcessID(" + name + "): " + error.describe(r));
    }
    uint32_t pid = 0;
    if (sd_bus_message_read(reply, "u", &pid) < 0) {
        throw std::runtime_error("GetConnectionUnixProcessID: unexpected reply");
    }
    return static_cast<pid_t>(pid);
}

std::string BusConnection::request_name(const std::string& name) {
    Error error;
    sd_bus_message* reply = nullptr;
    const uint32_t do_not_queue = 4;  // DBUS_NAME_FLAG_DO_NOT_QUEUE
    const int r = sd_bus_call_method(impl_->bus.get(), kDriver, kDriverPath, kDriver, "RequestName",
                                     &error.error, &reply, "su", name.c_str(), do_not_queue);
    MessagePtr owned(reply);
    if (r < 0) {
        return error.name().empty() ? error.describe(r) : error.name();
    }
    uint32_t answer = 0;
    if (sd_bus_message_read(reply, "u", &answer) < 0) {
        throw std::runtime_error("RequestName: unexpected reply");
    }
    return answer == 1 ? "" : "reply " + std::to_string(answer);  // 1: primary owner
}

std::string BusConnection::call_manager(const std::string& member) {
    Error error;
    sd_bus_message* reply = nullptr;
    const int r =
        sd_bus_call_method(impl_->bus.get(), bus_names::kBusName, bus_names::kObjectPath,
                           bus_names::kInterface, member.c_str(), &error.error, &reply, "");
    MessagePtr owned(reply);
    if (r < 0) {
        return error.name().empty() ? error.describe(r) : error.name();
    }
    return "";
}

void BusConnection::watch_signals(const std::string& sender, const std::string& interface) {
    const std::string rule = "type='signal',sender='" + sender + "',interface='" + interface + "'";
    const int r = sd_bus_add_match(impl_->bus.get(), &impl_->match_slot, rule.c_str(),
                                   &Impl::on_signal, impl_.get());
    if (r < 0) {
        throw std::runtime_error("AddMatch " + rule + ": " + std::strerror(-r));
    }
}

bool BusConnection::wait_for_signal(const std::string& member, const std::string& arg,
                                    std::chrono::milliseconds timeout) {
    const auto seen = [&] {
        return std::any_of(impl_->signals.begin(), impl_->signals.end(),
                           [&](const auto& s) { return s.member == member && s.first_arg == arg; });
    };
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!seen()) {
        const int r = sd_bus_process(impl_->bus.get(), nullptr);
        if (r < 0) {
            throw std::runtime_error(std::string("sd_bus_process: ") + std::strerror(-r));
        }
        if (r > 0) {
            continue;
        }
        const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return false;
        }
        sd_bus_wait(impl_->bus.get(), static_cast<uint64_t>(left.count()));
    }
    return true;
}

const std::vector<ReceivedSignal>& BusConnection::signals() const {
    return impl_->signals;
}

}  // namespace apikeyd::test
