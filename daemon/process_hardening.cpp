#include "daemon/process_hardening.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "daemon/log.hpp"
#include "daemon/secure_heap.hpp"

namespace apikeyd {
namespace {
// Enough for every secret one call can hold at once (a 64 KiB imported
// secret and its copies) many times over; the loop serves one call at a time.
constexpr size_t kSecureHeapBytes = 4 * 1024 * 1024;
}  // namespace

Result<void> harden_process() {
    const rlimit no_core{0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) != 0) {
        return make_error(ErrorCode::Internal,
                          std::string("Cannot disable core dumps: ") + std::strerror(errno));
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        return make_error(
            ErrorCode::Internal,
            std::string("Cannot make the process non-dumpable: ") + std::strerror(errno));
    }
    umask(0077);
    // A write past RLIMIT_FSIZE (a size limit an administrator or a unit set)
    // raises SIGXFSZ, whose default action ends the process with a core. Ignored,
    // the write fails with EFBIG instead: SQLite rolls the change back, the
    // caller gets an error, and the daemon keeps serving what it has.
    if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR) {
        return make_error(ErrorCode::Internal,
                          std::string("Cannot ignore SIGXFSZ: ") + std::strerror(errno));
    }
    if (!init_secure_heap(kSecureHeapBytes)) {
        log::warning(
            "OpenSSL's secure heap is unavailable; secrets live in ordinary memory "
            "(still wiped after use)");
    }
    return {};
}

}  // namespace apikeyd
