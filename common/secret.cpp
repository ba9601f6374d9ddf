#include "common/secret.hpp"

#include <string.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <utility>

namespace apikeyd {
namespace {

void* allocate_plain(size_t size) {
    return std::calloc(1, size);
}

SecretAllocator allocator{allocate_plain, free_plain_secret};

}  // namespace

void install_secret_allocator(SecretAllocator installed) noexcept {
    allocator = installed;
}

void free_plain_secret(void* data, size_t size) noexcept {
    wipe(data, size);
    std::free(data);
}

SecretBuffer::SecretBuffer(size_t size) {
    if (size == 0) {
        return;
    }
    // Zeroed so that a caller that fills only part of the buffer never exposes
    // what the heap held before.
    data_ = static_cast<uint8_t*>(allocator.allocate(size));
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
        // capacity_, not size_: every byte that was handed out is wiped.
        allocator.release(data_, capacity_);
    }
    data_ = nullptr;
    size_ = 0;
    capacity_ = 0;
}

// An empty container's data() may be null, which explicit_bzero must not get.
void wipe(void* data, size_t size) noexcept {
    if (size != 0) {
        explicit_bzero(data, size);
    }
}

}  // namespace apikeyd
