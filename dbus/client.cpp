#include "dbus/client.hpp"

#include <systemd/sd-bus.h>

#include <cerrno>
#include <cstdint>
#include <exception>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "common/bus_names.hpp"
#include "dbus/sdbus.hpp"

namespace apikeyd::client {
namespace {

using bus_names::kBusName;
using bus_names::kInterface;
using bus_names::kObjectPath;

using sdbus::BusPtr;
using sdbus::MessagePtr;

// Turns a negative errno from a local sd-bus step into a BusError. The
// context names the step, never an argument: arguments may be secrets.
[[noreturn]] void fail(int r, std::string_view context) {
    sdbus::Error error;
    sd_bus_error_set_errno(error.get(), r);
    throw BusError(error.name(), std::string(context) + ": " + error.message());
}

void check(int r, std::string_view context) {
    if (r < 0) {
        fail(r, context);
    }
}

// The D-Bus signature of each alternative of Value, in the variant's order.
template <typename T>
constexpr const char* signature_of() {
    if constexpr (std::is_same_v<T, bool>) {
        return "b";
    } else if constexpr (std::is_same_v<T, uint32_t>) {
        return "u";
    } else if constexpr (std::is_same_v<T, uint64_t>) {
        return "t";
    } else if constexpr (std::is_same_v<T, int64_t>) {
        return "x";
    } else if constexpr (std::is_same_v<T, std::string>) {
        return "s";
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
        return "as";
    } else if constexpr (std::is_same_v<T, std::vector<uint8_t>>) {
        return "ay";
    } else if constexpr (std::is_same_v<T, std::vector<uint32_t>>) {
        return "au";
    } else {
        static_assert(std::is_same_v<T, std::vector<Dict>>);
        return "aa{sv}";
    }
}

void append_dict(sd_bus_message* m, const Dict& dict);

void append_strings(sd_bus_message* m, const std::vector<std::string>& strings) {
    check(sd_bus_message_open_container(m, 'a', "s"), "Cannot build string array");
    for (const auto& s : strings) {
        // sd-bus refuses text that is not UTF-8 here, with EINVAL.
        check(sd_bus_message_append_basic(m, 's', s.c_str()), "Cannot add text (not UTF-8?)");
    }
    check(sd_bus_message_close_container(m), "Cannot build string array");
}

void append_value(sd_bus_message* m, const Value& value) {
    std::visit(
        [m](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            check(sd_bus_message_open_container(m, 'v', signature_of<T>()), "Cannot build variant");
            if constexpr (std::is_same_v<T, bool>) {
                int b = v;
                check(sd_bus_message_append_basic(m, 'b', &b), "Cannot add boolean");
            } else if constexpr (std::is_same_v<T, uint32_t> || std::is_same_v<T, uint64_t> ||
                                 std::is_same_v<T, int64_t>) {
                check(sd_bus_message_append_basic(m, signature_of<T>()[0], &v),
                      "Cannot add number");
            } else if constexpr (std::is_same_v<T, std::string>) {
                check(sd_bus_message_append_basic(m, 's', v.c_str()),
                      "Cannot add text (not UTF-8?)");
            } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
                append_strings(m, v);
            } else if constexpr (std::is_same_v<T, std::vector<uint8_t>> ||
                                 std::is_same_v<T, std::vector<uint32_t>>) {
                check(sd_bus_message_append_array(m, signature_of<T>()[1], v.data(),
                                                  v.size() * sizeof(typename T::value_type)),
                      "Cannot add array");
            } else {
                check(sd_bus_message_open_container(m, 'a', "a{sv}"),
                      "Cannot build dictionary array");
                for (const auto& d : v) {
                    append_dict(m, d);
                }
                check(sd_bus_message_close_container(m), "Cannot build dictionary array");
            }
            check(sd_bus_message_close_container(m), "Cannot build variant");
        },
        static_cast<const Value::variant&>(value));
}

void append_dict(sd_bus_message* m, const Dict& dict) {
    check(sd_bus_message_open_container(m, 'a', "{sv}"), "Cannot build dictionary");
    for (const auto& [key, value] : dict) {
        check(sd_bus_message_open_container(m, 'e', "sv"), "Cannot build dictionary entry");
        check(sd_bus_message_append_basic(m, 's', key.c_str()), "Cannot add dictionary key");
        append_value(m, value);
        check(sd_bus_message_close_container(m), "Cannot build dictionary entry");
    }
    check(sd_bus_message_close_container(m), "Cannot build dictionary");
}

constexpr std::string_view kBadReply = "Unexpected reply from apikeyd";

// Assigns in place so that a secret is copied once, into the caller's string.
void read_string_into(sd_bus_message* m, std::string& out) {
    const char* s = nullptr;
    check(sd_bus_message_read_basic(m, 's', &s), kBadReply);
    out.assign(s);
}

std::string read_string(sd_bus_message* m) {
    std::string s;
    read_string_into(m, s);
    return s;
}

std::vector<std::string> read_strings(sd_bus_message* m) {
    check(sd_bus_message_enter_container(m, 'a', "s"), kBadReply);
    std::vector<std::string> strings;
    const char* s = nullptr;
    int r;
    while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0) {
        strings.emplace_back(s);
    }
    check(r, kBadReply);
    check(sd_bus_message_exit_container(m), kBadReply);
    return strings;
}

