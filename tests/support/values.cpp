#include "tests/support/values.hpp"

#include <algorithm>
#include <chrono>
#include <random>

#include "common/key_format.hpp"

namespace apikeyd::test {
namespace {

std::mt19937_64& rng() {
    static std::mt19937_64 engine{std::random_device{}()};
    return engine;
}

char random_base62() {
    std::uniform_int_distribution<size_t> pick(0, key_format::kBase62Alphabet.size() - 1);
    return key_format::kBase62Alphabet[pick(rng())];
}

}  // namespace

nlohmann::json to_json(const Value& value) {
    return std::visit(
        [](const auto& v) -> nlohmann::json {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::vector<Dict>>) {
                return to_json(v);
            } else {
                return nlohmann::json(v);
            }
        },
        static_cast<const Value::variant&>(value));
}

nlohmann::json to_json(const Dict& dict) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : dict) {
        out[key] = to_json(value);
    }
    return out;
}

nlohmann::json to_json(const std::vector<Dict>& dicts) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& dict : dicts) {
        out.push_back(to_json(dict));
    }
    return out;
}

CaughtError catch_bus_error(const std::function<void()>& call) {
    try {
        call();
    } catch (const client::BusError& e) {
        return CaughtError{true, e.name(), e.what()};
    }
    return CaughtError{};
}

std::string bus_error_name(const std::function<void()>& call) {
    return catch_bus_error(call).name;
}

std::optional<Dict> find_by_id(const std::vector<Dict>& keys, const std::string& id) {
    for (const auto& key : keys) {
        const auto it = key.find("id");
        if (it != key.end()) {
            if (const auto* value = std::get_if<std::string>(&it->second); value && *value == id) {
                return key;
            }
        }
    }
    return std::nullopt;
}

std::vector<std::string> ids_of(const std::vector<Dict>& keys) {
    std::vector<std::string> ids;
    for (const auto& key : keys) {
        ids.push_back(field<std::string>(key, "id"));
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

Dict state_filter(const std::string& state) {
    return Dict{{"state", Value{state}}};
}

std::string random_part(const std::string& key) {
    const auto underscore = key.find('_');
    if (underscore == std::string::npos ||
        key.size() < underscore + 1 + key_format::kRandomLength) {
        throw std::runtime_error("not an issued key text: length " + std::to_string(key.size()));
    }
    return key.substr(underscore + 1, key_format::kRandomLength);
}

std::string unissued_key(std::string_view prefix) {
    std::string random;
    for (size_t i = 0; i < key_format::kRandomLength; ++i) {
        random.push_back(random_base62());
    }
    std::string out(key_format::issued_length(prefix), '\0');
    out.resize(key_format::compose(prefix, random, out.data()));
    return out;
}

std::string with_typo(const std::string& key) {
    std::string changed = key;
    const size_t at = key.find('_') + 1 + key_format::kRandomLength / 2;
    do {
        changed[at] = random_base62();
    } while (changed[at] == key[at]);
    return changed;
}

std::vector<uint8_t> bytes_of(std::string_view text) {
    return std::vector<uint8_t>(text.begin(), text.end());
}

std::vector<uint8_t> random_bytes(size_t n) {
    std::vector<uint8_t> out(n);
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : out) {
        b = static_cast<uint8_t>(byte(rng()));
    }
    return out;
}

uint64_t now_usec() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

}  // namespace apikeyd::test
