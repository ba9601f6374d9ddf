#include "dbus/options.hpp"

#include "daemon/validation.hpp"

namespace apikeyd::bus {
namespace {

Error invalid(std::string message) {
    return make_error(ErrorCode::InvalidArgument, std::move(message));
}
Error malformed(std::string_view what) {
    return invalid("Malformed " + std::string(what) + "s: expected a{sv}");
}

std::string known_names(std::span<const OptionSpec> known) {
    std::string out;
    for (const auto& spec : known) {
        out += (out.empty() ? "" : ", ") + std::string(spec.name);
    }
    return out.empty() ? "none" : out;
}

// A value that does not parse is "malformed" (`what`s: expected a{sv}); one
// that parses but is too big says so, naming the option (`quoted`).
Result<OptionValue> read_value(sd_bus_message* m, const OptionSpec& spec, std::string_view what,
                               const std::string& quoted) {
    const auto fail = malformed(what);
    if (spec.type == "s") {
        const char* s = nullptr;
        if (sd_bus_message_read_basic(m, 's', &s) < 0) {
            return fail;
        }
        if (spec.secret) {
            return OptionValue(SecretBuffer::from_string(s));
        }
        return OptionValue(std::string(s));
    }
    if (spec.type == "t") {
        uint64_t v = 0;
        return sd_bus_message_read_basic(m, 't', &v) < 0 ? Result<OptionValue>(fail)
                                                         : OptionValue(v);
    }
    if (spec.type == "u") {
        uint32_t v = 0;
        return sd_bus_message_read_basic(m, 'u', &v) < 0 ? Result<OptionValue>(fail)
                                                         : OptionValue(v);
    }
    if (spec.type == "b") {
        int v = 0;
        return sd_bus_message_read_basic(m, 'b', &v) < 0 ? Result<OptionValue>(fail)
                                                         : OptionValue(v != 0);
    }
    if (spec.type == "as") {
        if (sd_bus_message_enter_container(m, 'a', "s") <= 0) {
            return fail;
        }
        std::vector<std::string> strings;
        const char* s = nullptr;
        int r = 0;
        while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0) {
            // Past the longest list any option takes, stop reading: a huge
            // array costs no more than refusing it.
            if (strings.size() == limits::kMaxScopes) {
                return invalid("The " + std::string(what) + " " + quoted +
                               " has too many entries: at most " +
                               std::to_string(limits::kMaxScopes));
            }
            strings.emplace_back(s);
        }
        if (r < 0 || sd_bus_message_exit_container(m) < 0) {
            return fail;
        }
        return OptionValue(std::move(strings));
    }
    if (spec.type == "au") {
        const void* data = nullptr;
        size_t size = 0;
        if (sd_bus_message_read_array(m, 'u', &data, &size) < 0) {
            return fail;
        }
        const auto* first = static_cast<const uint32_t*>(data);
        return OptionValue(std::vector<uint32_t>(first, first + size / sizeof(uint32_t)));
    }
    return fail;
}

}  // namespace

Result<Options> read_options(sd_bus_message* m, std::span<const OptionSpec> known,
                             std::string_view what) {
    if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0) {
        return malformed(what);
    }
    Options options;
    int r = 0;
    while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
        const char* name = nullptr;
        if (sd_bus_message_read_basic(m, 's', &name) < 0) {
            return malformed(what);
        }
        const auto quoted = validation::quote_for_message(name);
        const OptionSpec* spec = nullptr;
        for (const auto& candidate : known) {
            if (candidate.name == name) {
                spec = &candidate;
            }
        }
        if (!spec) {
            return invalid("Unknown " + std::string(what) + " " + quoted +
                           " (known: " + known_names(known) + ")");
        }
        const char* contents = nullptr;
        if (sd_bus_message_peek_type(m, nullptr, &contents) <= 0 || !contents) {
            return malformed(what);
        }
        if (contents != spec->type) {
            return invalid("The " + std::string(what) + " " + quoted + " must be of type '" +
                           std::string(spec->type) + "', not '" + contents + "'");
        }
        if (sd_bus_message_enter_container(m, 'v', contents) <= 0) {
            return malformed(what);
        }
        auto value = read_value(m, *spec, what, quoted);
        if (!value) {
            return value.error();
        }
        if (sd_bus_message_exit_container(m) < 0 || sd_bus_message_exit_container(m) < 0) {
            return malformed(what);
        }
        // Every name is known and given once, so the map stays small.
        if (!options.emplace(name, std::move(*value)).second) {
            return invalid("The " + std::string(what) + " " + quoted + " is given more than once");
        }
    }
    if (r < 0 || sd_bus_message_exit_container(m) < 0) {
        return malformed(what);
    }
    return options;
}

}  // namespace apikeyd::bus