template <typename T>
std::vector<T> read_fixed_array(sd_bus_message* m, char type) {
    const void* data = nullptr;
    size_t size = 0;
    check(sd_bus_message_read_array(m, type, &data, &size), kBadReply);
    const auto* first = static_cast<const T*>(data);
    return std::vector<T>(first, first + size / sizeof(T));
}

template <typename T>
T read_number(sd_bus_message* m, char type) {
    T v{};
    check(sd_bus_message_read_basic(m, type, &v), kBadReply);
    return v;
}

// Reads one a{sv}. Returns false (and reads nothing) at the end of an
// enclosing array of dictionaries.
bool read_dict(sd_bus_message* m, Dict& dict);

std::vector<Dict> read_dicts(sd_bus_message* m) {
    check(sd_bus_message_enter_container(m, 'a', "a{sv}"), kBadReply);
    std::vector<Dict> dicts;
    Dict d;
    while (read_dict(m, d)) {
        dicts.push_back(std::move(d));
        d.clear();
    }
    check(sd_bus_message_exit_container(m), kBadReply);
    return dicts;
}

using VariantReader = Value (*)(sd_bus_message*);

VariantReader reader_for(std::string_view signature) {
    static constexpr std::pair<std::string_view, VariantReader> kReaders[] = {
        {"b", [](sd_bus_message* m) { return Value(read_number<int>(m, 'b') != 0); }},
        {"u", [](sd_bus_message* m) { return Value(read_number<uint32_t>(m, 'u')); }},
        {"t", [](sd_bus_message* m) { return Value(read_number<uint64_t>(m, 't')); }},
        {"x", [](sd_bus_message* m) { return Value(read_number<int64_t>(m, 'x')); }},
        {"s", [](sd_bus_message* m) { return Value(read_string(m)); }},
        {"as", [](sd_bus_message* m) { return Value(read_strings(m)); }},
        {"ay", [](sd_bus_message* m) { return Value(read_fixed_array<uint8_t>(m, 'y')); }},
        {"au", [](sd_bus_message* m) { return Value(read_fixed_array<uint32_t>(m, 'u')); }},
        {"aa{sv}", [](sd_bus_message* m) { return Value(read_dicts(m)); }},
    };
    for (const auto& [sig, reader] : kReaders) {
        if (sig == signature) {
            return reader;
        }
    }
    return nullptr;
}

// Reads the variant at the cursor. A type the contract does not use (a
// daemon newer than this client) is skipped, not an error.
std::optional<Value> read_variant(sd_bus_message* m) {
    char type = 0;
    const char* contents = nullptr;
    check(sd_bus_message_peek_type(m, &type, &contents), kBadReply);
    if (type != SD_BUS_TYPE_VARIANT || contents == nullptr) {
        fail(-EBADMSG, kBadReply);
    }
    const VariantReader reader = reader_for(contents);
    if (reader == nullptr) {
        check(sd_bus_message_skip(m, "v"), kBadReply);
        return std::nullopt;
    }
    check(sd_bus_message_enter_container(m, 'v', contents), kBadReply);
    Value value = reader(m);
    check(sd_bus_message_exit_container(m), kBadReply);
    return value;
}

