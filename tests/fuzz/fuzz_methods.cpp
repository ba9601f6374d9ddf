// libFuzzer harness: every method of org.apikeyd1.Manager, through the real
// ManagerObject vtable, the real KeyService, Store and keyslots.
//
// No dbus-daemon: the daemon's end of a socketpair is an sd-bus client, as on
// the system bus, and the other end plays both the bus driver (it answers
// Hello, AddMatch and GetConnectionCredentials, vouching for three callers:
// root, uid 1000 and uid 1001) and the callers. The driver answers only while
// the harness starts (a thread, then joined); afterwards everything runs in
// one thread, so a handler that made a bus call of its own would hang and be
// reported as a timeout.
//
// A fuzz input is a sequence of up to 16 calls, each built for a method's
// in-signature (or, on purpose, a wrong one) with strings that may name the
// keys, key texts, keyslots and recovery keys the state holds or earlier calls
// returned. Every input starts from the same state directory (a software
// keyslot, a cheap recovery keyslot, keys of three users), unlocked or locked.
// Every call must be answered with a method return of the declared
// signature or an org.apikeyd1.Error.* (Internal only where hardware is
// touched), no error may quote a key text, recovery key or secret, and
// GetSecret must give back what ImportSecret kept.

#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/bus_names.hpp"
#include "common/key_format.hpp"
#include "daemon/commit_scheduler.hpp"
#include "daemon/key_service.hpp"
#include "daemon/keyslot_admin.hpp"
#include "daemon/keyslot_manager.hpp"
#include "daemon/keyslots/software_keyslot.hpp"
#include "daemon/store.hpp"
#include "dbus/manager_object.hpp"
#include "dbus/sdbus.hpp"
#include "tests/fuzz/fuzz_state.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace apikeyd;
namespace fs = std::filesystem;
using fuzz::Input;

constexpr const char* kHarness = "fuzz_methods";
constexpr size_t kMaxCalls = 16;

struct Sender {
    const char* name;
    uint32_t uid;
};
// The callers the driver vouches for. A fourth choice sends no sender.
constexpr Sender kSenders[] = {{":1.100", 0}, {":1.101", fuzz::kAlice}, {":1.102", fuzz::kBob}};

// The methods of the contract in a fixed order, so that a seed keeps its
// meaning; a method the object does not have must be answered UnknownMethod.
// Methods the object has beyond these are appended at start.
constexpr std::pair<const char*, const char*> kContract[] = {
    {"CreateKey", "ssasa{sv}"}, {"ImportSecret", "ssaya{sv}"},
    {"ListKeys", "a{sv}"},      {"GetKey", "s"},
    {"UpdateKey", "sa{sv}"},    {"RevokeKey", "ss"},
    {"RotateKey", "st"},        {"VerifyKey", "ss"},
    {"GetSecret", "s"},         {"Sign", "ssay"},
    {"GetUsage", "sa{sv}"},     {"GetStatus", ""},
    {"AddKeyslot", "sa{sv}"},   {"RemoveKeyslot", "s"},
    {"Unlock", "sa{sv}"},
};

// Methods that touch hardware: a TPM that cannot be reached is an Internal
// error there, and nowhere else.
bool touches_hardware(std::string_view method) {
    return method == "AddKeyslot" || method == "Unlock";
}

constexpr std::string_view kErrors[] = {
    "NotFound", "InvalidArgument", "Revoked",       "Expired",  "RateLimited",
    "Locked",   "AccessDenied",    "LimitExceeded", "Internal",
};

struct Method {
    std::string name;
    std::string in;
    std::string out;
    bool exists = false;
};

