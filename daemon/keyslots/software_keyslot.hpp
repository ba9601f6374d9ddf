#pragma once
// Development only: the master key in a root-only file in the state
// directory, protected by nothing but file permissions. The daemon accepts
// it only when told --insecure-software-keyslot, and GetStatus warns about it.

#include <filesystem>

#include "daemon/keyslots/keyslot.hpp"

namespace apikeyd {

class SoftwareKeyslot final : public KeyslotProtector {
  public:
    static constexpr std::string_view kType = "software";
    static constexpr std::string_view kFileName = "software-keyslot.key";

    explicit SoftwareKeyslot(std::filesystem::path state_directory)
        : state_directory_(std::move(state_directory)) {}

    std::string_view type() const override { return kType; }
    Result<void> enroll(const SecretBuffer& master, KeyslotRecord& record) override;
    Result<SecretBuffer> unseal(const KeyslotRecord& record,
                                const UnlockCredentials& credentials) override;
    Result<void> forget(const KeyslotRecord& record) override;

  private:
    std::filesystem::path state_directory_;
};

}  // namespace apikeyd
