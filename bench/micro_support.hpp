#pragma once
// What the micro-benchmarks share: a store opened in a temporary directory.

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include "daemon/store.hpp"

namespace apikeyd::bench {

// A private directory under /tmp, removed with all it holds when it goes.
class ScratchDir {
  public:
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    ScratchDir() : path_(create()) {}
    ~ScratchDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }

  private:
    static std::filesystem::path create() {
        std::string pattern = "/tmp/apikeyd-bench-XXXXXX";
        if (mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
        }
        return pattern;
    }

    std::filesystem::path path_;
};

inline std::unique_ptr<Store> open_store(const std::filesystem::path& path) {
    auto store = Store::open(path);
    if (!store) {
        throw std::runtime_error(store.error().message);
    }
    return std::move(*store);
}

}  // namespace apikeyd::bench
