#include "daemon/secret.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <bit>
#include <new>
#include <utility>

namespace apikeyd {
namespace {

// Smallest block the secure heap hands out; a power of two as OpenSSL
// requires, and large enough that a 32-byte key takes one block.
inline constexpr size_t kSecureHeapMinBlock = 32;

}  // namespace

SecretBuffer::SecretBuffer(size_t size) {
    if (size == 0) {
        return;
    }
    // Zeroed so that a caller that fills only part of the buffer never exposes
    // what the heap held before.
    data_ = static_cast<uint8_t*>(OPENSSL_secure_zalloc(size));
    if (data_ == nullptr) {
        throw std::bad_alloc();
    }
    size_ = size;
    capacity_ = size;
}

SecretBuffer::SecretBuffer(std::span<const uint8_t> bytes) : SecretBuffer(bytes.size()) {
    std::copy(bytes.begin(), bytes.end(), data_);
}

SecretBuffer SecretBuffer::from_string(std::string_view text) {
    return SecretBuffer(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

SecretBuffer::~SecretBuffer() {
    release();
}

SecretBuffer::SecretBuffer(SecretBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

SecretBuffer& SecretBuffer::operator=(SecretBuffer&& other) noexcept {
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
}

void SecretBuffer::truncate(size_t size) {
    if (size >= size_) {
        return;
    }
    wipe(data_ + size, size_ - size);
    size_ = size;
}

void SecretBuffer::release() noexcept {
    if (data_ != nullptr) {
        // capacity_, not size_: without the secure heap OpenSSL wipes exactly
        // the length it is given.
        OPENSSL_secure_clear_free(data_, capacity_);
    }
    data_ = nullptr;
    size_ = 0;
    capacity_ = 0;
}

void wipe(void* data, size_t size) noexcept {
    if (size != 0) {
        OPENSSL_cleanse(data, size);
    }
}

bool init_secure_heap(size_t bytes) {
    // OpenSSL 3.0 aborts the process, rather than failing, on a size that is
    // not a power of two.
    if (!std::has_single_bit(bytes)) {
        return false;
    }
    // 2 means the heap works but a guard page, mlock or MADV_DONTDUMP could
    // not be applied (say, under a low RLIMIT_MEMLOCK); it still keeps secrets
    // apart from other data, which beats the ordinary heap.
    return CRYPTO_secure_malloc_init(bytes, kSecureHeapMinBlock) != 0;
}

}  // namespace apikeyd
