// libFuzzer harness: a damaged state directory.
//
// The input is the software keyslot's file (its first 32 bytes) and the
// database (the rest), as a disk or a careless hand could leave them. The
// harness opens them the way the daemon starts (Store::open, the keyslots,
// unlock, the key service) and then reads and writes through every part of
// the store and the service. Whatever the bytes, each step must answer with
// a value or an Error: no crash, no leak, no sanitizer report. The seeds in
// corpus/fuzz_database are real installations (small pages) made by this
// harness: APIKEYD_FUZZ_MAKE_SEEDS=DIR fuzz_database writes them to DIR.

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/commit_scheduler.hpp"
#include "daemon/key_service.hpp"
#include "daemon/keyslot_manager.hpp"
#include "daemon/keyslots/software_keyslot.hpp"
#include "daemon/store.hpp"
#include "tests/fuzz/fuzz_state.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace apikeyd;
namespace fs = std::filesystem;

constexpr const char* kHarness = "fuzz_database";
constexpr size_t kKeyFileSize = 32;

fs::path state_dir;

[[noreturn]] void fail(const std::string& what) {
    fuzz::fail(kHarness, what);
}

void write_state(std::string_view key_file, std::string_view database) {
    const auto db = state_dir / Store::kFileName;
    for (const char* suffix : {"-wal", "-shm", "-journal"}) {
        unlink((db.string() + suffix).c_str());
    }
    fuzz::write_bytes(db, std::string(database));
    fuzz::write_bytes(state_dir / SoftwareKeyslot::kFileName, std::string(key_file));
}

// An Error must say something: an empty message would reach a person as
// nothing at all.
template <class T>
void check(const Result<T>& result, const char* what) {
    if (!result && result.error().message.empty()) {
        fail(std::string(what) + " failed without a message");
    }
}

void sql(const fs::path& db_path, const char* statement) {
    sqlite3* db = nullptr;
    if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK ||
        sqlite3_exec(db, statement, nullptr, nullptr, nullptr) != SQLITE_OK) {
        fail(std::string("seed SQL failed: ") + sqlite3_errmsg(db));
    }
    sqlite3_close(db);
}

// Real installations, and a few that were changed by hand, as seeds.
void make_seeds(const fs::path& out) {
    fs::create_directories(out);
    fuzz::FuzzClock clock;
    int n = 0;
    const auto seed = [&](const char* name, const char* change) {
        const auto dir = fuzz::make_temp_root("apikeyd-fuzz-seed");
        const auto made = fuzz::make_template(dir, clock, true);
        const auto db = dir / Store::kFileName;
        if (change) {
            sql(db, change);
        }
        char number[8];
        std::snprintf(number, sizeof number, "%02d-", ++n);
        fuzz::write_bytes(out / (number + std::string(name)), made.key_file + fuzz::read_bytes(db));
    };
    seed("installation", nullptr);
    seed("widened-scopes", "UPDATE keys SET scopes='*' WHERE owner_uid=1000;");
    seed("unknown-kind", "UPDATE keys SET kind='stolen' WHERE kind='imported';");
    seed("keyslot-params",
         "UPDATE keyslots SET params='{\"kdf\":1,\"n\":\"x\",\"salt\":[]}' WHERE type='recovery';"
         "UPDATE keyslots SET params='[1,2]' WHERE type='software';");
    // A tpm2 slot as enrolment writes it (PCR 7, no PIN): the parameters
    // and a sealed blob that parses, for a TPM that is not there.
    const std::string zeros(64, '0');
    const std::string tpm2 =
        "UPDATE keyslots SET type='tpm2', params='{\"tcti\":\"device:/dev/tpm7\","
        "\"pcrs\":[7],\"pin\":false,\"pcr_bank\":\"sha256\",\"srk_name\":\"000b" +
        zeros + "\"}', sealed=x'004e0008000b000000120020" + zeros + "00100020" + zeros + "0010" +
        zeros.substr(0, 32) + "' WHERE type='recovery';";
    seed("tpm2-slot", tpm2.c_str());
    const std::string newer = "PRAGMA user_version=" + std::to_string(Store::kSchemaVersion + 1);
    seed("newer-schema", newer.c_str());
    seed("no-check-value", "DELETE FROM meta;");
}

void exercise(Store& store) {
    fuzz::FuzzClock clock;
    clock.now += 3600 * kUsecPerSec;
    const Caller root{0, 1};
    const Caller alice{fuzz::kAlice, 2};

    // The store on its own.
    (void)store.schema_version();
    auto keys = store.list_keys(std::nullopt);
    check(keys, "list_keys");
    if (keys) {
        for (const auto& record : *keys) {
            check(store.find_key(record.id), "find_key");
            if (!record.lookup.empty()) {
                check(store.find_key_by_lookup(record.lookup), "find_key_by_lookup");
            }
            check(store.list_keys(record.owner_uid), "list_keys(owner)");
        }
    }
    check(store.find_key("k_aaaaaaaaaaaa"), "find_key");
    check(store.count_keys(std::nullopt), "count_keys");
    check(store.count_keys(fuzz::kAlice), "count_keys(owner)");
    check(store.get_meta("master_key_check"), "get_meta");
    check(store.list_keyslots(), "list_keyslots");

    // The daemon's start.
    KeyslotManager keyslots(store, state_dir, clock);
    auto initialized = keyslots.initialized();
    check(initialized, "initialized");
    if (!initialized || !*initialized) {
        return;
    }
    keyslots.unlock();
    if (keyslots.locked() && keyslots.lock_reason().empty()) {
        fail("locked without a reason");
    }
    CommitScheduler commits(store);
    KeyService service(store, keyslots, clock, commits);
    check(service.status(root), "status");
    check(service.status(alice), "status");
    auto infos = service.list_keys(root, StateFilter::All);
    check(infos, "list_keys");
    check(service.list_keys(alice, StateFilter::Active), "list_keys");
    if (infos) {
        for (const auto& info : *infos) {
            check(service.get_key(root, info.id), "get_key");
            if (info.kind == KeyKind::Imported) {
                check(service.get_secret(root, info.id), "get_secret");
            }
        }
    }
    check(service.verify_key(alice, "ak_cqnLGp9NjmtNL1EihJvc7t3QMlJhc5B71op5rU", "read"),
          "verify_key");

    // And writes, which a damaged file must refuse just as calmly.
    if (infos && !infos->empty()) {
        check(service.revoke_key(root, infos->front().id, "fuzz"), "revoke_key");
    }
    CreateKeyRequest create;
    create.name = "after damage";
    create.scopes = {"read"};
    check(service.create_key(alice, create), "create_key");
    ImportRequest import;
    import.name = "after damage";
    import.secret = SecretBuffer::from_string("secret");
    check(service.import_secret(alice, std::move(import)), "import_secret");
    check(service.flush_usage(), "flush_usage");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    setenv("TSS2_LOG", "all+none", 0);
    if (const char* out = std::getenv("APIKEYD_FUZZ_MAKE_SEEDS")) {
        make_seeds(out);
        std::exit(0);
    }
    state_dir = fuzz::make_temp_root("apikeyd-fuzz-db");
    fuzz::quiet_daemon_log();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    write_state(input.substr(0, kKeyFileSize), input.substr(std::min(size, kKeyFileSize)));
    auto store = Store::open(state_dir / Store::kFileName);
    check(store, "Store::open");
    if (store) {
        exercise(**store);
    }
    return 0;
}
