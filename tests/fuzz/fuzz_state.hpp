#pragma once
// A state directory for the harnesses that run the daemon's core: a
// software-keyslot installation with a cheap recovery keyslot and keys of
// every kind, made once with the real code and kept as bytes, so that each
// fuzz input can start again from the same files.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "daemon/clock.hpp"

namespace apikeyd::fuzz {

class FuzzClock final : public Clock {
  public:
    static constexpr uint64_t kStart = 1'800'000'000ULL * kUsecPerSec;
    uint64_t now_usec() const override { return now; }
    uint64_t now = kStart;
};

inline constexpr uint32_t kAlice = 1000;
inline constexpr uint32_t kBob = 1001;

struct StateTemplate {
    std::string database;  // the bytes of apikeyd.db
    std::string key_file;  // the bytes of the software keyslot's file
    // What the harness may refer to by number.
    std::vector<std::string> key_ids;
    std::vector<std::string> key_texts;
    std::vector<std::string> slot_ids;
    std::vector<std::string> recovery_keys;
    std::map<std::string, std::string> secrets;  // imported secret by id
};

// A fresh directory under /dev/shm (else /tmp), removed at exit.
std::filesystem::path make_temp_root(const char* tag);

// Builds the installation in `dir` (which must be empty) with `clock` and
// returns its files and what it holds. `small_pages` makes the database
// with 512-byte pages: small seeds for fuzz_database.
StateTemplate make_template(const std::filesystem::path& dir, const Clock& clock, bool small_pages);

std::string read_bytes(const std::filesystem::path& path);
// Replaces `path` with `bytes`, mode 0600.
void write_bytes(const std::filesystem::path& path, const std::string& bytes);

}  // namespace apikeyd::fuzz
