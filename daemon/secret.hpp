#pragma once
// SecretBuffer: bytes that must not outlive their use. Allocated from
// OpenSSL's secure heap when it is initialised (locked, guarded, excluded
// from core dumps), always wiped on release, move-only, and deliberately
// without any stream operator so it cannot end up in a log line.

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

// Wipes memory the compiler may not optimise the wipe away from.
void wipe(void* data, size_t size) noexcept;

// Enables OpenSSL's secure heap, of `bytes` (a power of two), for every
// SecretBuffer made afterwards. Returns false when the heap could not be set
// up (SecretBuffer then falls back to ordinary memory, still wiped on release).
bool init_secure_heap(size_t bytes);

}  // namespace apikeyd
