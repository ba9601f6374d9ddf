#include "daemon/pin_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/unique_fd.hpp"

namespace apikeyd {
namespace {

Error cannot_read(const std::filesystem::path& path, const std::string& why) {
    return make_error(ErrorCode::InvalidArgument,
                      "Cannot use the PIN file " + path.string() + ": " + why);
}

}  // namespace

Result<SecretBuffer> read_pin_file(const std::filesystem::path& path, size_t max_size) {
    const UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (fd.get() < 0) {
        return cannot_read(path, std::strerror(errno));
    }
    struct stat info {};
    if (fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode)) {
        return cannot_read(path, "not a regular file");
    }
    // Room for the PIN, a "\r\n", and one byte more to tell "too long".
    SecretBuffer pin(max_size + 3);
    size_t used = 0;
    while (used < pin.size()) {
        const ssize_t n = read(fd.get(), pin.data() + used, pin.size() - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return cannot_read(path, std::strerror(errno));
        }
        if (n == 0) {
            break;
        }
        used += static_cast<size_t>(n);
    }
    if (used > 0 && pin.data()[used - 1] == '\n') {
        --used;
        if (used > 0 && pin.data()[used - 1] == '\r') {
            --used;
        }
    }
    if (used > max_size) {
        return cannot_read(path, "longer than " + std::to_string(max_size) + " bytes");
    }
    if (used == 0) {
        return cannot_read(path, "it is empty");
    }
    pin.truncate(used);
    return pin;
}

std::optional<std::filesystem::path> pkcs11_pin_credential() {
    const char* directory = getenv("CREDENTIALS_DIRECTORY");
    if (!directory || !*directory) {
        return std::nullopt;
    }
    std::filesystem::path path = std::filesystem::path(directory) / "pkcs11-pin";
    std::error_code ignored;
    if (!std::filesystem::exists(path, ignored)) {
        return std::nullopt;
    }
    return path;
}

}  // namespace apikeyd