bool read_dict(sd_bus_message* m, Dict& dict) {
    int r = sd_bus_message_enter_container(m, 'a', "{sv}");
    check(r, kBadReply);
    if (r == 0) {
        return false;
    }
    while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
        std::string key = read_string(m);
        if (auto value = read_variant(m)) {
            dict.insert_or_assign(std::move(key), std::move(*value));
        }
        check(sd_bus_message_exit_container(m), kBadReply);
    }
    check(r, kBadReply);
    check(sd_bus_message_exit_container(m), kBadReply);
    return true;
}

Dict read_top_dict(sd_bus_message* m) {
    Dict dict;
    if (!read_dict(m, dict)) {
        fail(-EBADMSG, kBadReply);
    }
    return dict;
}

// What the signal callback leaves for watch(). The callback only records: no
// exception may cross sd-bus's C code, and the caller's function may throw.
struct WatchState {
    std::vector<Signal> pending;
    std::exception_ptr error;
};

int queue_signal(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
    auto* state = static_cast<WatchState*>(userdata);
    const char* id = nullptr;
    // A signal of another shape (a newer daemon's) is not ours to interpret.
    if (sd_bus_message_has_signature(m, "s") <= 0 || sd_bus_message_read_basic(m, 's', &id) < 0) {
        return 0;
    }
    const char* member = sd_bus_message_get_member(m);
    try {
        state->pending.push_back(Signal{member != nullptr ? member : "", id});
    } catch (...) {
        state->error = std::current_exception();
    }
    return 0;
}

// Which messages of a call carry a secret, so that sd-bus wipes them.
enum Sensitivity : unsigned { kPlain = 0, kSecretCall = 1, kSecretReply = 2 };

// One argument of a call, by its type: s, t, ay, as or a{sv}.
void append_argument(sd_bus_message* m, const std::string& text) {
    check(sd_bus_message_append_basic(m, 's', text.c_str()), "Cannot add text (not UTF-8?)");
}
void append_argument(sd_bus_message* m, uint64_t number) {
    check(sd_bus_message_append_basic(m, 't', &number), "Cannot add a number");
}
void append_argument(sd_bus_message* m, const std::vector<uint8_t>& bytes) {
    check(sd_bus_message_append_array(m, 'y', bytes.data(), bytes.size()), "Cannot add bytes");
}
void append_argument(sd_bus_message* m, const std::vector<std::string>& strings) {
    append_strings(m, strings);
}
void append_argument(sd_bus_message* m, const Dict& dict) {
    append_dict(m, dict);
}

}  // namespace

struct Client::Impl {
    BusPtr bus;

    // Calls `member` with `args` and returns the reply; the daemon's error
    // is thrown as a BusError.
    template <class... Args>
    MessagePtr invoke(const char* member, unsigned sensitivity, const Args&... args) {
        auto m = new_call(member);
        if (sensitivity & kSecretCall) {
            check(sd_bus_message_sensitive(m.get()), "Cannot protect the call");
        }
        (append_argument(m.get(), args), ...);
        auto reply = call(m);
        if (sensitivity & kSecretReply) {
            check(sd_bus_message_sensitive(reply.get()), "Cannot protect the reply");
        }
        return reply;
    }

    MessagePtr new_call(const char* member) {
        sd_bus_message* m = nullptr;
        check(sd_bus_message_new_method_call(bus.get(), &m, kBusName, kObjectPath, kInterface,
                                             member),
              "Cannot create a D-Bus call");
        return MessagePtr(m);
    }

    // A step of watch() failed or found the connection gone: the latter is
    // a ConnectError however sd-bus reported it.
    void check_open(int r, std::string_view context) {
        if (sd_bus_is_open(bus.get()) <= 0) {
            sdbus::Error error;
            sd_bus_error_set_errno(error.get(), r < 0 ? r : -ECONNRESET);
            throw ConnectError(error.name(),
                               std::string("Connection to the bus lost: ") + error.message());
        }
        check(r, context);
    }

    MessagePtr call(const MessagePtr& m) {
        sdbus::Error error;
        sd_bus_message* reply = nullptr;
        const int r = sd_bus_is_ready(bus.get()) > 0
                          ? sd_bus_call(bus.get(), m.get(), 0, error.get(), &reply)
                          : first_call(m, error, reply);
        if (r < 0) {
            if (!error.is_set()) {
                sd_bus_error_set_errno(error.get(), r);
            }
            std::string name = error.name();
            std::string message = error.message();
            // A connection that is gone means no one answered, whatever
            // errno sd-bus chose to report it with.
            if (!sd_bus_is_open(bus.get())) {
                throw ConnectError(std::move(name), "Connection to the bus lost: " + message);
            }
            throw BusError(std::move(name), message);
        }
        return MessagePtr(reply);
    }