// Option names and the type each has where the contract names it.
struct OptionName {
    const char* name;
    const char* type;
};
constexpr OptionName kOptionNames[] = {
    {"expires_in_sec", "t"},
    {"max_uses", "t"},
    {"prefix", "s"},
    {"state", "s"},
    {"name", "s"},
    {"description", "s"},
    {"scopes", "as"},
    {"tcti", "s"},
    {"pcrs", "au"},
    {"pin", "s"},
    {"recovery_key", "s"},
    {"limit", "u"},
    {"since_usec", "t"},
    {"never_expires", "b"},
    {"rate_limit_per_min", "u"},
    {"days", "u"},
    {"uri", "s"},
    {"keyslot", "s"},
    {"after", "s"},
};

constexpr std::string_view kWords[] = {
    "",         "tpm2",        "recovery", "software",    "pkcs11", "read",    "write",
    "models:*", "models:read", "*",        "hmac-sha256", "active", "revoked", "expired",
    "all",      "k_",          "ks_",      "ak_",         "sk",     "a",       "ak",
};
constexpr std::string_view kTctis[] = {
    "device:/dev/tpmrm0",
    "device:/dev/tpm7",
    "swtpm:port=1",
    "mssim:host=localhost,port=1",
    "tabrmd",
    "pcap:device:/dev/tpm0",
    "libtss2-tcti-evil.so",
    "device:/etc/passwd",
};
constexpr uint64_t kNumbers[] = {
    0,
    1,
    2,
    3,
    60,
    3600,
    86400,
    KeyService::kMaxExpiresInSec,
    KeyService::kMaxExpiresInSec + 1,
    UINT64_MAX,
    1ULL << 63,
};

// What the state holds and earlier calls of this input returned.
struct Known {
    std::vector<std::string> ids;
    std::vector<std::string> key_texts;
    std::vector<std::string> slot_ids;
    std::vector<std::string> recovery_keys;
    std::map<std::string, std::string> secrets;  // imported secret by id
    std::set<std::string> secret_texts;          // must never appear in an error
};

struct World {
    fuzz::FuzzClock clock;
    fuzz::StateTemplate state_template;
    fs::path template_dir;
    fs::path state;
    std::unique_ptr<Store> store;
    std::optional<KeyslotManager> keyslots;
    std::optional<CommitScheduler> commits;
    std::optional<KeyService> service;
    std::optional<KeyslotAdmin> admin;
    std::optional<bus::Subscribers> subscribers;
    sd_bus* daemon = nullptr;
    // The daemon's loop: its bus and the group commit's sources run on it.
    sd_event* event = nullptr;
    sd_bus* peer = nullptr;
    std::unique_ptr<bus::ManagerObject> object;
    std::vector<Method> methods;
    uint64_t generated = 0;
};
World* world = nullptr;

[[noreturn]] void fail(const std::string& what) {
    fuzz::fail(kHarness, what);
}

// ------------------------------------------------------------------ state ---

void attach_commits() {
    if (auto ok = world->commits->attach(world->event); !ok) {
        fail("cannot attach the commit scheduler: " + ok.error().message);
    }
}

// Starts the daemon's core again on the template's state: the database
// written anew and opened (the store holds it exclusively, as the daemon
// does, so no second connection can put rows back under it), the software
// keyslot's file there or not, and the whole core (keyslots, commit
// scheduler, key service, keyslot admin) made afresh, in the storage that
// the ManagerObject's Core refers to.

void open_state(bool locked) {
    World& w = *world;
    w.admin.reset();
    w.service.reset();
    w.commits.reset();
    w.keyslots.reset();
    w.store.reset();
    const auto db = w.state / Store::kFileName;
    for (const char* suffix : {"-wal", "-shm", "-journal"}) {
        unlink((db.string() + suffix).c_str());
    }
    fuzz::write_bytes(db, w.state_template.database);
    auto store = Store::open(db);
    if (!store) {
        fail("cannot open the state: " + store.error().message);
    }
    w.store = std::move(*store);
    const auto key_file = w.state / SoftwareKeyslot::kFileName;
    if (locked) {
        unlink(key_file.c_str());
    } else if (access(key_file.c_str(), F_OK) != 0) {
        fuzz::write_bytes(key_file, w.state_template.key_file);
    }
    w.keyslots.emplace(*w.store, w.state, w.clock);
    auto initialized = w.keyslots->initialized();
    if (!initialized || !*initialized) {
        fail("the state has no keyslots");
    }
    w.keyslots->unlock();
    if (w.keyslots->locked() != locked) {
        fail("the state did not start " + std::string(locked ? "locked" : "unlocked") + ": " +
             w.keyslots->lock_reason());
    }
    w.commits.emplace(*w.store);
    if (w.event) {
        attach_commits();
    }
    w.service.emplace(*w.store, *w.keyslots, w.clock, *w.commits);
    w.admin.emplace(*w.keyslots);
}

