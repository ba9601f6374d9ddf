#pragma once
// Buffers for key text and secrets read or received by apikeyctl. Every byte
// that ever held a secret is zeroed before its memory is given back, also
// when the buffer grows: a plain std::string would leave copies behind in
// freed heap blocks.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "common/secret.hpp"

namespace apikeyd::cli {

// A read(2) buffer wiped however the reading ends: what is read into it may
// be a secret (a PIN, key text, a child's output before it is concealed).
template <size_t Size>
struct WipedBuffer {
    char data[Size];
    ~WipedBuffer() { wipe(data, sizeof data); }
};

// The longest PIN apikeyctl reads for a keyslot (tpm2 or pkcs11).
constexpr size_t kMaxPinInput = 4096;

// Zeroes a container the client library filled, however the scope is left.
template <typename Bytes>
class WipeOnExit {
  public:
    explicit WipeOnExit(Bytes& bytes) : bytes_(bytes) {}
    ~WipeOnExit() { wipe(bytes_); }
    WipeOnExit(const WipeOnExit&) = delete;
    WipeOnExit& operator=(const WipeOnExit&) = delete;

  private:
    Bytes& bytes_;
};

// Bytes is std::string (key text) or std::vector<uint8_t> (secrets), the
// types the D-Bus client takes.
template <typename Bytes>
class Secret {
  public:
    Secret() = default;
    ~Secret() { wipe(bytes_); }
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;

    void append(std::string_view data) {
        if (bytes_.size() + data.size() > bytes_.capacity()) {
            Bytes bigger;
            bigger.reserve(
                std::max({bytes_.capacity() * 2, bytes_.size() + data.size(), size_t{64}}));
            bigger.insert(bigger.end(), bytes_.begin(), bytes_.end());
            wipe(bytes_);
            bytes_.swap(bigger);
        }
        bytes_.insert(bytes_.end(), data.begin(), data.end());
    }

    // Empties the buffer, wiping what it held; the capacity stays for reuse.
    void clear() {
        wipe(bytes_);
        bytes_.clear();
    }

    void pop_back() {
        bytes_.back() = 0;
        bytes_.pop_back();
    }

    bool ends_with(char c) const {
        return !bytes_.empty() && bytes_.back() == static_cast<typename Bytes::value_type>(c);
    }
    bool empty() const { return bytes_.empty(); }
    size_t size() const { return bytes_.size(); }
    const Bytes& bytes() const { return bytes_; }
    std::string_view view() const {
        return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
    }

  private:
    Bytes bytes_;
};

using SecretText = Secret<std::string>;
using SecretBytes = Secret<std::vector<uint8_t>>;

// Puts `secret` into an a{sv} dictionary for the D-Bus client (a PIN, a
// recovery key) as a string built in place: a temporary would leave a copy
// behind. The entry is wiped when the returned guard goes, which must be
// before the dictionary does.
template <typename Dict>
[[nodiscard]] WipeOnExit<std::string> put_secret(Dict& dict, const std::string& name,
                                                 const SecretText& secret) {
    const auto [entry, inserted] =
        dict.emplace(std::piecewise_construct, std::forward_as_tuple(name),
                     std::forward_as_tuple(std::in_place_type<std::string>, secret.view()));
    return WipeOnExit<std::string>(std::get<std::string>(entry->second));
}

}  // namespace apikeyd::cli
