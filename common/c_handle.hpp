#pragma once
// An owning pointer to a C library's object, freed by that library's own
// function: CHandle<sd_bus_message, sd_bus_message_unref>,
// CHandle<EVP_MD_CTX, EVP_MD_CTX_free>. One template instead of a deleter
// struct per type.

#include <memory>

namespace apikeyd {

template <auto Free>
struct FreeWith {
    template <class T>
    void operator()(T* handle) const noexcept {
        Free(handle);
    }
};

template <class T, auto Free>
using CHandle = std::unique_ptr<T, FreeWith<Free>>;

}  // namespace apikeyd
