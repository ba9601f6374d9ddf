#pragma once
// SecretBuffer: bytes that must not outlive their use. Always wiped on
// release, move-only, and deliberately without any stream operator so it
// cannot end up in a log line. Its memory comes from the ordinary heap unless
// a program installs another allocator: the daemon installs OpenSSL's secure
// heap (locked, guarded, excluded from core dumps; daemon/secure_heap.hpp),
// which keeps OpenSSL out of this library and out of apikeyctl.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace apikeyd {

class SecretBuffer {
  public:
    SecretBuffer() = default;
    explicit SecretBuffer(size_t size);
    SecretBuffer(std::span<const uint8_t> bytes);
    static SecretBuffer from_string(std::string_view text);
    ~SecretBuffer();

    SecretBuffer(SecretBuffer&& other) noexcept;
    SecretBuffer& operator=(SecretBuffer&& other) noexcept;
    SecretBuffer(const SecretBuffer&) = delete;
    SecretBuffer& operator=(const SecretBuffer&) = delete;

    uint8_t* data() { return data_; }
    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }

    std::span<uint8_t> span() { return {data_, size_}; }
    std::span<const uint8_t> span() const { return {data_, size_}; }
    // A view for code that needs text (key text is ASCII). The view must not
    // be copied into a std::string that outlives the call.
    std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

    // Shrinks the logical size; the tail is wiped at once.
    void truncate(size_t size);

  private:
    void release() noexcept;

    uint8_t* data_ = nullptr;
    size_t size_ = 0;
    size_t capacity_ = 0;
};

// Where every SecretBuffer made afterwards gets its memory. `allocate`
// returns `size` zeroed bytes or null; `release` wipes and frees what
// `allocate` returned, and also what the ordinary heap gave a buffer made
// before the allocator was installed (free_plain_secret does that part).
// Installed once, at start, before any other thread runs.
struct SecretAllocator {
    void* (*allocate)(size_t size);
    void (*release)(void* data, size_t size) noexcept;
};
void install_secret_allocator(SecretAllocator allocator) noexcept;

// Wipes and frees `size` bytes of the ordinary heap that SecretBuffer took.
void free_plain_secret(void* data, size_t size) noexcept;

// Wipes memory the compiler may not optimise the wipe away from.
void wipe(void* data, size_t size) noexcept;

// Wipes a container's bytes (a std::string or std::vector that held a secret).
template <typename Bytes>
void wipe(Bytes& bytes) noexcept {
    wipe(bytes.data(), bytes.size() * sizeof(typename Bytes::value_type));
}

}  // namespace apikeyd
