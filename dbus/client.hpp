#pragma once
// The client side of the org.apikeyd1.Manager contract: a thin proxy over
// sd-bus used by apikeyctl and by the integration tests. It marshals and
// unmarshals; it decides nothing. A D-Bus error from the daemon (or from the
// bus) is thrown as BusError carrying the error name and message.
//
// Messages that carry a secret (the key in VerifyKey and IdentifyKey, the
// secret in ImportSecret, the data of Sign, the replies of CreateKey,
// RotateKey and GetSecret, both directions of AddKeyslot and the credentials
// of Unlock) are marked sensitive so sd-bus wipes them when they are freed.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace apikeyd::client {

class BusError : public std::runtime_error {
  public:
    BusError(std::string name, const std::string& message)
        : std::runtime_error(message), name_(std::move(name)) {}
    // e.g. "org.apikeyd1.Error.NotFound" or "org.freedesktop.DBus.Error.ServiceUnknown"
    const std::string& name() const { return name_; }

  private:
    std::string name_;
};

// The bus itself could not be reached, or the connection broke during a call:
// nothing was answered by the daemon.
class ConnectError : public BusError {
  public:
    using BusError::BusError;
};

// One value of an a{sv} dictionary, as far as the contract uses them
// (aa{sv} nests dictionaries, e.g. the keyslots in GetStatus).
struct Value;
using Dict = std::map<std::string, Value>;
struct Value
    : std::variant<bool, uint32_t, uint64_t, int64_t, std::string, std::vector<std::string>,
                   std::vector<uint8_t>, std::vector<uint32_t>, std::vector<Dict>> {
    using variant::variant;
};

// The D-Bus signature of the alternative `value` holds: "b", "u", "t", "x",
// "s", "as", "ay", "au" or "aa{sv}".
const char* signature_of(const Value& value);

struct CreatedKey {
    std::string id;
    std::string key;  // wiped by the caller once shown
};

struct AddedKeyslot {
    std::string id;
    std::string recovery_key;  // "" unless the type is recovery; wiped by the caller once shown
};

struct Verification {
    bool valid = false;
    std::string id;
    Dict info;  // includes "reason" when !valid
};

struct Identification {
    bool known = false;
    std::string id;  // "" unless known
    Dict info;       // the key's info with "text"; only "reason" when !known
};

// One of the signals of org.apikeyd1.Manager.
struct Signal {
    std::string member;  // "KeyCreated", "KeyChanged" or "KeyRevoked"
    std::string id;
};

class Client {
  public:
    // Connects to the system bus, or to $DBUS_SYSTEM_BUS_ADDRESS when set.
    static Client connect_system();
    // Connects to an explicit bus address (tests).
    static Client connect_address(const std::string& address);

    ~Client();
    Client(Client&&) noexcept;
    Client& operator=(Client&&) noexcept;

    CreatedKey create_key(const std::string& name, const std::string& description,
                          const std::vector<std::string>& scopes, const Dict& options);
    std::string import_secret(const std::string& name, const std::string& description,
                              const std::vector<uint8_t>& secret, const Dict& options);
    std::vector<Dict> list_keys(const Dict& filter);
    Dict get_key(const std::string& id);
    void revoke_key(const std::string& id, const std::string& reason);
    Verification verify_key(const std::string& key, const std::string& scope);
    std::vector<uint8_t> get_secret(const std::string& id);
    // `changes` as UpdateKey takes them (name, scopes, expires_in_sec, ...).
    void update_key(const std::string& id, const Dict& changes);
    // The new key text, shown once; wiped by the caller.
    std::string rotate_key(const std::string& id, uint64_t grace_sec);
    std::vector<uint8_t> sign(const std::string& id, const std::string& algorithm,
                              const std::vector<uint8_t>& data);
    std::vector<Dict> get_usage(const std::string& id, const Dict& options);
    std::vector<Dict> get_usage_by_day(const std::string& id, const Dict& options);
    Identification identify_key(const std::string& key);
    Dict get_status();
    // `options` may hold a PIN ("pin" s); the caller wipes its copy.
    AddedKeyslot add_keyslot(const std::string& type, const Dict& options);
    void remove_keyslot(const std::string& id);
    // `credentials` holds "pin" s or "recovery_key" s; the caller wipes its copy.
    void unlock(const std::string& type, const Dict& credentials);

    // The daemon's introspection XML (org.freedesktop.DBus.Introspectable).
    std::string introspect();

    // Subscribes to the signals of org.apikeyd1.Manager sent by the owner of
    // org.apikeyd1 (the bus drops look-alikes that another peer sends), with
    // a match rule and the daemon's Subscribe, which sends this connection
    // the signals of the keys its user may see (root: all). Calls
    // `on_subscribed` once both hold, so that a change made after it is not
    // missed, then `on_signal` for each signal until it returns false.
    // Throws BusError with LimitExceeded when the user has too many
    // subscribed connections, ConnectError when the connection to the bus
    // is lost.
    void watch(const std::function<void()>& on_subscribed,
               const std::function<bool(const Signal&)>& on_signal);

  private:
    struct Impl;
    explicit Client(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace apikeyd::client
