#include "daemon/key_service.hpp"

#include "common/key_format.hpp"
#include "daemon/ids.hpp"
#include "daemon/keyslots/software_keyslot.hpp"
#include "daemon/log.hpp"
#include "daemon/record_seal.hpp"
#include "daemon/validation.hpp"

namespace apikeyd {
namespace {

Error invalid(std::string message) {
    return make_error(ErrorCode::InvalidArgument, std::move(message));
}

Error not_found(std::string_view id) {
    return make_error(ErrorCode::NotFound, "No key with id " + validation::quote_for_message(id) +
                                               " (or it is not yours)");
}

bool is_expired(const KeyRecord& record, uint64_t now) {
    return record.expires_usec != 0 && now >= record.expires_usec;
}

const char* state_of(const KeyRecord& record, uint64_t now) {
    if (record.revoked) {
        return "revoked";
    }
    return is_expired(record, now) ? "expired" : "active";
}

bool matches(StateFilter filter, std::string_view state) {
    switch (filter) {
        case StateFilter::Active:
            return state == "active";
        case StateFilter::Revoked:
            return state == "revoked";
        case StateFilter::Expired:
            return state == "expired";
        case StateFilter::All:
            return true;
    }
    return false;
}

}  // namespace

KeyService::KeyService(Store& store, KeyslotManager& keyslots, const Clock& clock)
    : store_(store), keyslots_(keyslots), clock_(clock), verify_failures_(clock) {}

Result<const MasterKey*> KeyService::unlocked() const {
    if (const MasterKey* key = keyslots_.master_key()) {
        return key;
    }
    return make_error(ErrorCode::Locked, "apikeyd is locked: " + keyslots_.lock_reason());
}

Result<void> KeyService::check_record_integrity(const KeyRecord& record) const {
    if (!record_seal::verify(keyslots_.master_key()->mac_key(), record)) {
        // Someone changed the row outside apikeyd. Fail closed, loudly.
        log::error("Key " + record.id +
                   " failed its integrity check: the database was changed outside apikeyd; "
                   "the key is refused");
        return make_error(ErrorCode::Internal, "Key " + record.id + " failed its integrity check");
    }
    return {};
}

Result<KeyRecord> KeyService::owned_record(const Caller& caller, std::string_view id) {
    if (auto ok = validation::check_key_id(id); !ok) {
        return ok.error();
    }
    auto found = store_.find_key(id);
    if (!found) {
        return found.error();
    }
    if (!*found || (!caller.is_root() && (*found)->owner_uid != caller.uid)) {
        return not_found(id);
    }
    if (auto ok = check_record_integrity(**found); !ok) {
        return ok.error();
    }
    return std::move(**found);
}

uint64_t KeyService::total_uses(const KeyRecord& record) const {
    const auto it = pending_usage_.find(record.id);
    return record.use_count + (it == pending_usage_.end() ? 0 : it->second.uses);
}

KeyInfo KeyService::describe(const KeyRecord& record, uint64_t now) const {
    KeyInfo info;
    info.id = record.id;
    info.name = record.name;
    info.description = record.description;
    info.kind = record.kind;
    info.scopes = record.scopes;
    info.owner_uid = record.owner_uid;
    info.state = state_of(record, now);
    info.created_usec = record.created_usec;
    info.expires_usec = record.expires_usec;
    info.max_uses = record.max_uses;
    info.revoked_usec = record.revoked_usec;
    info.revoke_reason = record.revoke_reason;
    info.use_count = total_uses(record);
    info.last_used_usec = record.last_used_usec;
    if (const auto it = pending_usage_.find(record.id); it != pending_usage_.end()) {
        info.last_used_usec = std::max(info.last_used_usec, it->second.last_used_usec);
    }
    return info;
}

void KeyService::count_use(const KeyRecord& record, uint64_t now) {
    auto& pending = pending_usage_[record.id];
    pending.uses += 1;
    pending.last_used_usec = std::max(pending.last_used_usec, now);
}

Result<uint64_t> KeyService::expiry_from(std::optional<uint64_t> expires_in_sec,
                                         uint64_t now) const {
    if (!expires_in_sec) {
        return uint64_t{0};
    }
    if (*expires_in_sec == 0 || *expires_in_sec > kMaxExpiresInSec) {
        return invalid("Invalid option 'expires_in_sec': it must be 1-" +
                       std::to_string(kMaxExpiresInSec) +
                       " seconds; leave it out for a key that never expires");
    }
    return now + *expires_in_sec * kUsecPerSec;
}

Result<void> KeyService::check_quota(const Caller& caller) {
    if (caller.is_root()) {
        return {};
    }
    auto count = store_.count_keys(caller.uid);
    if (!count) {
        return count.error();
    }
    if (*count >= limits::kMaxKeysPerUser) {
        return make_error(ErrorCode::LimitExceeded, "You own " + std::to_string(*count) +
                                                        " keys, the most a user may own; "
                                                        "revoked keys count too");
    }
    return {};
}

Result<KeyRecord> KeyService::new_record(const Caller& caller, KeyKind kind, std::string name,
                                         std::string description,
                                         std::optional<uint64_t> expires_in_sec) {
    if (auto ok = validation::check_name(name); !ok) {
        return ok.error();
    }
    if (auto ok = validation::check_description(description); !ok) {
        return ok.error();
    }
    const uint64_t now = clock_.now_usec();
    auto expires = expiry_from(expires_in_sec, now);
    if (!expires) {
        return expires.error();
    }
    if (auto ok = check_quota(caller); !ok) {
        return ok.error();
    }
    auto id = new_key_id();
    if (!id) {
        return id.error();
    }
    KeyRecord record;
    record.id = std::move(*id);
    record.owner_uid = caller.uid;
    record.kind = kind;
    record.name = std::move(name);
    record.description = std::move(description);
    record.created_usec = now;
    record.expires_usec = *expires;
    return record;
}

Result<void> KeyService::seal_and_insert(const MasterKey& master, KeyRecord& record) {
    if (auto ok = record_seal::seal(master.mac_key(), record); !ok) {
        return ok;
    }
    return store_.insert_key(record);
}

Result<CreatedKey> KeyService::create_key(const Caller& caller, const CreateKeyRequest& request) {
    auto master = unlocked();
    if (!master) {
        return master.error();
    }
    auto scopes = validation::normalize_scopes(request.scopes);
    if (!scopes) {
        return scopes.error();
    }
    const std::string_view prefix =
        request.prefix ? std::string_view(*request.prefix) : key_format::kDefaultPrefix;
    if (!key_format::is_valid_prefix(prefix)) {
        return invalid("Invalid option 'prefix' " + validation::quote_for_message(prefix) +
                       ": a prefix is 1-16 characters of a-z 0-9");
    }
    auto record = new_record(caller, KeyKind::Issued, request.name, request.description,
                             request.expires_in_sec);
    if (!record) {
        return record.error();
    }
    auto random = crypto::random_base62(key_format::kRandomLength);
    if (!random) {
        return random.error();
    }
    SecretBuffer key_text(key_format::issued_length(prefix));
    key_format::compose(prefix, random->view(), reinterpret_cast<char*>(key_text.data()));
    auto lookup = crypto::hmac_sha256((*master)->pepper().span(), key_text.span());
    if (!lookup) {
        return lookup.error();
    }
    record->scopes = std::move(*scopes);
    record->max_uses = request.max_uses;
    record->lookup.assign(lookup->begin(), lookup->end());
    if (auto ok = seal_and_insert(**master, *record); !ok) {
        return ok.error();
    }
    return CreatedKey{record->id, std::move(key_text)};
}

Result<std::string> KeyService::import_secret(const Caller& caller, ImportRequest request) {
    auto master = unlocked();
    if (!master) {
        return master.error();
    }
    if (auto ok = validation::check_secret_size(request.secret.size()); !ok) {
        return ok.error();
    }
    auto record = new_record(caller, KeyKind::Imported, std::move(request.name),
                             std::move(request.description), request.expires_in_sec);
    if (!record) {
        return record.error();
    }
    auto sealed = crypto::aes256gcm_seal((*master)->record_key().span(), request.secret.span(),
                                         record_seal::secret_associated_data(*record));
    if (!sealed) {
        return sealed.error();
    }
    record->sealed_secret = std::move(*sealed);
    if (auto ok = seal_and_insert(**master, *record); !ok) {
        return ok.error();
    }
    return record->id;
}

Result<std::vector<KeyInfo>> KeyService::list_keys(const Caller& caller, StateFilter filter) {
    if (auto master = unlocked(); !master) {
        return master.error();
    }
    auto records =
        store_.list_keys(caller.is_root() ? std::nullopt : std::optional<uint32_t>(caller.uid));
    if (!records) {
        return records.error();
    }
    const uint64_t now = clock_.now_usec();
    std::vector<KeyInfo> out;
    for (const auto& record : *records) {
        // A tampered record is left out (and logged) rather than shown with
        // fields nobody can vouch for.
        if (!check_record_integrity(record)) {
            continue;
        }
        if (matches(filter, state_of(record, now))) {
            out.push_back(describe(record, now));
        }
    }
    return out;
}

Result<KeyInfo> KeyService::get_key(const Caller& caller, std::string_view id) {
    if (auto master = unlocked(); !master) {
        return master.error();
    }
    auto record = owned_record(caller, id);
    if (!record) {
        return record.error();
    }
    return describe(*record, clock_.now_usec());
}

Result<void> KeyService::revoke_key(const Caller& caller, std::string_view id,
                                    std::string_view reason) {
    auto master = unlocked();
    if (!master) {
        return master.error();
    }
    if (auto ok = validation::check_revoke_reason(reason); !ok) {
        return ok.error();
    }
    auto record = owned_record(caller, id);
    if (!record) {
        return record.error();
    }
    if (record->revoked) {
        return make_error(ErrorCode::Revoked, "Key " + record->id + " is already revoked");
    }
    record->revoked = true;
    record->revoked_usec = clock_.now_usec();
    record->revoke_reason = std::string(reason);
    if (auto ok = record_seal::seal((*master)->mac_key(), *record); !ok) {
        return ok;
    }
    return store_.update_key(*record);
}

Verification KeyService::refuse(const Caller& caller, std::string reason, bool counts_as_guess,
                                std::optional<KeyInfo> info) {
    if (counts_as_guess) {
        verify_failures_.record_failure(caller.uid);
    }
    return Verification{false, std::move(reason), std::move(info)};
}

Result<Verification> KeyService::verify_key(const Caller& caller, std::string_view key_text,
                                            std::string_view scope) {
    // Size first: an oversized string must cost nothing.
    if (key_text.size() > key_format::kMaxKeyTextLength) {
        return invalid("Invalid key: it is longer than " +
                       std::to_string(key_format::kMaxKeyTextLength) + " characters");
    }
    if (auto ok = validation::check_requested_scope(scope); !ok) {
        return ok.error();
    }
    auto master = unlocked();
    if (!master) {
        return master.error();
    }
    if (verify_failures_.blocked(caller.uid)) {
        return Verification{false, "rate_limited", std::nullopt};
    }
    if (!key_format::parse(key_text)) {
        return refuse(caller, "malformed", true);
    }
    auto lookup = crypto::hmac_sha256((*master)->pepper().span(), crypto::bytes_of(key_text));
    if (!lookup) {
        return lookup.error();
    }
    auto found = store_.find_key_by_lookup(*lookup);
    if (!found) {
        return found.error();
    }
    // Another user's key is "unknown": verification must not reveal that a
    // key exists to anyone but its owner.
    if (!*found || (!caller.is_root() && (*found)->owner_uid != caller.uid) ||
        (*found)->kind != KeyKind::Issued) {
        return refuse(caller, "unknown", true);
    }
    const KeyRecord& record = **found;
    // The HMAC index lookup already compared the full 256-bit value; this
    // constant-time compare guards against a row whose lookup was swapped.
    if (!crypto::equal_ct(record.lookup, *lookup) || !check_record_integrity(record)) {
        return refuse(caller, "unknown", true);
    }
    const uint64_t now = clock_.now_usec();
    KeyInfo info = describe(record, now);
    if (record.revoked) {
        return refuse(caller, "revoked", false, std::move(info));
    }
    if (is_expired(record, now)) {
        return refuse(caller, "expired", false, std::move(info));
    }
    if (record.max_uses != 0 && total_uses(record) >= record.max_uses) {
        return refuse(caller, "exhausted", false, std::move(info));
    }
    if (!validation::scopes_allow(record.scopes, scope)) {
        return refuse(caller, "scope", false, std::move(info));
    }
    count_use(record, now);
    return Verification{true, "", describe(record, now)};
}

Result<SecretBuffer> KeyService::get_secret(const Caller& caller, std::string_view id) {
    auto master = unlocked();
    if (!master) {
        return master.error();
    }
    auto record = owned_record(caller, id);
    if (!record) {
        return record.error();
    }
    if (record->kind != KeyKind::Imported) {
        return invalid("Key " + record->id +
                       " is an issued key: its text is shown once at creation and never stored");
    }
    const uint64_t now = clock_.now_usec();
    if (record->revoked) {
        return make_error(ErrorCode::Revoked, "Secret " + record->id + " is revoked");
    }
    if (is_expired(*record, now)) {
        return make_error(ErrorCode::Expired, "Secret " + record->id + " has expired");
    }
    auto secret = crypto::aes256gcm_open((*master)->record_key().span(), record->sealed_secret,
                                         record_seal::secret_associated_data(*record));
    if (!secret) {
        log::error("Secret " + record->id + " could not be decrypted: its ciphertext was changed");
        return make_error(ErrorCode::Internal,
                          "Secret " + record->id + " failed its integrity check");
    }
    count_use(*record, now);
    return std::move(*secret);
}

Result<ServiceStatus> KeyService::status(const Caller& caller) {
    ServiceStatus status;
    status.locked = keyslots_.locked();
    status.lock_reason = status.locked ? keyslots_.lock_reason() : "";
    status.keyslots = keyslots_.keyslots();
    auto count =
        store_.count_keys(caller.is_root() ? std::nullopt : std::optional<uint32_t>(caller.uid));
    if (!count) {
        return count.error();
    }
    status.keys = *count;
    if (keyslots_.has_keyslot_of_type(SoftwareKeyslot::kType)) {
        status.warnings.emplace_back(
            "INSECURE: a software keyslot is enrolled; the master key lies unprotected in the "
            "state directory (development only)");
    }
    if (keyslots_.keyslots().size() == 1 &&
        !keyslots_.has_keyslot_of_type(SoftwareKeyslot::kType)) {
        status.warnings.emplace_back(
            "Only one keyslot: if it is lost (TPM cleared, firmware update, token gone) every key "
            "is lost with it; add a recovery keyslot with 'apikeyctl keyslot add recovery'");
    }
    return status;
}

Result<void> KeyService::flush_usage() {
    if (pending_usage_.empty()) {
        return {};
    }
    std::vector<Store::UsageDelta> deltas;
    deltas.reserve(pending_usage_.size());
    for (const auto& [id, pending] : pending_usage_) {
        deltas.push_back({id, pending.uses, pending.last_used_usec});
    }
    if (auto ok = store_.apply_usage(deltas); !ok) {
        return ok;
    }
    pending_usage_.clear();
    return {};
}

}  // namespace apikeyd
