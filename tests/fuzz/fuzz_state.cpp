#include "tests/fuzz/fuzz_state.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>

#include "daemon/commit_scheduler.hpp"
#include "daemon/key_service.hpp"
#include "daemon/keyslot_manager.hpp"
#include "daemon/keyslots/recovery_keyslot.hpp"
#include "daemon/keyslots/software_keyslot.hpp"
#include "daemon/store.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace apikeyd::fuzz {
namespace {

[[noreturn]] void die(const std::string& what) {
    fail("fuzz state", what);
}

template <class T>
T must(Result<T> result, const char* what) {
    if (!result) {
        die(std::string(what) + ": " + result.error().message);
    }
    return std::move(*result);
}

void must(Result<void> result, const char* what) {
    if (!result) {
        die(std::string(what) + ": " + result.error().message);
    }
}

std::vector<std::filesystem::path>& roots() {
    static std::vector<std::filesystem::path> paths;
    return paths;
}

void remove_roots() {
    for (const auto& path : roots()) {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
}

}  // namespace

std::filesystem::path make_temp_root(const char* tag) {
    const char* base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string pattern = std::string(base) + "/" + tag + "-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
        die("mkdtemp " + pattern + ": " + std::strerror(errno));
    }
    if (roots().empty()) {
        std::atexit(remove_roots);
    }
    roots().push_back(pattern);
    return pattern;
}

std::string read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        die("cannot read " + path.string());
    }
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
    unlink(path.c_str());
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
        die("cannot write " + path.string() + ": " + std::strerror(errno));
    }
    close(fd);
}

StateTemplate make_template(const std::filesystem::path& dir, const Clock& clock,
                            bool small_pages) {
    const auto db_path = dir / Store::kFileName;
    if (small_pages) {
        // The page size is fixed when the first table is written.
        sqlite3* db = nullptr;
        if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK ||
            sqlite3_exec(db, "PRAGMA page_size=512; CREATE TABLE t(x); DROP TABLE t; VACUUM;",
                         nullptr, nullptr, nullptr) != SQLITE_OK) {
            die("cannot make a small-page database");
        }
        sqlite3_close(db);
    }
    StateTemplate out;
    {
        auto store = must(Store::open(db_path), "Store::open");
        KeyslotManager keyslots(*store, dir, clock);
        SoftwareKeyslot software(dir);
        must(keyslots.initialize(software), "initialize");
        // scrypt at N=2^10: the Unlock path, without the second a real
        // recovery key costs.
        RecoveryKeyslot recovery(crypto::ScryptParams{1 << 10, 8, 1});
        (void)must(keyslots.add(recovery), "add recovery");
        out.recovery_keys.emplace_back(recovery.recovery_key().view());
        for (const auto& slot : keyslots.keyslots()) {
            out.slot_ids.push_back(slot.id);
        }

        CommitScheduler commits(*store);
        KeyService service(*store, keyslots, clock, commits);
        const auto create = [&](uint32_t uid, std::vector<std::string> scopes,
                                std::optional<uint64_t> expires, uint64_t max_uses,
                                const char* prefix) {
            CreateKeyRequest request;
            request.name = "key of " + std::to_string(uid);
            request.description = "made by the fuzz harness";
            request.scopes = std::move(scopes);
            request.expires_in_sec = expires;
            request.max_uses = max_uses;
            if (prefix) {
                request.prefix = prefix;
            }
            auto created = must(service.create_key(Caller{uid, 1}, request), "create_key");
            out.key_ids.push_back(created.id);
            out.key_texts.emplace_back(created.key_text.view());
            return created.id;
        };
        create(0, {"*"}, std::nullopt, 0, nullptr);
        create(kAlice, {"models:*", "read"}, std::nullopt, 3, "sk");
        create(kAlice, {"write"}, 60, 0, nullptr);
        create(kBob, {"read"}, std::nullopt, 0, "bob0");
        const auto revoked = create(kAlice, {"read"}, std::nullopt, 0, nullptr);
        must(service.revoke_key(Caller{kAlice, 1}, revoked, "fuzz template"), "revoke_key");

        const auto import = [&](uint32_t uid, const std::string& secret) {
            ImportRequest request;
            request.name = "imported";
            request.secret = SecretBuffer::from_string(secret);
            const auto id =
                must(service.import_secret(Caller{uid, 1}, std::move(request)), "import_secret").id;
            out.key_ids.push_back(id);
            out.secrets[id] = secret;
        };
        import(kAlice, "sk-fuzz-template-secret-of-alice-5d1f");
        import(0, std::string("\0\x01\xfe\xff binary", 12));
        // One use waiting to be counted, as the daemon keeps them.
        (void)service.verify_key(Caller{kAlice, 1}, out.key_texts[1], "read");
        must(service.flush_usage(), "flush_usage");
    }
    // Closing the last connection folded the WAL into the database file.
    out.database = read_bytes(db_path);
    out.key_file = read_bytes(dir / SoftwareKeyslot::kFileName);
    return out;
}

}  // namespace apikeyd::fuzz
