#pragma once
// Reads an a{sv} argument against a table of the names and types a method
// knows. An unknown name or a wrong type is refused with InvalidArgument
// naming it: a typo must never silently drop an expiry.

#include <systemd/sd-bus.h>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/secret.hpp"
#include "daemon/result.hpp"

namespace apikeyd::bus {

struct OptionSpec {
    std::string_view name;
    std::string_view type;  // "s", "t", "u", "b", "as" or "au"
    // A secret string (a PIN, a recovery key) is read straight into a
    // SecretBuffer so that no ordinary copy of it is made.
    bool secret = false;
};

using OptionValue = std::variant<std::string, uint64_t, uint32_t, bool, std::vector<std::string>,
                                 std::vector<uint32_t>, SecretBuffer>;
using Options = std::map<std::string, OptionValue, std::less<>>;

// The options one method knows; `what` names the argument in messages
// ("option", "filter", "change", "credential").
struct OptionTable {
    std::string_view what;
    std::span<const OptionSpec> specs;
};

Result<Options> read_options(sd_bus_message* m, std::span<const OptionSpec> known,
                             std::string_view what);

// A method's a{sv} argument, read against its table: the table is part of
// the type, so a method's declaration says which options it takes.
template <const OptionTable& Table>
class OptionsArg {
  public:
    OptionsArg() = default;
    explicit OptionsArg(Options values) : values_(std::move(values)) {}

    // Moves the option `name`, when given, into `field` (a T or an
    // optional<T>); leaves `field` as it is otherwise, so that the request's
    // own default stands.
    template <class T>
    void fill(T& field, std::string_view name) {
        if (const auto it = values_.find(name); it != values_.end()) {
            field = std::move(std::get<value_type_t<T>>(it->second));
        }
    }
    template <class T>
    std::optional<T> get(std::string_view name) {
        std::optional<T> out;
        fill(out, name);
        return out;
    }

  private:
    template <class T>
    struct value_type {
        using type = T;
    };
    template <class T>
    struct value_type<std::optional<T>> {
        using type = T;
    };
    template <class T>
    using value_type_t = typename value_type<T>::type;

    Options values_;
};

}  // namespace apikeyd::bus
