// libFuzzer harness: option dictionaries (dbus/options.cpp read_options).
//
// Each input builds one sd-bus message whose argument is an a{sv} (or, now
// and then, something else) with names and values chosen by the input, and
// reads it with read_options() against one of the method tables. The harness
// knows what it built, so it knows the answer: read_options() must accept
// exactly a dictionary of known names with the right types, each given once,
// return the values that were sent, leave the message right after the
// dictionary, and refuse everything else with InvalidArgument whose message
// does not depend on what a secret value says (the same message with every
// secret value replaced by as many '#' must be refused in the same words).

#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/bus_names.hpp"
#include "daemon/validation.hpp"
#include "dbus/method_options.hpp"
#include "dbus/options.hpp"
#include "dbus/sdbus.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace apikeyd;
using bus::OptionSpec;
using fuzz::Input;

constexpr const char* kHarness = "fuzz_options";
// A string after the dictionary, which read_options() must leave unread.
constexpr const char* kTrailer = "after";

using namespace bus::method_options;

// Every type read_options() knows, once each.
constexpr OptionSpec kEveryType[] = {{"s", "s"},  {"t", "t"},   {"u", "u"},
                                     {"b", "b"},  {"au", "au"}, {"secret", "s", true},
                                     {"as", "as"}};

const bus::OptionTable kTables[] = {
    kCreate,        kImport,  kListFilter, kAddKeyslot, kUnlockCredentials, {"option", kEveryType},
    {"option", {}}, kChanges, kUsage,      kUsageByDay,
};

// Names a dictionary entry may take besides arbitrary text.
constexpr std::string_view kNames[] = {
    "expires_in_sec",
    "max_uses",
    "prefix",
    "state",
    "tcti",
    "pcrs",
    "pin",
    "recovery_key",
    "s",
    "t",
    "u",
    "b",
    "au",
    "secret",
    "",
    "PIN",
    "pin ",
    "expires_in_sec\x01",
    "name",
    "description",
    "scopes",
    "never_expires",
    "rate_limit_per_min",
    "since_usec",
    "limit",
    "uri",
    "keyslot",
    "as",
    "days",
    "after",
};

using Value = std::variant<std::monostate, std::string, uint64_t, uint32_t, bool,
                           std::vector<uint32_t>, std::vector<std::string>>;

bool is_known_type(std::string_view type) {
    return type == "s" || type == "t" || type == "u" || type == "b" || type == "au" || type == "as";
}

struct Entry {
    std::string name;
    std::string type;
    Value value;  // monostate for types read_options() never returns
};

sd_bus* message_bus() {
    static sd_bus* bus = [] {
        // A message needs a bus that has been started; this one never talks.
        int fds[2];
        sd_bus* b = nullptr;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0 || sd_bus_new(&b) < 0 ||
            sd_bus_set_fd(b, fds[0], fds[0]) < 0 || sd_bus_start(b) < 0) {
            fuzz::fail(kHarness, "cannot set up an sd-bus connection");
        }
        return b;
    }();
    return bus;
}

// Appends a value of a type read_options() knows and says what it was. With
// `mask`, a string is replaced by as many '#' bytes.
int append_known(sd_bus_message* m, const std::string& type, Input& in, Value& value, bool mask) {
    if (type == "s") {
        auto text = fuzz::dbus_text(in.bytes());
        if (mask) {
            text.assign(text.size(), '#');
        }
        const int r = sd_bus_message_append_basic(m, 's', text.c_str());
        value = std::move(text);
        return r;
    }
    if (type == "t") {
        const uint64_t v = in.byte() < 128 ? in.byte() : in.u64();
        value = v;
        return sd_bus_message_append_basic(m, 't', &v);
    }
    if (type == "u") {
        const uint32_t v = in.u32();
        value = v;
        return sd_bus_message_append_basic(m, 'u', &v);
    }
    if (type == "b") {
        const bool v = (in.byte() & 1) != 0;
        value = v;
        const int i = v ? 1 : 0;
        return sd_bus_message_append_basic(m, 'b', &i);
    }
    if (type == "as") {
        // Up to a few more than the longest list an option takes.
        std::vector<std::string> v(in.byte() % 40);
        int r = sd_bus_message_open_container(m, 'a', "s");
        for (auto& x : v) {
            x = fuzz::dbus_text(in.bytes());
            if (r >= 0) {
                r = sd_bus_message_append_basic(m, 's', x.c_str());
            }
        }
        value = v;
        return r < 0 ? r : sd_bus_message_close_container(m);
    }
    std::vector<uint32_t> v(in.byte() % 40);
    for (auto& x : v) {
        x = in.u32();
    }
    value = v;
    return sd_bus_message_append_array(m, 'u', v.data(), v.size() * sizeof(uint32_t));
}