    // The first call of a connection, made before the bus has answered our
    // Hello. sd_bus_call() would wait for that answer before sending;
    // an async call is queued behind the Hello and goes out with it, which
    // spares a short-lived apikeyctl one round trip through the bus. While
    // the bus is not ready, nothing else of ours can be waiting on it.
    int first_call(const MessagePtr& m, sdbus::Error& error, sd_bus_message*& reply) {
        struct Answer {
            MessagePtr message;
        } answer;
        sd_bus_slot* raw_slot = nullptr;
        int r = sd_bus_call_async(
            bus.get(), &raw_slot, m.get(),
            [](sd_bus_message* message, void* userdata, sd_bus_error*) {
                static_cast<Answer*>(userdata)->message.reset(sd_bus_message_ref(message));
                return 0;
            },
            &answer, 0);
        const sdbus::SlotPtr slot(raw_slot);
        while (r >= 0 && !answer.message) {
            r = sd_bus_process(bus.get(), nullptr);
            if (r == 0) {
                r = sd_bus_wait(bus.get(), UINT64_MAX);
            }
        }
        if (r < 0) {
            return r;
        }
        if (const sd_bus_error* failed = sd_bus_message_get_error(answer.message.get())) {
            sd_bus_error_copy(error.get(), failed);
            return -EIO;
        }
        reply = answer.message.release();
        return 1;
    }
};