// -------------------------------------------------------------------- bus ---

std::atomic<bool> hello_answered{false};

// The bus driver's part, for the start only.
int driver(sd_bus_message* m, void*, sd_bus_error*) {
    if (!sd_bus_message_is_method_call(m, "org.freedesktop.DBus", nullptr)) {
        return 0;
    }
    const std::string member = sd_bus_message_get_member(m);
    if (member == "Hello") {
        const int r = sd_bus_reply_method_return(m, "s", ":1.1");
        hello_answered = true;
        return r;
    }
    if (member == "AddMatch" || member == "RemoveMatch") {
        return sd_bus_reply_method_return(m, "");
    }
    if (member == "GetConnectionCredentials") {
        const char* name = nullptr;
        if (sd_bus_message_read(m, "s", &name) >= 0) {
            for (const auto& sender : kSenders) {
                if (std::string_view(name) == sender.name) {
                    return sd_bus_reply_method_return(m, "a{sv}", 2, "UnixUserID", "u", sender.uid,
                                                      "ProcessID", "u", uint32_t{4242});
                }
            }
        }
        return sd_bus_reply_method_errorf(m, "org.freedesktop.DBus.Error.NameHasNoOwner",
                                          "No such name");
    }
    return sd_bus_reply_method_errorf(m, "org.freedesktop.DBus.Error.UnknownMethod",
                                      "The fuzz driver knows no %s", member.c_str());
}

sdbus::MessagePtr new_call(const char* member, const char* sender) {
    sd_bus_message* raw = nullptr;
    if (sd_bus_message_new_method_call(
            world->peer, &raw, bus_names::kBusName, bus_names::kObjectPath,
            member == std::string_view("Introspect") ? "org.freedesktop.DBus.Introspectable"
                                                     : bus_names::kInterface,
            member) < 0) {
        fail("cannot make a method call");
    }
    sdbus::MessagePtr m(raw);
    if (sender && sd_bus_message_set_sender(m.get(), sender) < 0) {
        fail("cannot set the sender");
    }
    return m;
}

// Runs both ends until the reply to `cookie` has arrived (signals and other
// messages are dropped); single-threaded, after the start.
sdbus::MessagePtr pump(uint64_t cookie) {
    for (int idle = 0; idle < 100;) {
        bool progress = false;
        int r = 0;
        while ((r = sd_event_run(world->event, 0)) > 0) {
            progress = true;
        }
        if (r < 0) {
            fail("the daemon's loop failed: " + std::string(std::strerror(-r)));
        }
        for (;;) {
            sd_bus_message* raw = nullptr;
            r = sd_bus_process(world->peer, &raw);
            if (r < 0) {
                fail("the caller's connection failed: " + std::string(std::strerror(-r)));
            }
            if (r == 0) {
                break;
            }
            progress = true;
            sdbus::MessagePtr got(raw);
            uint64_t reply_cookie = 0;
            if (got && sd_bus_message_get_reply_cookie(got.get(), &reply_cookie) >= 0 &&
                reply_cookie == cookie) {
                return got;
            }
        }
        if (!progress) {
            // A change's reply waits for its batch's COMMIT, at the latest
            // the group commit's deadline (2 ms) later.
            ++idle;
            (void)sd_event_run(world->event, 1000);
        }
    }
    fail("a call got no reply");
}

