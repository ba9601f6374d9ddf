#pragma once

#include <cstddef>

namespace apikeyd {

// Enables OpenSSL's secure heap, of `bytes` (a power of two), for every
// SecretBuffer made afterwards. Returns false when the heap could not be set
// up (SecretBuffer then stays on ordinary memory, still wiped on release).
bool init_secure_heap(size_t bytes);

}  // namespace apikeyd