const OptionSpec* find_spec(std::span<const OptionSpec> specs, std::string_view name) {
    for (const auto& spec : specs) {
        if (spec.name == name) {
            return &spec;
        }
    }
    return nullptr;
}

void check_value(const OptionSpec& spec, const bus::OptionValue& got, const Value& sent) {
    bool same = false;
    if (spec.secret) {
        same = std::holds_alternative<SecretBuffer>(got) &&
               std::get<SecretBuffer>(got).view() == std::get<std::string>(sent);
    } else if (spec.type == "s") {
        same = std::holds_alternative<std::string>(got) &&
               std::get<std::string>(got) == std::get<std::string>(sent);
    } else if (spec.type == "t") {
        same = std::holds_alternative<uint64_t>(got) &&
               std::get<uint64_t>(got) == std::get<uint64_t>(sent);
    } else if (spec.type == "u") {
        same = std::holds_alternative<uint32_t>(got) &&
               std::get<uint32_t>(got) == std::get<uint32_t>(sent);
    } else if (spec.type == "b") {
        same = std::holds_alternative<bool>(got) && std::get<bool>(got) == std::get<bool>(sent);
    } else if (spec.type == "as") {
        same = std::holds_alternative<std::vector<std::string>>(got) &&
               std::get<std::vector<std::string>>(got) == std::get<std::vector<std::string>>(sent);
    } else if (spec.type == "au") {
        same = std::holds_alternative<std::vector<uint32_t>>(got) &&
               std::get<std::vector<uint32_t>>(got) == std::get<std::vector<uint32_t>>(sent);
    }
    if (!same) {
        fuzz::fail(kHarness, "read_options() returned another value for '" +
                                 std::string(spec.name) + "' than was sent");
    }
}

}  // namespace

// The message an input describes, and what went into it.
struct Built {
    sdbus::MessagePtr message;
    std::vector<Entry> entries;
    bool is_dict = false;
    bool trailing = false;
};