sdbus::MessagePtr call(sdbus::MessagePtr m) {
    uint64_t cookie = 0;
    if (sd_bus_send(world->peer, m.get(), &cookie) < 0) {
        fail("cannot send a call");
    }
    return pump(cookie);
}

void start_bus() {
    World& w = *world;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        fail("socketpair failed");
    }
    sd_id128_t id{};
    if (sd_bus_new(&w.daemon) < 0 || sd_bus_set_fd(w.daemon, fds[0], fds[0]) < 0 ||
        sd_bus_set_bus_client(w.daemon, 1) < 0 || sd_bus_start(w.daemon) < 0 ||
        sd_bus_new(&w.peer) < 0 || sd_bus_set_fd(w.peer, fds[1], fds[1]) < 0 ||
        sd_id128_randomize(&id) < 0 || sd_bus_set_server(w.peer, 1, id) < 0 ||
        sd_bus_set_anonymous(w.peer, 1) < 0 || sd_bus_start(w.peer) < 0 ||
        sd_bus_add_filter(w.peer, nullptr, driver, nullptr) < 0 || sd_event_new(&w.event) < 0 ||
        sd_bus_attach_event(w.daemon, w.event, SD_EVENT_PRIORITY_NORMAL) < 0) {
        fail("cannot set up the sd-bus pair");
    }
    attach_commits();

    // The driver answers in a thread while the daemon's end starts (Hello)
    // and the ManagerObject subscribes (AddMatch); then each caller makes one
    // call so that the object asks (GetConnectionCredentials) and keeps the
    // answer. After that nothing asks the driver again.
    std::atomic<bool> object_ready{false};
    std::atomic<bool> warmed_up{false};
    std::thread driver_thread([&] {
        while (!object_ready) {
            if (sd_bus_process(w.peer, nullptr) == 0) {
                (void)sd_bus_wait(w.peer, 1000);
            }
        }
        std::set<uint64_t> waiting;
        for (const auto& sender : kSenders) {
            auto m = new_call("GetStatus", sender.name);
            uint64_t cookie = 0;
            if (sd_bus_send(w.peer, m.get(), &cookie) < 0) {
                fail("cannot send a warm-up call");
            }
            waiting.insert(cookie);
        }
        while (!waiting.empty()) {
            sd_bus_message* raw = nullptr;
            const int r = sd_bus_process(w.peer, &raw);
            sdbus::MessagePtr got(raw);
            uint64_t cookie = 0;
            if (got && sd_bus_message_get_reply_cookie(got.get(), &cookie) >= 0) {
                if (sd_bus_message_is_method_error(got.get(), nullptr)) {
                    fail(std::string("a warm-up call failed: ") +
                         sd_bus_message_get_error(got.get())->message);
                }
                waiting.erase(cookie);
            }
            if (r < 0) {
                fail("the driver's connection failed");
            }
            if (r == 0) {
                (void)sd_bus_wait(w.peer, 1000);
            }
        }
        warmed_up = true;
    });
    w.subscribers.emplace(w.daemon);
    auto object =
        bus::ManagerObject::create(w.daemon, {*w.service, *w.admin, *w.commits, *w.subscribers});
    if (!object) {
        fail("ManagerObject::create: " + object.error().message);
    }
    w.object = std::move(*object);
    object_ready = true;
    while (!warmed_up) {
        const int r = sd_bus_process(w.daemon, nullptr);
        if (r < 0) {
            fail("the daemon's connection failed while starting");
        }
        if (r == 0) {
            (void)sd_bus_wait(w.daemon, 1000);
        }
    }
    driver_thread.join();
}

