#include "bench/load_client.hpp"

#include <cstring>
#include <stdexcept>

#include "common/bus_names.hpp"

namespace apikeyd::bench {
namespace {

using bus_names::kBusName;
using bus_names::kInterface;
using bus_names::kObjectPath;
constexpr const char* kPeer = "org.freedesktop.DBus.Peer";

void check(int r, const char* what) {
    if (r < 0) {
        throw std::runtime_error(std::string(what) + ": " + std::strerror(-r));
    }
}

}  // namespace

LoadClient::LoadClient(const std::string& address) {
    sd_bus* raw = nullptr;
    check(sd_bus_new(&raw), "sd_bus_new");
    bus_.reset(raw);
    check(sd_bus_set_address(bus_.get(), address.c_str()), "sd_bus_set_address");
    check(sd_bus_set_bus_client(bus_.get(), 1), "sd_bus_set_bus_client");
    check(sd_bus_start(bus_.get()), "connect to the bus");
}

sdbus::MessagePtr LoadClient::new_call(const char* interface, const char* member, bool sensitive) {
    sd_bus_message* raw = nullptr;
    check(
        sd_bus_message_new_method_call(bus_.get(), &raw, kBusName, kObjectPath, interface, member),
        member);
    sdbus::MessagePtr m(raw);
    if (sensitive) {
        check(sd_bus_message_sensitive(m.get()), member);
    }
    return m;
}

sdbus::MessagePtr LoadClient::call(sdbus::MessagePtr request) {
    sdbus::Error error;
    sd_bus_message* reply = nullptr;
    const int r = sd_bus_call(bus_.get(), request.get(), 0, error.get(), &reply);
    if (r < 0) {
        throw std::runtime_error(std::string(sd_bus_message_get_member(request.get())) + ": " +
                                 (error.is_set() ? error.message() : std::strerror(-r)));
    }
    return sdbus::MessagePtr(reply);
}

void LoadClient::ping() {
    call(new_call(kPeer, "Ping", false));
}

void LoadClient::verify_key(const std::string& key, const char* scope) {
    auto m = new_call(kInterface, "VerifyKey", true);
    check(sd_bus_message_append(m.get(), "ss", key.c_str(), scope), "VerifyKey");
    auto reply = call(std::move(m));
    int valid = 0;
    check(sd_bus_message_read(reply.get(), "b", &valid), "VerifyKey reply");
    if (!valid) {
        throw std::runtime_error("VerifyKey: the key was answered invalid");
    }
}

void LoadClient::get_secret(const std::string& id) {
    auto m = new_call(kInterface, "GetSecret", false);
    check(sd_bus_message_append(m.get(), "s", id.c_str()), "GetSecret");
    call(std::move(m));
}

IssuedKey LoadClient::create_key(const char* name) {
    auto m = new_call(kInterface, "CreateKey", false);
    check(sd_bus_message_append(m.get(), "ssasa{sv}", name, "load test key", 2, "read", "write", 0),
          "CreateKey");
    auto reply = call(std::move(m));
    const char* id = nullptr;
    const char* key = nullptr;
    check(sd_bus_message_read(reply.get(), "ss", &id, &key), "CreateKey reply");
    return IssuedKey{id, key};
}

std::string LoadClient::import_secret(const char* name, std::span<const uint8_t> secret) {
    auto m = new_call(kInterface, "ImportSecret", true);
    check(sd_bus_message_append(m.get(), "ss", name, "load test secret"), "ImportSecret");
    check(sd_bus_message_append_array(m.get(), 'y', secret.data(), secret.size()), "ImportSecret");
    check(sd_bus_message_append(m.get(), "a{sv}", 0), "ImportSecret");
    auto reply = call(std::move(m));
    const char* id = nullptr;
    check(sd_bus_message_read(reply.get(), "s", &id), "ImportSecret reply");
    return id;
}

}  // namespace apikeyd::bench