const char* signature_of(const Value& value) {
    return std::visit([](const auto& v) { return signature_of<std::decay_t<decltype(v)>>(); },
                      static_cast<const Value::variant&>(value));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

namespace {

[[noreturn]] void fail_connect(int r, std::string_view what) {
    sdbus::Error error;
    sd_bus_error_set_errno(error.get(), r);
    throw ConnectError(error.name(), std::string(what) + ": " + error.message());
}

}  // namespace

Client Client::connect_system() {
    sd_bus* raw = nullptr;
    int r = sd_bus_open_system(&raw);
    BusPtr bus(raw);
    if (r < 0) {
        fail_connect(r, "Cannot connect to the system bus");
    }
    auto impl = std::make_unique<Impl>();
    impl->bus = std::move(bus);
    return Client(std::move(impl));
}

Client Client::connect_address(const std::string& address) {
    sd_bus* raw = nullptr;
    int r = sd_bus_new(&raw);
    BusPtr bus(raw);
    if (r < 0) {
        fail_connect(r, "Cannot create a bus connection");
    }
    if ((r = sd_bus_set_address(bus.get(), address.c_str())) < 0 ||
        (r = sd_bus_set_bus_client(bus.get(), 1)) < 0 || (r = sd_bus_start(bus.get())) < 0) {
        fail_connect(r, "Cannot connect to the bus at " + address);
    }
    auto impl = std::make_unique<Impl>();
    impl->bus = std::move(bus);
    return Client(std::move(impl));
}

CreatedKey Client::create_key(const std::string& name, const std::string& description,
                              const std::vector<std::string>& scopes, const Dict& options) {
    auto reply = impl_->invoke("CreateKey", kSecretReply, name, description, scopes, options);
    CreatedKey created;
    read_string_into(reply.get(), created.id);
    read_string_into(reply.get(), created.key);
    return created;
}

std::string Client::import_secret(const std::string& name, const std::string& description,
                                  const std::vector<uint8_t>& secret, const Dict& options) {
    auto reply = impl_->invoke("ImportSecret", kSecretCall, name, description, secret, options);
    return read_string(reply.get());
}

std::vector<Dict> Client::list_keys(const Dict& filter) {
    return read_dicts(impl_->invoke("ListKeys", kPlain, filter).get());
}

Dict Client::get_key(const std::string& id) {
    return read_top_dict(impl_->invoke("GetKey", kPlain, id).get());
}

void Client::revoke_key(const std::string& id, const std::string& reason) {
    impl_->invoke("RevokeKey", kPlain, id, reason);
}

Verification Client::verify_key(const std::string& key, const std::string& scope) {
    auto reply = impl_->invoke("VerifyKey", kSecretCall, key, scope);
    Verification v;
    v.valid = read_number<int>(reply.get(), 'b') != 0;
    v.id = read_string(reply.get());
    v.info = read_top_dict(reply.get());
    return v;
}

std::vector<uint8_t> Client::get_secret(const std::string& id) {
    return read_fixed_array<uint8_t>(impl_->invoke("GetSecret", kSecretReply, id).get(), 'y');
}

Dict Client::get_status() {
    return read_top_dict(impl_->invoke("GetStatus", kPlain).get());
}

AddedKeyslot Client::add_keyslot(const std::string& type, const Dict& options) {
    auto reply = impl_->invoke("AddKeyslot", kSecretCall | kSecretReply, type, options);
    AddedKeyslot added;
    read_string_into(reply.get(), added.id);
    read_string_into(reply.get(), added.recovery_key);
    return added;
}

void Client::remove_keyslot(const std::string& id) {
    impl_->invoke("RemoveKeyslot", kPlain, id);
}

void Client::unlock(const std::string& type, const Dict& credentials) {
    impl_->invoke("Unlock", kSecretCall, type, credentials);
}

void Client::update_key(const std::string& id, const Dict& changes) {
    impl_->invoke("UpdateKey", kPlain, id, changes);
}

std::string Client::rotate_key(const std::string& id, uint64_t grace_sec) {
    auto reply = impl_->invoke("RotateKey", kSecretReply, id, grace_sec);
    std::string key;
    read_string_into(reply.get(), key);
    return key;
}

std::vector<uint8_t> Client::sign(const std::string& id, const std::string& algorithm,
                                  const std::vector<uint8_t>& data) {
    // The data may be as private as the secret: a request body, a token.
    auto reply = impl_->invoke("Sign", kSecretCall, id, algorithm, data);
    return read_fixed_array<uint8_t>(reply.get(), 'y');
}

std::vector<Dict> Client::get_usage(const std::string& id, const Dict& options) {
    return read_dicts(impl_->invoke("GetUsage", kPlain, id, options).get());
}

std::vector<Dict> Client::get_usage_by_day(const std::string& id, const Dict& options) {
    return read_dicts(impl_->invoke("GetUsageByDay", kPlain, id, options).get());
}

Identification Client::identify_key(const std::string& key) {
    auto reply = impl_->invoke("IdentifyKey", kSecretCall, key);
    Identification identified;
    identified.known = read_number<int>(reply.get(), 'b') != 0;
    identified.id = read_string(reply.get());
    identified.info = read_top_dict(reply.get());
    return identified;
}

void Client::watch(const std::function<void()>& on_subscribed,
                   const std::function<bool(const Signal&)>& on_signal) {
    sd_bus* bus = impl_->bus.get();
    WatchState state;
    sd_bus_slot* raw = nullptr;
    // Synchronous: AddMatch is answered before this returns, so the bus
    // routes every later signal to us.
    check(sd_bus_match_signal(bus, &raw, kBusName, kObjectPath, kInterface, nullptr, queue_signal,
                              &state),
          "Cannot subscribe to apikeyd's signals");
    const sdbus::SlotPtr slot(raw);
    // The daemon sends its signals only to connections that subscribed,
    // for the keys their user may see; after the match rule, so that none
    // sent after the subscription is dropped.
    impl_->invoke("Subscribe", kPlain);
    on_subscribed();
    for (;;) {
        int r = sd_bus_process(bus, nullptr);
        impl_->check_open(r, "Cannot read from the bus");
        if (state.error) {
            std::rethrow_exception(state.error);
        }
        std::vector<Signal> signals;
        signals.swap(state.pending);
        for (const Signal& signal : signals) {
            if (!on_signal(signal)) {
                return;
            }
        }
        if (r > 0) {
            continue;  // more may be queued already
        }
        r = sd_bus_wait(bus, UINT64_MAX);
        impl_->check_open(r == -EINTR ? 0 : r, "Cannot wait for the bus");
    }
}

std::string Client::introspect() {
    sd_bus_message* raw = nullptr;
    check(sd_bus_message_new_method_call(impl_->bus.get(), &raw, kBusName, kObjectPath,
                                         "org.freedesktop.DBus.Introspectable", "Introspect"),
          "Cannot create a D-Bus call");
    MessagePtr m(raw);
    auto reply = impl_->call(m);
    return read_string(reply.get());
}

}  // namespace apikeyd::client