// The methods as the object introspects them, in contract order.
void discover_methods() {
    auto reply = call(new_call("Introspect", kSenders[0].name));
    const char* xml = nullptr;
    if (sd_bus_message_read(reply.get(), "s", &xml) < 0) {
        fail("cannot introspect the object");
    }
    const std::string text = xml;
    std::map<std::string, Method> found;
    const auto iface = text.find(std::string("<interface name=\"") + bus_names::kInterface + "\"");
    const auto end = text.find("</interface>", iface);
    if (iface == std::string::npos || end == std::string::npos) {
        fail("the object does not introspect " + std::string(bus_names::kInterface));
    }
    for (size_t pos = text.find("<method name=\"", iface); pos < end;
         pos = text.find("<method name=\"", pos + 1)) {
        Method method;
        const auto name_start = pos + std::strlen("<method name=\"");
        method.name = text.substr(name_start, text.find('"', name_start) - name_start);
        method.exists = true;
        const auto method_end = std::min(text.find("</method>", pos), end);
        for (size_t arg = text.find("<arg ", pos); arg < method_end;
             arg = text.find("<arg ", arg + 1)) {
            const auto close = text.find('>', arg);
            const std::string element = text.substr(arg, close - arg);
            const auto type_at = element.find("type=\"") + std::strlen("type=\"");
            const std::string type = element.substr(type_at, element.find('"', type_at) - type_at);
            (element.find("direction=\"out\"") != std::string::npos ? method.out : method.in) +=
                type;
        }
        found[method.name] = method;
    }
    for (const auto& [name, in] : kContract) {
        if (const auto it = found.find(name); it != found.end()) {
            if (it->second.in != in) {
                fail(std::string(name) + " takes '" + it->second.in + "', the contract says '" +
                     in + "'");
            }
            world->methods.push_back(it->second);
            found.erase(it);
        } else {
            world->methods.push_back(Method{name, in, "", false});
        }
    }
    // Subscribe asks the bus driver whether the caller is still there, and
    // waits for the answer: here that driver is this thread, which cannot
    // answer while the daemon waits. The integration tests call them.
    found.erase("Subscribe");
    found.erase("Unsubscribe");
    for (auto& [name, method] : found) {
        world->methods.push_back(method);
    }
}

// ------------------------------------------------------------- arguments ---

// Splits a signature into its complete types.
std::vector<std::string> complete_types(std::string_view signature) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < signature.size()) {
        size_t j = i;
        while (j < signature.size() && signature[j] == 'a') {
            ++j;
        }
        if (j < signature.size() && (signature[j] == '(' || signature[j] == '{')) {
            int depth = 0;
            do {
                if (signature[j] == '(' || signature[j] == '{') {
                    ++depth;
                } else if (signature[j] == ')' || signature[j] == '}') {
                    --depth;
                }
                ++j;
            } while (depth > 0 && j < signature.size());
        } else {
            ++j;
        }
        out.emplace_back(signature.substr(i, j - i));
        i = j;
    }
    return out;
}

class CallBuilder {
  public:
    CallBuilder(Input& in, Known& known) : in_(in), known_(known) {}

    // Strings sent where no secret belongs (a name, an id): an error may
    // quote those.
    std::string plain;
    // An ImportSecret body, kept if the import succeeds.
    std::optional<std::string> imported;
    // The last string argument made.
    std::string last_text;

    int append(sd_bus_message* m, const std::string& type, bool secret) {
        if (type == "s") {
            return sd_bus_message_append_basic(m, 's', text(secret).c_str());
        }
        if (type == "as") {
            return scopes(m);
        }
        if (type == "ay") {
            // A secret to import: one the harness makes up (and will look
            // for in errors), the input's bytes, or more than the limit.
            const uint8_t choice = secret ? in_.byte() : 100;
            std::string bytes;
            if (choice < 100) {
                bytes = "sk-fuzz-generated-" + std::to_string(++world->generated) + "-7c1e9a0b5d3f";
            } else if (choice < 200) {
                bytes = in_.bytes();
            } else {
                bytes.assign(64 * 1024 + 1, 'x');
            }
            if (secret) {
                imported = bytes;
            }
            return sd_bus_message_append_array(m, 'y', bytes.data(), bytes.size());
        }
        if (type == "t") {
            const uint64_t v = number();
            return sd_bus_message_append_basic(m, 't', &v);
        }
        if (type == "a{sv}") {
            return dict(m);
        }
        return fuzz::append_value(m, type, in_);
    }

