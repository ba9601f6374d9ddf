#include "cli/output.hpp"

#include <langinfo.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <algorithm>
#include <chrono>
#include <clocale>
#include <cstdio>
#include <iostream>
#include <type_traits>
#include <variant>

#include "cli/terminal.hpp"
#include "common/printable_text.hpp"

namespace apikeyd::cli {
namespace {

template <typename T>
const T* field(const client::Dict& dict, const std::string& name) {
    const auto it = dict.find(name);
    return it == dict.end() ? nullptr : std::get_if<T>(&it->second);
}

// The user's LC_CTYPE, loaded the first time something depends on it (the
// display width of names, whether the terminal takes UTF-8): commands that
// print neither, such as `get`, spare their start the half millisecond that
// loading it costs.
void adopt_the_users_character_set() {
    [[maybe_unused]] static const char* const adopted = std::setlocale(LC_CTYPE, "");
}

size_t display_width(std::string_view text) {
    adopt_the_users_character_set();
    size_t width = 0;
    while (!text.empty()) {
        const auto decoded = text::decode_front(text);
        const int w = decoded.code_point ? wcwidth(static_cast<wchar_t>(*decoded.code_point)) : -1;
        width += w < 0 ? 1 : static_cast<size_t>(w);
        text.remove_prefix(decoded.length);
    }
    return width;
}

// Rounded to the nearest unit, so that a 30-day key made a moment ago
// expires "in 30 days", not "in 29 days"; a figure that rounds up to the
// next unit's limit moves on to that unit ("1 hour", not "60 minutes").
std::string span_text(uint64_t seconds) {
    constexpr uint64_t kDay = 86400;
    struct Unit {
        uint64_t seconds;
        std::string_view name;
        uint64_t limit;
    };
    constexpr Unit kUnits[] = {
        {1, "second", 60}, {60, "minute", 60},       {3600, "hour", 24},
        {kDay, "day", 45}, {30 * kDay, "month", 12},
    };
    for (const auto& unit : kUnits) {
        const uint64_t n = (seconds + unit.seconds / 2) / unit.seconds;
        if (n < unit.limit) {
            return plural(n, unit.name);
        }
    }
    return plural((seconds + 365 * kDay / 2) / (365 * kDay), "year");
}

void pad(std::ostream& out, std::string_view text, size_t width) {
    out << text;
    for (size_t w = display_width(text); w < width; ++w) {
        out << ' ';
    }
}

}  // namespace

std::string plural(uint64_t n, std::string_view unit) {
    return std::to_string(n) + " " + std::string(unit) + (n == 1 ? "" : "s");
}

std::string text_field(const client::Dict& dict, const std::string& name) {
    const auto* v = field<std::string>(dict, name);
    return v ? *v : std::string();
}

uint64_t number_field(const client::Dict& dict, const std::string& name) {
    if (const auto* v = field<uint64_t>(dict, name)) {
        return *v;
    }
    if (const auto* v = field<uint32_t>(dict, name)) {
        return *v;
    }
    if (const auto* v = field<int64_t>(dict, name)) {
        return *v < 0 ? 0 : static_cast<uint64_t>(*v);
    }
    return 0;
}

bool flag_field(const client::Dict& dict, const std::string& name) {
    const auto* v = field<bool>(dict, name);
    return v && *v;
}

std::vector<std::string> list_field(const client::Dict& dict, const std::string& name) {
    const auto* v = field<std::vector<std::string>>(dict, name);
    return v ? *v : std::vector<std::string>();
}

std::vector<client::Dict> dicts_field(const client::Dict& dict, const std::string& name) {
    const auto* v = field<std::vector<client::Dict>>(dict, name);
    return v ? *v : std::vector<client::Dict>();
}

std::string printable(std::string_view text) {
    return text::escaped(text);
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
    std::string out;
    for (const auto& part : parts) {
        if (!out.empty()) {
            out += separator;
        }
        out += part;
    }
    return out;
}

uint64_t now_usec() {
    using namespace std::chrono;
    return static_cast<uint64_t>(
        duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

std::string relative_time(uint64_t usec, uint64_t now) {
    if (usec == 0) {
        return "never";
    }
    constexpr uint64_t kUsecPerSec = 1'000'000;
    if (usec > now) {
        const uint64_t seconds = (usec - now) / kUsecPerSec;
        return seconds == 0 ? "just now" : "in " + span_text(seconds);
    }
    const uint64_t seconds = (now - usec) / kUsecPerSec;
    return seconds == 0 ? "just now" : span_text(seconds) + " ago";
}

std::string absolute_time(uint64_t usec) {
    const auto seconds = static_cast<time_t>(usec / 1'000'000);
    tm local{};
    char text[64];
    if (localtime_r(&seconds, &local) == nullptr ||
        strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S %Z", &local) == 0) {
        return "@" + std::to_string(seconds);
    }
    return text;
}

std::string full_time(uint64_t usec, uint64_t now) {
    if (usec == 0) {
        return "never";
    }
    return absolute_time(usec) + " (" + relative_time(usec, now) + ")";
}

std::string duration_text(uint64_t seconds) {
    constexpr std::pair<uint64_t, std::string_view> kUnits[] = {
        {86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
    for (const auto& [size, unit] : kUnits) {
        if (seconds % size == 0) {
            return plural(seconds / size, unit);
        }
    }
    return plural(seconds, "second");
}

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::add_row(std::vector<std::string> cells) {
    cells.resize(headers_.size());
    for (auto& cell : cells) {
        cell = printable(cell);
    }
    rows_.push_back(std::move(cells));
}

void Table::print(std::ostream& out, std::string_view indent) const {
    std::vector<size_t> widths;
    for (const auto& header : headers_) {
        widths.push_back(display_width(header));
    }
    for (const auto& row : rows_) {
        for (size_t i = 0; i < row.size(); ++i) {
            widths[i] = std::max(widths[i], display_width(row[i]));
        }
    }
    const auto print_row = [&](const std::vector<std::string>& row) {
        out << indent;
        for (size_t i = 0; i < row.size(); ++i) {
            if (i + 1 == row.size()) {
                out << row[i];
            } else {
                pad(out, row[i], widths[i]);
                out << "  ";
            }
        }
        out << '\n';
    };
    print_row(headers_);
    for (const auto& row : rows_) {
        print_row(row);
    }
}

void print_fields(std::ostream& out, const Fields& fields, std::string_view indent) {
    size_t width = 0;
    for (const auto& [label, value] : fields) {
        width = std::max(width, display_width(printable(label)) + 1);
    }
    for (const auto& [label, value] : fields) {
        out << indent;
        pad(out, printable(label) + ":", width + 2);
        out << printable(value) << '\n';
    }
}

std::string keyslot_details(const client::Dict& slot) {
    // The contract's fields in a fixed order, then any a newer daemon adds.
    static constexpr std::string_view kKnownOrder[] = {"tcti", "pcrs", "pin", "uri"};
    std::vector<std::string> names(std::begin(kKnownOrder), std::end(kKnownOrder));
    for (const auto& [name, value] : slot) {
        if (name != "id" && name != "type" && name != "created_usec" &&
            std::find(names.begin(), names.end(), name) == names.end()) {
            names.push_back(name);
        }
    }
    std::vector<std::string> details;
    for (const auto& name : names) {
        const auto it = slot.find(name);
        if (it == slot.end()) {
            continue;
        }
        const auto& value = it->second;
        if (const auto* flag = std::get_if<bool>(&value)) {
            // "pin" reads as "has a PIN"; its absence says there is none.
            if (*flag) {
                details.push_back(name);
            }
        } else if (const auto* text = std::get_if<std::string>(&value)) {
            details.push_back(name + "=" + *text);
        } else if (const auto* numbers = std::get_if<std::vector<uint32_t>>(&value)) {
            std::vector<std::string> items;
            for (const uint32_t n : *numbers) {
                items.push_back(std::to_string(n));
            }
            details.push_back(name + "=" + (items.empty() ? "none" : join(items, ",")));
        } else if (std::holds_alternative<uint64_t>(value) ||
                   std::holds_alternative<uint32_t>(value)) {
            details.push_back(name + "=" + std::to_string(number_field(slot, name)));
        }
    }
    return details.empty() ? "-" : join(details, ", ");
}

void print_keyslots(std::ostream& out, const std::vector<client::Dict>& slots,
                    std::string_view indent) {
    const uint64_t now = now_usec();
    Table table({"ID", "TYPE", "CREATED", "DETAILS"});
    for (const auto& slot : slots) {
        table.add_row({text_field(slot, "id"), text_field(slot, "type"),
                       relative_time(number_field(slot, "created_usec"), now),
                       keyslot_details(slot)});
    }
    table.print(out, indent);
}

nlohmann::json to_json(const client::Value& value) {
    return std::visit(
        [](const auto& v) -> nlohmann::json {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::vector<client::Dict>>) {
                auto array = nlohmann::json::array();
                for (const auto& d : v) {
                    array.push_back(to_json(d));
                }
                return array;
            } else {
                return v;
            }
        },
        static_cast<const client::Value::variant&>(value));
}

nlohmann::json to_json(const client::Dict& dict) {
    auto object = nlohmann::json::object();
    for (const auto& [name, value] : dict) {
        object[name] = to_json(value);
    }
    return object;
}

void print_json(const nlohmann::json& json) {
    std::cout << json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

void append_json_string(SecretText& out, std::string_view text) {
    out.append("\"");
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            const char escaped[] = {'\\', c};
            out.append({escaped, 2});
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned char>(c));
            out.append(escaped);
        } else {
            out.append({&c, 1});
        }
    }
    out.append("\"");
}

void print_key_once(const std::string& id, const std::string& key, std::string_view announcement,
                    bool json) {
    SecretText out;
    if (json) {
        out.append("{\n  \"id\": ");
        append_json_string(out, id);
        out.append(",\n  \"key\": ");
        append_json_string(out, key);
        out.append("\n}\n");
        write_all(STDOUT_FILENO, out.view());
        return;
    }
    std::cerr << announcement << std::endl;
    out.append(key);
    out.append("\n");
    write_all(STDOUT_FILENO, out.view());
    std::cerr << "Copy this key now. It will not be shown again." << std::endl;
}

bool unicode_output() {
    adopt_the_users_character_set();
    return std::string_view(nl_langinfo(CODESET)) == "UTF-8";
}

}  // namespace apikeyd::cli
