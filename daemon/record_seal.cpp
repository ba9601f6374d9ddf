#include "daemon/record_seal.hpp"

#include <string_view>

namespace apikeyd::record_seal {
namespace {

// Bumped if the encoding ever changes, so old MACs cannot match new meaning.
constexpr std::string_view kDomain = "apikeyd record v1";

class Encoder {
  public:
    // Room for a typical record's encoding in one allocation: this runs on
    // every read of a record, VerifyKey and GetSecret included.
    explicit Encoder(size_t expected_size = 512) { out_.reserve(expected_size); }

    void u64(uint64_t v) {
        for (int shift = 56; shift >= 0; shift -= 8) {
            out_.push_back(static_cast<uint8_t>(v >> shift));
        }
    }
    void bytes(const uint8_t* data, size_t size) {
        u64(size);
        out_.insert(out_.end(), data, data + size);
    }
    void text(std::string_view s) { bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
    void blob(const std::vector<uint8_t>& b) { bytes(b.data(), b.size()); }
    std::vector<uint8_t> take() { return std::move(out_); }

  private:
    std::vector<uint8_t> out_;
};

}  // namespace

std::vector<uint8_t> mac_input(const KeyRecord& r) {
    Encoder e;
    e.text(kDomain);
    e.text(r.id);
    e.u64(r.owner_uid);
    e.text(kind_name(r.kind));
    e.text(r.name);
    e.text(r.description);
    e.u64(r.scopes.size());
    for (const auto& scope : r.scopes) {
        e.text(scope);
    }
    e.u64(r.created_usec);
    e.u64(r.expires_usec);
    e.u64(r.max_uses);
    e.u64(r.revoked ? 1 : 0);
    e.u64(r.revoked_usec);
    e.text(r.revoke_reason);
    e.blob(r.lookup);
    e.blob(r.sealed_secret);
    // Fields of schema 2 are appended only when one is set, so a record
    // written before they existed keeps its MAC; once set, they are bound
    // like the rest (the length-prefixed encoding keeps the two forms apart).
    if (r.rate_limit_per_min != 0 || !r.prefix.empty() || r.rotated_usec != 0 ||
        !r.previous_lookup.empty() || r.grace_until_usec != 0) {
        e.text("v2");
        e.u64(r.rate_limit_per_min);
        e.text(r.prefix);
        e.u64(r.rotated_usec);
        e.blob(r.previous_lookup);
        e.u64(r.grace_until_usec);
    }
    return e.take();
}

Result<void> seal(const SecretBuffer& mac_key, KeyRecord& record) {
    auto mac = crypto::hmac_sha256(mac_key.span(), mac_input(record));
    if (!mac) {
        return mac.error();
    }
    record.mac.assign(mac->begin(), mac->end());
    return {};
}

bool verify(const SecretBuffer& mac_key, const KeyRecord& record) {
    const auto mac = crypto::hmac_sha256(mac_key.span(), mac_input(record));
    return mac && crypto::equal_ct(*mac, record.mac);
}

std::vector<uint8_t> secret_associated_data(const KeyRecord& r) {
    Encoder e(64);
    e.text("apikeyd secret v1");
    e.text(r.id);
    e.u64(r.owner_uid);
    return e.take();
}

}  // namespace apikeyd::record_seal