  private:
    template <class V>
    std::string pick(const V& values) {
        const size_t n = in_.byte();
        const size_t count = std::size(values);
        return count == 0 ? std::string() : std::string(values[n % count]);
    }

    std::string text(bool secret) {
        std::string v;
        const uint8_t choice = in_.byte();
        switch (choice % 16) {
            case 5:
                v = pick(known_.ids);
                break;
            case 6:
                v = pick(known_.key_texts);
                break;
            case 7:
                v = pick(known_.slot_ids);
                break;
            case 8: {
                v = pick(known_.recovery_keys);
                const uint8_t form = in_.byte() % 3;
                if (form == 1) {
                    std::transform(v.begin(), v.end(), v.begin(), [](char c) {
                        return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
                    });
                } else if (form == 2) {
                    v.erase(std::remove(v.begin(), v.end(), '-'), v.end());
                }
                break;
            }
            case 9:
                v = pick(kWords);
                break;
            case 10:
            case 11:
                v = choice % 16 == 10 ? pick(known_.key_texts) : pick(known_.ids);
                if (!v.empty()) {
                    const size_t at = in_.byte() % v.size();
                    v[at] = static_cast<char>(in_.byte() & 0x7f);
                }
                break;
            case 12: {
                const size_t length = 16 * (1 + in_.byte() % 64);
                v.assign(length, static_cast<char>('a' + in_.byte() % 26));
            } break;
            default:
                v = in_.bytes();
                break;
        }
        v = fuzz::dbus_text(v);
        if (!secret || !known_.secret_texts.contains(v)) {
            plain += v + '\n';
        }
        last_text = v;
        return v;
    }

    uint64_t number() {
        const uint8_t choice = in_.byte();
        if (choice < 100) {
            return kNumbers[choice % std::size(kNumbers)];
        }
        return choice < 200 ? in_.u32() : in_.u64();
    }

    int scopes(sd_bus_message* m) {
        int r = sd_bus_message_open_container(m, 'a', "s");
        const uint8_t count = in_.byte();
        const size_t n = count == 255 ? 40 : count % 6;
        for (size_t i = 0; i < n && r >= 0; ++i) {
            const std::string scope = in_.byte() < 160 ? pick(kWords) : text(false);
            plain += scope + '\n';
            r = sd_bus_message_append_basic(m, 's', scope.c_str());
        }
        return r < 0 ? r : sd_bus_message_close_container(m);
    }

    int dict(sd_bus_message* m) {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");
        const size_t n = in_.byte() % 5;
        for (size_t i = 0; i < n && r >= 0; ++i) {
            const uint8_t name_choice = in_.byte();
            const OptionName* known_name =
                name_choice < 220 ? &kOptionNames[name_choice % std::size(kOptionNames)] : nullptr;
            const std::string name = known_name ? known_name->name : text(false);
            const uint8_t type_choice = in_.byte();
            const std::string type =
                known_name && type_choice < 200
                    ? known_name->type
                    : std::string(
                          fuzz::kVariantTypes[type_choice % std::size(fuzz::kVariantTypes)]);
            const bool secret = name == "pin" || name == "recovery_key";
            r = sd_bus_message_open_container(m, 'e', "sv");
            if (r >= 0) {
                r = sd_bus_message_append_basic(m, 's', name.c_str());
            }
            if (r >= 0) {
                r = sd_bus_message_open_container(m, 'v', type.c_str());
            }
            if (r >= 0) {
                if (name == "tcti" && type == "s" && in_.byte() < 200) {
                    const std::string tcti = pick(kTctis);
                    plain += tcti + '\n';
                    r = sd_bus_message_append_basic(m, 's', tcti.c_str());
                } else if (type == "au") {
                    std::vector<uint32_t> pcrs(in_.byte() % 6);
                    for (auto& pcr : pcrs) {
                        pcr = in_.byte() < 200 ? in_.byte() % 30 : in_.u32();
                    }
                    r = sd_bus_message_append_array(m, 'u', pcrs.data(),
                                                    pcrs.size() * sizeof(uint32_t));
                } else {
                    // A value in a dictionary is never the secret to import.
                    auto kept = imported;
                    r = append(m, type, secret);
                    imported = std::move(kept);
                }
            }
            for (int close = 0; close < 2 && r >= 0; ++close) {
                r = sd_bus_message_close_container(m);
            }
        }
        return r < 0 ? r : sd_bus_message_close_container(m);
    }

