// Linked into fuzz_methods: scrypt at the cost the daemon asks for (N=2^15,
// 32 MiB, about 0.1 s) would let the fuzzer try an AddKeyslot or Unlock of a
// recovery keyslot only a few times a second. This EVP_KDF_derive() takes the
// place of OpenSSL's, lowers an scrypt N above 2^10 to 2^10 and hands the
// call on; every other derivation passes unchanged. Enrolment and unlock
// both come through here, so a recovery key still opens its slot.

#include <dlfcn.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {
constexpr uint64_t kMaxFuzzN = 1 << 10;
}

extern "C" int EVP_KDF_derive(EVP_KDF_CTX* ctx, unsigned char* key, size_t keylen,
                              const OSSL_PARAM params[]) {
    using Derive = int (*)(EVP_KDF_CTX*, unsigned char*, size_t, const OSSL_PARAM[]);
    static const auto real = reinterpret_cast<Derive>(dlsym(RTLD_NEXT, "EVP_KDF_derive"));
    if (real == nullptr) {
        return 0;
    }
    std::vector<OSSL_PARAM> copy;
    uint64_t n = 0;
    for (const OSSL_PARAM* p = params; p != nullptr && p->key != nullptr; ++p) {
        copy.push_back(*p);
        if (std::strcmp(p->key, OSSL_KDF_PARAM_SCRYPT_N) == 0 &&
            OSSL_PARAM_get_uint64(p, &n) == 1 && n > kMaxFuzzN) {
            copy.back() = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
            n = kMaxFuzzN;
        }
    }
    if (params == nullptr) {
        return real(ctx, key, keylen, params);
    }
    copy.push_back(OSSL_PARAM_construct_end());
    return real(ctx, key, keylen, copy.data());
}
