#include "daemon/keyslots/software_keyslot.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.hpp"
#include "daemon/crypto.hpp"

namespace apikeyd {
namespace {

Error file_error(const std::string& what, const std::filesystem::path& path) {
    return make_error(ErrorCode::Internal,
                      what + " " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

Result<void> SoftwareKeyslot::enroll(const SecretBuffer& master, KeyslotRecord& record) {
    const auto path = state_directory_ / kFileName;
    auto temp = path;
    temp += ".new";
    unlink(temp.c_str());
    UniqueFd fd(open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400));
    if (fd.get() < 0) {
        return file_error("Cannot create", temp);
    }
    if (write(fd.get(), master.data(), master.size()) != static_cast<ssize_t>(master.size()) ||
        fsync(fd.get()) != 0) {
        const auto error = file_error("Cannot write", temp);
        unlink(temp.c_str());
        return error;
    }
    if (rename(temp.c_str(), path.c_str()) != 0) {
        const auto error = file_error("Cannot rename into", path);
        unlink(temp.c_str());
        return error;
    }
    UniqueFd dir(open(state_directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() >= 0) {
        fsync(dir.get());
    }
    record.params = {{"file", std::string(kFileName)}};
    record.sealed.clear();
    return {};
}

Result<SecretBuffer> SoftwareKeyslot::unseal(const KeyslotRecord&, const UnlockCredentials&) {
    const auto path = state_directory_ / kFileName;
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.get() < 0) {
        return file_error("Cannot open the software keyslot file", path);
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) {
        return file_error("Cannot stat", path);
    }
    // A key file others can read or write, or that someone else owns, has
    // already leaked or been replaced: refuse it rather than trust it.
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
        return make_error(ErrorCode::Internal,
                          "The software keyslot file " + path.string() +
                              " must be a regular file owned by the daemon's user with mode 0400 "
                              "or 0600");
    }
    if (st.st_size != static_cast<off_t>(crypto::kKeySize)) {
        return make_error(ErrorCode::Internal,
                          "The software keyslot file " + path.string() + " has the wrong size");
    }
    SecretBuffer master(crypto::kKeySize);
    if (read(fd.get(), master.data(), master.size()) != static_cast<ssize_t>(master.size())) {
        return file_error("Cannot read", path);
    }
    return master;
}

Result<void> SoftwareKeyslot::forget(const KeyslotRecord&) {
    const auto path = state_directory_ / kFileName;
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        return file_error("Cannot remove", path);
    }
    return {};
}

}  // namespace apikeyd