    Input& in_;
    Known& known_;
};

// ----------------------------------------------------------------- checks ---

bool is_recovery_key(std::string_view s) {
    return s.size() == 39 && std::count(s.begin(), s.end(), '-') == 7;
}

// Takes note of what a successful reply handed out.
void harvest(const Method& method, sd_bus_message* reply, Known& known, const CallBuilder& built,
             const std::string& first_arg) {
    const auto types = complete_types(method.out);
    for (const auto& type : types) {
        if (type == "s") {
            const char* s = nullptr;
            if (sd_bus_message_read_basic(reply, 's', &s) <= 0) {
                fail(method.name + ": unreadable reply");
            }
            const std::string value = s;
            if (value.starts_with("ks_")) {
                known.slot_ids.push_back(value);
            } else if (value.starts_with("k_")) {
                known.ids.push_back(value);
                if (method.name == "ImportSecret" && built.imported) {
                    known.secrets[value] = *built.imported;
                    if (built.imported->size() >= 16) {
                        known.secret_texts.insert(*built.imported);
                    }
                }
            } else if (key_format::parse(value)) {
                known.key_texts.push_back(value);
                known.secret_texts.insert(value);
            } else if (is_recovery_key(value)) {
                known.recovery_keys.push_back(value);
                known.secret_texts.insert(value);
            }
        } else if (type == "ay" && method.name == "GetSecret") {
            const void* data = nullptr;
            size_t size = 0;
            if (sd_bus_message_read_array(reply, 'y', &data, &size) < 0) {
                fail("GetSecret: unreadable reply");
            }
            const auto it = known.secrets.find(first_arg);
            if (it != known.secrets.end() &&
                std::string_view(static_cast<const char*>(data), size) != it->second) {
                fail("GetSecret gave back other bytes than ImportSecret kept");
            }
        } else if (sd_bus_message_skip(reply, type.c_str()) < 0) {
            fail(method.name + ": unreadable reply");
        }
    }
}

void check_error(const Method& method, const sd_bus_error* error, const Known& known,
                 const CallBuilder& built, bool expect_bus_error) {
    const std::string name = error && error->name ? error->name : "";
    const std::string message = error && error->message ? error->message : "";
    if (expect_bus_error) {
        const char* expected = method.exists ? "org.freedesktop.DBus.Error.InvalidArgs"
                                             : "org.freedesktop.DBus.Error.UnknownMethod";
        if (name != expected) {
            fail(method.name + " with a wrong signature: " + name + " instead of " + expected);
        }
        return;
    }
    if (!method.exists) {
        if (name != "org.freedesktop.DBus.Error.UnknownMethod") {
            fail(method.name + " is not in the object, yet the answer is " + name);
        }
        return;
    }
    const std::string prefix = "org.apikeyd1.Error.";
    const bool named = name.starts_with(prefix) &&
                       std::find(std::begin(kErrors), std::end(kErrors),
                                 std::string_view(name).substr(prefix.size())) != std::end(kErrors);
    if (!named) {
        fail(method.name + " answered the error '" + name + "' (" + message + ")");
    }
    if (name == prefix + "Internal" && !touches_hardware(method.name)) {
        fail(method.name + " answered an Internal error");
    }
    for (const auto& secret : known.secret_texts) {
        if (message.find(secret) != std::string::npos &&
            built.plain.find(secret) == std::string::npos) {
            fail(method.name + " quoted a key text, recovery key or secret in its error");
        }
    }
}

