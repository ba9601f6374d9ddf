#pragma once
// What the micro-benchmarks share: a store opened in a temporary directory.

#include <memory>
#include <stdexcept>

#include "daemon/store.hpp"

namespace apikeyd::bench {

inline std::unique_ptr<Store> open_store(const std::filesystem::path& path) {
    auto store = Store::open(path);
    if (!store) {
        throw std::runtime_error(store.error().message);
    }
    return std::move(*store);
}

}  // namespace apikeyd::bench
