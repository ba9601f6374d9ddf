#include "daemon/secure_heap.hpp"

#include <openssl/crypto.h>

#include <bit>

#include "common/secret.hpp"

namespace apikeyd {
namespace {

// Smallest block the secure heap hands out; a power of two as OpenSSL
// requires, and large enough that a 32-byte key takes one block.
inline constexpr size_t kSecureHeapMinBlock = 32;

void* allocate_secure(size_t size) {
    return OPENSSL_secure_zalloc(size);
}

void free_secure(void* data, size_t size) noexcept {
    // A buffer made before the heap existed came from the ordinary heap.
    if (CRYPTO_secure_allocated(data) != 1) {
        free_plain_secret(data, size);
        return;
    }
    OPENSSL_secure_clear_free(data, size);
}

}  // namespace

bool init_secure_heap(size_t bytes) {
    // OpenSSL 3.0 aborts the process, rather than failing, on a size that is
    // not a power of two.
    if (!std::has_single_bit(bytes)) {
        return false;
    }
    // 2 means the heap works but a guard page, mlock or MADV_DONTDUMP could
    // not be applied (say, under a low RLIMIT_MEMLOCK); it still keeps secrets
    // apart from other data, which beats the ordinary heap.
    if (CRYPTO_secure_malloc_init(bytes, kSecureHeapMinBlock) == 0) {
        return false;
    }
    install_secret_allocator({allocate_secure, free_secure});
    return true;
}

}  // namespace apikeyd