void run_call(Input& in, Known& known, uint8_t op) {
    const size_t sender_choice = op >> 6;
    const char* sender =
        sender_choice < std::size(kSenders) ? kSenders[sender_choice].name : nullptr;
    const size_t action = op & 0x3f;
    if (action == 63) {
        // As the daemon's flush timer does.
        if (auto ok = world->service->flush_usage(); !ok) {
            fail("flush_usage: " + ok.error().message);
        }
        return;
    }
    if (action == 62) {
        world->clock.now += (in.byte() < 128 ? in.byte() : in.u32()) * kUsecPerSec;
        return;
    }
    const bool wrong_signature = action == 61;
    const Method& method =
        world->methods[(wrong_signature ? in.byte() : action) % world->methods.size()];
    auto types = complete_types(method.in);
    if (wrong_signature) {
        if (!types.empty() && in.byte() % 2 == 0) {
            types.pop_back();
        } else {
            types.push_back(in.byte() % 2 ? "s" : "u");
        }
    }

    auto m = new_call(method.name.c_str(), sender);
    CallBuilder built(in, known);
    std::string first_arg;
    for (size_t i = 0; i < types.size(); ++i) {
        // Where key text or a secret goes.
        const bool secret =
            ((method.name == "VerifyKey" || method.name == "IdentifyKey") && i == 0) ||
            (method.name == "ImportSecret" && types[i] == "ay");
        if (built.append(m.get(), types[i], secret) < 0) {
            return;  // sd-bus refused the message itself
        }
        if (i == 0) {
            first_arg = built.last_text;
        }
    }
    auto reply = call(std::move(m));
    const bool expect_bus_error = wrong_signature;
    if (sd_bus_message_is_method_error(reply.get(), nullptr)) {
        check_error(method, sd_bus_message_get_error(reply.get()), known, built, expect_bus_error);
        return;
    }
    uint8_t type = 0;
    if (sd_bus_message_get_type(reply.get(), &type) < 0 || type != SD_BUS_MESSAGE_METHOD_RETURN) {
        fail(method.name + ": the reply is neither a method return nor an error");
    }
    if (expect_bus_error || !method.exists) {
        fail(method.name + " accepted a call it should have refused");
    }
    const char* signature = sd_bus_message_get_signature(reply.get(), true);
    if (!signature || method.out != signature) {
        fail(method.name + " replied '" + (signature ? signature : "") + "', not '" + method.out +
             "'");
    }
    harvest(method, reply.get(), known, built, first_arg);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    setenv("TSS2_LOG", "all+none", 0);
    world = new World;
    const auto root = fuzz::make_temp_root("apikeyd-fuzz-methods");
    world->template_dir = root / "template";
    fs::create_directory(world->template_dir);
    world->state = root / "state";
    fs::create_directory(world->state);
    world->state_template = fuzz::make_template(world->template_dir, world->clock, false);
    fuzz::quiet_daemon_log();
    open_state(false);
    start_bus();
    discover_methods();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in(data, size);
    const uint8_t flags = in.byte();
    world->clock.now = fuzz::FuzzClock::kStart + 3600 * kUsecPerSec;
    open_state((flags & 1) != 0);

    const auto& t = world->state_template;
    Known known{t.key_ids, t.key_texts, t.slot_ids, t.recovery_keys, t.secrets, {}};
    for (const auto& text : t.key_texts) {
        known.secret_texts.insert(text);
    }
    for (const auto& key : t.recovery_keys) {
        known.secret_texts.insert(key);
    }
    for (const auto& [id, secret] : t.secrets) {
        if (secret.size() >= 16) {
            known.secret_texts.insert(secret);
        }
    }
    for (size_t calls = 0; calls < kMaxCalls && !in.empty(); ++calls) {
        run_call(in, known, in.byte());
    }
    if (auto ok = world->service->flush_usage(); !ok) {
        fail("flush_usage: " + ok.error().message);
    }
    return 0;
}