// Builds the message from the input; with `mask_secrets`, every value of a
// secret option is replaced by as many '#' bytes.
std::optional<Built> build(Input in, const bus::OptionTable& table, bool mask_secrets) {
    sd_bus_message* raw = nullptr;
    if (sd_bus_message_new_method_call(message_bus(), &raw, bus_names::kBusName,
                                       bus_names::kObjectPath, bus_names::kInterface, "Fuzz") < 0) {
        fuzz::fail(kHarness, "cannot make a message");
    }
    sdbus::MessagePtr m(raw);

    // The argument: mostly a dictionary, sometimes one with a string after
    // it, another type, or nothing at all.
    const size_t shape = in.pick(8);
    Built built;
    built.is_dict = shape <= 5;
    built.trailing = shape == 5;
    auto& entries = built.entries;
    int r = 0;
    if (built.is_dict) {
        r = sd_bus_message_open_container(m.get(), 'a', "{sv}");
        const size_t count = in.pick(7);
        for (size_t i = 0; i < count && r >= 0; ++i) {
            Entry entry;
            const uint8_t name_choice = in.byte();
            entry.name = name_choice < 200 ? std::string(kNames[name_choice % std::size(kNames)])
                                           : fuzz::dbus_text(in.bytes());
            const OptionSpec* spec = find_spec(table.specs, entry.name);
            const uint8_t type_choice = in.byte();
            entry.type =
                spec && type_choice < 160
                    ? std::string(spec->type)
                    : std::string(
                          fuzz::kVariantTypes[type_choice % std::size(fuzz::kVariantTypes)]);
            r = sd_bus_message_open_container(m.get(), 'e', "sv");
            if (r >= 0) {
                r = sd_bus_message_append_basic(m.get(), 's', entry.name.c_str());
            }
            if (r >= 0) {
                r = sd_bus_message_open_container(m.get(), 'v', entry.type.c_str());
            }
            if (r >= 0) {
                r = is_known_type(entry.type) ? append_known(m.get(), entry.type, in, entry.value,
                                                             mask_secrets && spec && spec->secret)
                                              : fuzz::append_value(m.get(), entry.type, in);
            }
            for (int close = 0; close < 2 && r >= 0; ++close) {
                r = sd_bus_message_close_container(m.get());
            }
            entries.push_back(std::move(entry));
        }
        if (r >= 0) {
            r = sd_bus_message_close_container(m.get());
        }
    } else if (shape == 6) {
        // Anything but a{sv}.
        const auto type = fuzz::kVariantTypes[in.pick(std::size(fuzz::kVariantTypes))];
        r = fuzz::append_value(m.get(), type == "a{sv}" ? "a{ss}" : type, in);
    }
    if (r >= 0 && built.trailing) {
        r = sd_bus_message_append_basic(m.get(), 's', kTrailer);
    }
    if (r < 0 || sd_bus_message_seal(m.get(), 1, 0) < 0 ||
        sd_bus_message_rewind(m.get(), true) < 0) {
        return std::nullopt;  // sd-bus itself refused what was built
    }
    built.message = std::move(m);
    return built;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in(data, size);
    const bus::OptionTable& table = kTables[in.pick(std::size(kTables))];

    const Input message_input = in;
    auto built = build(message_input, table, false);
    if (!built) {
        return 0;  // nothing to read
    }
    sd_bus_message* m = built->message.get();
    const auto& entries = built->entries;
    const bool is_dict = built->is_dict;
    const bool trailing = built->trailing;

    // What the answer must be.
    bool expect_ok = is_dict;
    std::set<std::string> seen;
    for (const auto& entry : entries) {
        const OptionSpec* spec = find_spec(table.specs, entry.name);
        if (!spec || entry.type != spec->type || !seen.insert(entry.name).second ||
            (entry.type == "as" &&
             std::get<std::vector<std::string>>(entry.value).size() > limits::kMaxScopes)) {
            expect_ok = false;
            break;
        }
    }

    auto options = bus::read_options(m, table.specs, table.what);
    if (options.ok() != expect_ok) {
        fuzz::fail(kHarness, expect_ok ? "read_options() refused a good dictionary: " +
                                             options.error().message
                                       : "read_options() accepted a bad dictionary");
    }
    if (options) {
        if (options->size() != entries.size()) {
            fuzz::fail(kHarness, "read_options() returned another number of entries");
        }
        for (const auto& entry : entries) {
            const auto it = options->find(entry.name);
            if (it == options->end()) {
                fuzz::fail(kHarness, "read_options() lost the entry '" + entry.name + "'");
            }
            check_value(*find_spec(table.specs, entry.name), it->second, entry.value);
        }
        // The message must be left right after the dictionary.
        if (trailing) {
            const char* s = nullptr;
            if (sd_bus_message_read_basic(m, 's', &s) <= 0 || std::string_view(kTrailer) != s) {
                fuzz::fail(kHarness, "read_options() left the message in the wrong place");
            }
        }
        if (sd_bus_message_at_end(m, true) <= 0) {
            fuzz::fail(kHarness, "read_options() left part of the message unread");
        }
        return 0;
    }

    const auto& error = options.error();
    if (error.code != ErrorCode::InvalidArgument || error.message.empty()) {
        fuzz::fail(kHarness, "read_options() failed with something other than InvalidArgument");
    }
    // The refusal must not depend on what a secret says: the same message
    // with the secret values masked is refused in the same words.
    const bool has_secret = std::any_of(entries.begin(), entries.end(), [&](const Entry& e) {
        const OptionSpec* spec = find_spec(table.specs, e.name);
        return spec && spec->secret && std::holds_alternative<std::string>(e.value);
    });
    if (has_secret) {
        auto masked = build(message_input, table, true);
        if (!masked) {
            fuzz::fail(kHarness, "the masked message could not be built");
        }
        auto masked_options = bus::read_options(masked->message.get(), table.specs, table.what);
        if (masked_options || masked_options.error().message != error.message) {
            fuzz::fail(kHarness,
                       "read_options()'s refusal depends on a secret value: " + error.message);
        }
    }
    return 0;
}
