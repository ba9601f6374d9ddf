#include "daemon/key_service.hpp"

#include <ctime>

#include "common/key_format.hpp"
#include "daemon/commit_scheduler.hpp"
#include "daemon/ids.hpp"
#include "daemon/keyslot_manager.hpp"
#include "daemon/keyslots/pkcs11_keyslot.hpp"
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

// What a key holds, counted against limits::kMaxBytesPerUser: as
// Store::held_bytes counts it, scopes space-joined.
uint64_t held_bytes(const KeyRecord& record) {
    uint64_t bytes = record.name.size() + record.description.size() + record.revoke_reason.size() +
                     record.sealed_secret.size();
    for (const auto& scope : record.scopes) {
        bytes += scope.size();
    }
    return bytes + (record.scopes.empty() ? 0 : record.scopes.size() - 1);
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

// What uses a key rather than changes it.
bool is_use(std::string_view action) {
    return action == "verify" || action == "get" || action == "sign";
}

// The type-specific fields the contract names, where the record has them.
KeyslotInfo keyslot_info(const KeyslotRecord& record) {
    KeyslotInfo info;
    info.id = record.id;
    info.type = record.type;
    info.created_usec = record.created_usec;
    const auto& p = record.params;
    if (p.contains("tcti") && p["tcti"].is_string()) {
        info.tcti = p["tcti"].get<std::string>();
    }
    if (p.contains("pcrs") && p["pcrs"].is_array()) {
        info.pcrs = p["pcrs"].get<std::vector<uint32_t>>();
    }
    if (record.type == Pkcs11Keyslot::kType) {
        if (p.contains("uri") && p["uri"].is_string()) {
            info.uri = p["uri"].get<std::string>();
        }
        if (p.contains("mechanism") && p["mechanism"].is_string()) {
            info.mechanism = p["mechanism"].get<std::string>();
        }
    }
    if (KeyslotManager::takes_pin(record) || p.contains("pin")) {
        info.pin = KeyslotManager::takes_pin(record);
    }
    return info;
}

// "YYYY-MM-DD" of a day number (days since 1970-01-01, UTC).
std::string date_of(uint64_t day) {
    const time_t seconds = static_cast<time_t>(day * 86400);
    struct tm utc {};
    gmtime_r(&seconds, &utc);
    char text[16];
    strftime(text, sizeof text, "%Y-%m-%d", &utc);
    return text;
}

// OpenSSL's SHA-256 code spills its state into its own stack frames, the
// finished MAC included, and leaves it there (a gcore after Sign found two
// copies): overwrite the stack below the caller's frame once the MAC is made.
[[gnu::noinline]] void wipe_stack_below() {
    unsigned char burn[16 * 1024];
    wipe(burn, sizeof burn);
    asm volatile("" : : "r"(burn) : "memory");
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

Result<StateFilter> parse_state_filter(std::optional<std::string_view> state) {
    if (!state || *state == "active") {
        return StateFilter::Active;
    }
    if (*state == "revoked") {
        return StateFilter::Revoked;
    }
    if (*state == "expired") {
        return StateFilter::Expired;
    }
    if (*state == "all") {
        return StateFilter::All;
    }
    return invalid("Invalid filter 'state' " + validation::quote_for_message(*state) +
                   ": use active, revoked, expired or all");
}

KeyService::KeyService(Store& store, KeyslotManager& keyslots, const Clock& clock,
                       CommitScheduler& commits)
    : store_(store),
      keyslots_(keyslots),
      clock_(clock),
      commits_(commits),
      verify_failures_(clock, kFailedVerifiesPerMinute, kFailedVerifiesPerMinute),
      key_limits_(clock),
      usage_(store, clock),
      refusal_lines_(clock, "refusals", log::Priority::Warning),
      change_lines_(clock, "changes", log::Priority::Notice) {}

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
    // The owner is part of the lookup: "not yours" and "no such key" must
    // cost the same, or timing tells another user's ids from free ones.
    auto found =
        store_.find_key(id, caller.is_root() ? std::nullopt : std::optional<uint32_t>(caller.uid));
    if (!found) {
        return found.error();
    }
    if (!*found) {
        return not_found(id);
    }
    if (auto ok = check_record_integrity(**found); !ok) {
        return ok.error();
    }
    return std::move(**found);
}

uint64_t KeyService::total_uses(const KeyRecord& record) const {
    return record.use_count + usage_.pending_uses(record.id);
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
    info.last_used_usec = std::max(record.last_used_usec, usage_.pending_last_used(record.id));
    info.rate_limit_per_min = record.rate_limit_per_min;
    info.rotated_usec = record.rotated_usec;
    info.grace_until_usec = record.grace_until_usec > now ? record.grace_until_usec : 0;
    return info;
}

void KeyService::count_use(const KeyRecord& record, uint64_t now) {
    usage_.count_use(record.id, now);
}

void KeyService::audit(const Caller& caller, const std::string& id, std::string_view action,
                       std::string_view result) {
    // Only changes that worked wait: a refusal happened whatever the batch's
    // fate, and a change that may yet be undone must not be logged as made.
    if (result == "ok" && !is_use(action) && commits_.in_batch()) {
        commits_.after_durable([this, caller, id, action](const Result<void>& outcome) {
            if (outcome) {
                record_audit(caller, id, action, "ok");
            } else {
                // The per-owner key counts may include keys that were never
                // stored: count again from the store when next asked.
                holdings_.clear();
            }
        });
        return;
    }
    record_audit(caller, id, action, result);
}

void KeyService::record_audit(const Caller& caller, const std::string& id, std::string_view action,
                              std::string_view result) {
    usage_.record(caller, id, action, result, clock_.now_usec());
    // Uses that worked are counted, not logged: a busy service verifies
    // thousands of times a second. Changes and refusals are worth a line.
    if (result != "ok" || !is_use(action)) {
        const std::string line =
            "event=" + std::string(action) + " id=" + id + " uid=" + std::to_string(caller.uid) +
            " pid=" + std::to_string(caller.pid) + " result=" + std::string(result);
        // Root's changes are always logged: they are the administrator's,
        // and an auditor needs every revocation. Anyone else's are throttled
        // like refusals: a user can update a key back and forth at will.
        if (result != "ok") {
            refusal_lines_.write(caller.uid, line);
        } else if (caller.is_root()) {
            log::notice(line);
        } else {
            change_lines_.write(caller.uid, line);
        }
    }
}

Error KeyService::refused(const Caller& caller, const KeyRecord& record, std::string_view action,
                          Error error) {
    const char* result = "refused";
    switch (error.code) {
        case ErrorCode::Revoked:
            result = "revoked";
            break;
        case ErrorCode::Expired:
            result = "expired";
            break;
        case ErrorCode::InvalidArgument:
            result = "invalid";
            break;
        default:
            break;
    }
    audit(caller, record.id, action, result);
    return error;
}

Result<void> KeyService::reseal_and_update(const MasterKey& master, KeyRecord& record,
                                           uint64_t held_before) {
    if (auto ok = record_seal::seal(master.mac_key(), record); !ok) {
        return ok;
    }
    if (auto ok = commits_.begin_change(); !ok) {
        return ok;
    }
    if (auto ok = store_.update_key(record); !ok) {
        return ok;
    }
    if (const auto it = holdings_.find(record.owner_uid); it != holdings_.end()) {
        it->second.bytes =
            it->second.bytes - std::min(it->second.bytes, held_before) + held_bytes(record);
    }
    return {};
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

Result<KeyService::Holdings*> KeyService::holdings(uint32_t uid) {
    if (const auto it = holdings_.find(uid); it != holdings_.end()) {
        return &it->second;
    }
    auto count = store_.count_keys(uid);
    if (!count) {
        return count.error();
    }
    auto bytes = store_.held_bytes(uid);
    if (!bytes) {
        return bytes.error();
    }
    return &holdings_.emplace(uid, Holdings{*count, *bytes}).first->second;
}

Result<void> KeyService::check_quota(const Caller& caller) {
    if (caller.is_root()) {
        return {};
    }
    auto held = holdings(caller.uid);
    if (!held) {
        return held.error();
    }
    if ((*held)->keys >= limits::kMaxKeysPerUser) {
        return make_error(ErrorCode::LimitExceeded, "You own " + std::to_string((*held)->keys) +
                                                        " keys, the most a user may own; "
                                                        "revoked keys count too");
    }
    return {};
}

Result<void> KeyService::check_room(const KeyRecord& record, uint64_t held_before) {
    if (record.owner_uid == 0) {
        return {};
    }
    auto held = holdings(record.owner_uid);
    if (!held) {
        return held.error();
    }
    const uint64_t after =
        (*held)->bytes - std::min((*held)->bytes, held_before) + held_bytes(record);
    if (after > limits::kMaxBytesPerUser) {
        return make_error(ErrorCode::LimitExceeded,
                          "Your keys would hold " + std::to_string(after) +
                              " bytes of names, descriptions, scopes and secrets, more than the " +
                              std::to_string(limits::kMaxBytesPerUser / (1024 * 1024)) +
                              " MiB a user may keep; revoked keys count too");
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
    if (auto ok = check_room(record, 0); !ok) {
        return ok;
    }
    if (auto ok = record_seal::seal(master.mac_key(), record); !ok) {
        return ok;
    }
    if (auto ok = commits_.begin_change(); !ok) {
        return ok;
    }
    if (auto ok = store_.insert_key(record); !ok) {
        return ok;
    }
    if (const auto it = holdings_.find(record.owner_uid); it != holdings_.end()) {
        ++it->second.keys;
        it->second.bytes += held_bytes(record);
    }
    return {};
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
    record->rate_limit_per_min = request.rate_limit_per_min;
    record->prefix = std::string(prefix);
    record->lookup.assign(lookup->begin(), lookup->end());
    if (auto ok = seal_and_insert(**master, *record); !ok) {
        return ok.error();
    }
    audit(caller, record->id, "create", "ok");
    return CreatedKey{record->id, std::move(key_text), record->owner_uid};
}

Result<ChangedKey> KeyService::import_secret(const Caller& caller, ImportRequest request) {
    // Before anything else, locked or not: the bus reads no more of it.
    if (auto ok = validation::check_secret_size(request.secret.size()); !ok) {
        return ok.error();
    }
    auto master = unlocked();
    if (!master) {
        return master.error();
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
    audit(caller, record->id, "create", "ok");
    return ChangedKey{record->id, record->owner_uid};
}

Result<std::vector<KeyInfo>> KeyService::list_keys(const Caller& caller, StateFilter filter,
                                                   const KeyPage& page) {
    if (auto master = unlocked(); !master) {
        return master.error();
    }
    const uint32_t count = page.limit.value_or(kMaxKeysListed);
    if (count == 0 || count > kMaxKeysListed) {
        return invalid("Invalid filter 'limit': it must be 1-" + std::to_string(kMaxKeysListed));
    }
    std::optional<Store::KeysAfter> cursor;
    if (page.after) {
        auto last = owned_record(caller, *page.after);
        if (!last) {
            return last.error().code == ErrorCode::Internal
                       ? last.error()
                       : invalid("Invalid filter 'after' " +
                                 validation::quote_for_message(*page.after) +
                                 ": it is not the id of one of your keys");
        }
        cursor = Store::KeysAfter{last->created_usec, last->id};
    }
    const auto owner = caller.is_root() ? std::nullopt : std::optional<uint32_t>(caller.uid);
    const uint64_t now = clock_.now_usec();
    std::vector<KeyInfo> out;
    // Read a full page's worth of rows at a time, whatever `limit` says, so
    // that a small limit and a filter that matches little never cost a
    // query per key.
    for (;;) {
        auto records = store_.list_keys(owner, cursor, kMaxKeysListed);
        if (!records) {
            return records.error();
        }
        for (const auto& record : *records) {
            cursor = Store::KeysAfter{record.created_usec, record.id};
            // A tampered record is left out (and logged) rather than shown
            // with fields nobody can vouch for.
            if (check_record_integrity(record) && matches(filter, state_of(record, now))) {
                out.push_back(describe(record, now));
                if (out.size() == count) {
                    return out;
                }
            }
        }
        if (records->size() < kMaxKeysListed) {
            return out;
        }
    }
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

Result<ChangedKey> KeyService::revoke_key(const Caller& caller, std::string_view id,
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
        return refused(caller, *record, "revoke",
                       make_error(ErrorCode::Revoked, "Key " + record->id + " is already revoked"));
    }
    // A revocation is never refused for room: its reason is charged anyway.
    const uint64_t held_before = held_bytes(*record);
    record->revoked = true;
    record->revoked_usec = clock_.now_usec();
    record->revoke_reason = std::string(reason);
    if (auto ok = reseal_and_update(**master, *record, held_before); !ok) {
        return ok.error();
    }
    audit(caller, record->id, "revoke", "ok");
    return ChangedKey{record->id, record->owner_uid};
}

Verification KeyService::refuse(const Caller& caller, std::string reason, bool counts_as_guess,
                                std::optional<KeyInfo> info) {
    if (counts_as_guess) {
        verify_failures_.spend(caller.uid);
    }
    return Verification{false, std::move(reason), std::move(info)};
}

Result<std::variant<KeyService::Found, std::string>> KeyService::find_by_text(
    const Caller& caller, const MasterKey& master, std::string_view key_text) {
    using Outcome = std::variant<Found, std::string>;
    if (!key_format::parse(key_text)) {
        refuse(caller, "malformed", true);
        return Outcome(std::string("malformed"));
    }
    auto lookup = crypto::hmac_sha256(master.pepper().span(), crypto::bytes_of(key_text));
    if (!lookup) {
        return lookup.error();
    }
    bool previous = false;
    auto found = store_.find_key_by_lookup(*lookup);
    if (found && !*found) {
        found = store_.find_key_by_previous_lookup(*lookup);
        previous = true;
    }
    if (!found) {
        return found.error();
    }
    // Another user's key is "unknown": verification must not reveal that a
    // key exists to anyone but its owner.
    if (!*found || (!caller.is_root() && (*found)->owner_uid != caller.uid) ||
        (*found)->kind != KeyKind::Issued) {
        refuse(caller, "unknown", true);
        return Outcome(std::string("unknown"));
    }
    // The index lookup already compared the full 256-bit value; this
    // constant-time compare guards against a row whose lookup was swapped.
    const auto& stored = previous ? (*found)->previous_lookup : (*found)->lookup;
    if (!crypto::equal_ct(stored, *lookup) || !check_record_integrity(**found)) {
        refuse(caller, "unknown", true);
        return Outcome(std::string("unknown"));
    }
    return Outcome(Found{std::move(**found), previous});
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
    if (verify_failures_.spent(caller.uid)) {
        return Verification{false, "rate_limited", std::nullopt};
    }
    auto found = find_by_text(caller, **master, key_text);
    if (!found) {
        return found.error();
    }
    if (const auto* reason = std::get_if<std::string>(&*found)) {
        return Verification{false, *reason, std::nullopt};
    }
    // Plain references, not a structured binding: clang 14 cannot capture one.
    const KeyRecord& record = std::get<Found>(*found).record;
    const bool previous = std::get<Found>(*found).previous;
    const uint64_t now = clock_.now_usec();
    const auto refuse_known = [&](const char* reason) {
        audit(caller, record.id, "verify", reason);
        return refuse(caller, reason, false, describe(record, now));
    };
    if (record.revoked) {
        return refuse_known("revoked");
    }
    if (is_expired(record, now)) {
        return refuse_known("expired");
    }
    if (previous && now >= record.grace_until_usec) {
        return refuse_known("rotated");
    }
    if (record.max_uses != 0 && total_uses(record) >= record.max_uses) {
        return refuse_known("exhausted");
    }
    if (!validation::scopes_allow(record.scopes, scope)) {
        return refuse_known("scope");
    }
    if (record.rate_limit_per_min != 0 && !key_limits_.take(record.id, record.rate_limit_per_min)) {
        return refuse_known("rate_limited");
    }
    count_use(record, now);
    audit(caller, record.id, "verify", "ok");
    return Verification{true, "", describe(record, now)};
}

Result<SecretBuffer> KeyService::open_secret(const Caller& caller, const MasterKey& master,
                                             const KeyRecord& record, std::string_view action) {
    const uint64_t now = clock_.now_usec();
    if (record.revoked) {
        return refused(caller, record, action,
                       make_error(ErrorCode::Revoked, "Secret " + record.id + " is revoked"));
    }
    if (is_expired(record, now)) {
        return refused(caller, record, action,
                       make_error(ErrorCode::Expired, "Secret " + record.id + " has expired"));
    }
    auto secret = crypto::aes256gcm_open(master.record_key().span(), record.sealed_secret,
                                         record_seal::secret_associated_data(record));
    if (!secret) {
        log::error("Secret " + record.id + " could not be decrypted: its ciphertext was changed");
        return make_error(ErrorCode::Internal,
                          "Secret " + record.id + " failed its integrity check");
    }
    count_use(record, now);
    audit(caller, record.id, action, "ok");
    return std::move(*secret);
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
    return open_secret(caller, **master, *record, "get");
}

Result<ServiceStatus> KeyService::status(const Caller& caller) {
    ServiceStatus status;
    status.locked = keyslots_.locked();
    status.lock_reason = status.locked ? keyslots_.lock_reason() : "";
    for (const auto& record : keyslots_.keyslots()) {
        status.keyslots.push_back(keyslot_info(record));
    }
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

Result<void> KeyService::apply_changes(const KeyChanges& changes, KeyRecord& record,
                                       uint64_t now) const {
    const bool issued = record.kind == KeyKind::Issued;
    const auto issued_only = [&](const char* change) {
        return invalid("Invalid change '" + std::string(change) + "': key " + record.id +
                       " is an imported secret; only issued keys have it");
    };
    if (changes.name) {
        if (auto ok = validation::check_name(*changes.name); !ok) {
            return ok;
        }
        record.name = *changes.name;
    }
    if (changes.description) {
        if (auto ok = validation::check_description(*changes.description); !ok) {
            return ok;
        }
        record.description = *changes.description;
    }
    if (changes.scopes) {
        if (!issued) {
            return issued_only("scopes");
        }
        auto scopes = validation::normalize_scopes(*changes.scopes);
        if (!scopes) {
            return scopes.error();
        }
        record.scopes = std::move(*scopes);
    }
    if (changes.expires_in_sec && changes.never_expires) {
        return invalid("Give one of the changes 'expires_in_sec' and 'never_expires', not both");
    }
    if (changes.expires_in_sec) {
        auto expires = expiry_from(changes.expires_in_sec, now);
        if (!expires) {
            return expires.error();
        }
        record.expires_usec = *expires;
    }
    if (changes.never_expires) {
        record.expires_usec = 0;
    }
    if (changes.max_uses) {
        if (!issued) {
            return issued_only("max_uses");
        }
        record.max_uses = *changes.max_uses;
    }
    if (changes.rate_limit_per_min) {
        if (!issued) {
            return issued_only("rate_limit_per_min");
        }
        record.rate_limit_per_min = *changes.rate_limit_per_min;
    }
    return {};
}

Result<ChangedKey> KeyService::update_key(const Caller& caller, std::string_view id,
                                          const KeyChanges& changes) {
    auto master = unlocked();
    if (!master) {
        return master.error();
    }
    auto record = owned_record(caller, id);
    if (!record) {
        return record.error();
    }
    if (changes.empty()) {
        return invalid(
            "Nothing to change: give at least one of name, description, scopes, "
            "expires_in_sec, never_expires, max_uses, rate_limit_per_min");
    }
    if (record->revoked) {
        return refused(caller, *record, "update",
                       make_error(ErrorCode::Revoked, "Key " + record->id + " is revoked"));
    }
    const uint64_t held_before = held_bytes(*record);
    if (auto ok = apply_changes(changes, *record, clock_.now_usec()); !ok) {
        return refused(caller, *record, "update", ok.error());
    }
    if (auto ok = check_room(*record, held_before); !ok) {
        return refused(caller, *record, "update", ok.error());
    }
    if (auto ok = reseal_and_update(**master, *record, held_before); !ok) {
        return ok.error();
    }
    audit(caller, record->id, "update", "ok");
    return ChangedKey{record->id, record->owner_uid};
}

Result<RotatedKey> KeyService::rotate_key(const Caller& caller, std::string_view id,
                                          uint64_t grace_sec) {
    auto master = unlocked();
    if (!master) {
        return master.error();
    }
    if (grace_sec > kMaxGraceSec) {
        return invalid("Invalid grace_sec " + std::to_string(grace_sec) + ": at most " +
                       std::to_string(kMaxGraceSec) + " (90 days)");
    }
    auto record = owned_record(caller, id);
    if (!record) {
        return record.error();
    }
    const uint64_t now = clock_.now_usec();
    if (record->kind != KeyKind::Issued) {
        return refused(
            caller, *record, "rotate",
            invalid("Key " + record->id + " is an imported secret: import the new secret instead"));
    }
    if (record->revoked) {
        return refused(caller, *record, "rotate",
                       make_error(ErrorCode::Revoked, "Key " + record->id + " is revoked"));
    }
    if (is_expired(*record, now)) {
        return refused(caller, *record, "rotate",
                       make_error(ErrorCode::Expired, "Key " + record->id +
                                                          " has expired; extend it with "
                                                          "UpdateKey first"));
    }
    auto random = crypto::random_base62(key_format::kRandomLength);
    if (!random) {
        return random.error();
    }
    // The prefix stays: it is what services and scanners recognise. Keys
    // from before schema 2 did not record theirs and get the default.
    const std::string_view prefix =
        record->prefix.empty() ? key_format::kDefaultPrefix : std::string_view(record->prefix);
    SecretBuffer key_text(key_format::issued_length(prefix));
    key_format::compose(prefix, random->view(), reinterpret_cast<char*>(key_text.data()));
    auto lookup = crypto::hmac_sha256((*master)->pepper().span(), key_text.span());
    if (!lookup) {
        return lookup.error();
    }
    record->previous_lookup = std::move(record->lookup);
    record->lookup.assign(lookup->begin(), lookup->end());
    record->rotated_usec = now;
    record->grace_until_usec = now + grace_sec * kUsecPerSec;
    if (auto ok = reseal_and_update(**master, *record, held_bytes(*record)); !ok) {
        return ok.error();
    }
    audit(caller, record->id, "rotate", "ok");
    return RotatedKey{std::move(key_text), record->owner_uid};
}

Result<SecretBuffer> KeyService::sign(const Caller& caller, std::string_view id,
                                      std::string_view algorithm, std::span<const uint8_t> data) {
    auto mac = sign_unwiped(caller, id, algorithm, data);
    wipe_stack_below();
    return mac;
}

Result<SecretBuffer> KeyService::sign_unwiped(const Caller& caller, std::string_view id,
                                              std::string_view algorithm,
                                              std::span<const uint8_t> data) {
    auto master = unlocked();
    if (!master) {
        return master.error();
    }
    if (algorithm != "hmac-sha256") {
        return invalid("Invalid algorithm " + validation::quote_for_message(algorithm) +
                       ": apikeyd signs with hmac-sha256");
    }
    if (data.size() > kMaxSignedData) {
        return invalid("Invalid data: at most " + std::to_string(kMaxSignedData) + " bytes");
    }
    auto record = owned_record(caller, id);
    if (!record) {
        return record.error();
    }
    if (record->kind != KeyKind::Imported) {
        return refused(caller, *record, "sign",
                       invalid("Key " + record->id +
                               " is an issued key: only imported secrets sign (apikeyd keeps no "
                               "issued key's text)"));
    }
    auto secret = open_secret(caller, **master, *record, "sign");
    if (!secret) {
        return secret.error();
    }
    // A MAC of a request is as good as the secret for that request: written
    // straight into a buffer that wipes itself, never to a stack copy.
    SecretBuffer mac(crypto::kMacSize);
    if (auto ok = crypto::hmac_sha256_into(
            secret->span(), data, std::span<uint8_t, crypto::kMacSize>(mac.data(), mac.size()));
        !ok) {
        return ok.error();
    }
    return mac;
}

Result<Identification> KeyService::identify_key(const Caller& caller, std::string_view key_text) {
    if (key_text.size() > key_format::kMaxKeyTextLength) {
        return invalid("Invalid key: it is longer than " +
                       std::to_string(key_format::kMaxKeyTextLength) + " characters");
    }
    auto master = unlocked();
    if (!master) {
        return master.error();
    }
    Identification out;
    if (verify_failures_.spent(caller.uid)) {
        out.reason = "rate_limited";
        return out;
    }
    auto found = find_by_text(caller, **master, key_text);
    if (!found) {
        return found.error();
    }
    if (const auto* reason = std::get_if<std::string>(&*found)) {
        out.reason = *reason;
        return out;
    }
    const auto& [record, previous] = std::get<Found>(*found);
    out.known = true;
    out.text = previous ? "previous" : "current";
    out.info = describe(record, clock_.now_usec());
    return out;
}

Result<KeyRecord> KeyService::owned_record_with_usage_flushed(const Caller& caller,
                                                              std::string_view id) {
    auto record = owned_record(caller, id);
    if (!record) {
        return record.error();
    }
    // What is still batched belongs in the answer.
    if (auto ok = flush_usage(); !ok) {
        return ok.error();
    }
    return record;
}

Result<std::vector<UsageEvent>> KeyService::usage(const Caller& caller, std::string_view id,
                                                  std::optional<uint64_t> since_usec,
                                                  std::optional<uint32_t> limit) {
    if (auto master = unlocked(); !master) {
        return master.error();
    }
    const size_t count = limit.value_or(kDefaultEventsListed);
    if (count == 0 || count > kMaxEventsListed) {
        return invalid("Invalid option 'limit': it must be 1-" + std::to_string(kMaxEventsListed));
    }
    auto record = owned_record_with_usage_flushed(caller, id);
    if (!record) {
        return record.error();
    }
    auto events = store_.list_events(record->id, since_usec.value_or(0), count);
    if (!events) {
        return events.error();
    }
    std::vector<UsageEvent> out;
    out.reserve(events->size());
    for (auto& e : *events) {
        out.push_back({e.time_usec, std::move(e.action), std::move(e.result), e.caller_uid,
                       e.caller_pid, std::move(e.caller_exe), std::move(e.caller_unit)});
    }
    return out;
}

Result<std::vector<DayUsage>> KeyService::usage_by_day(const Caller& caller, std::string_view id,
                                                       std::optional<uint32_t> days) {
    if (auto master = unlocked(); !master) {
        return master.error();
    }
    const uint32_t count = days.value_or(kDefaultDaysListed);
    if (count == 0 || count > kMaxDaysListed) {
        return invalid("Invalid option 'days': it must be 1-" + std::to_string(kMaxDaysListed));
    }
    auto record = owned_record_with_usage_flushed(caller, id);
    if (!record) {
        return record.error();
    }
    const uint64_t today = clock_.now_usec() / UsageRecorder::kUsecPerDay;
    auto counts = store_.list_days(record->id, today + 1 > count ? today + 1 - count : 0);
    if (!counts) {
        return counts.error();
    }
    std::vector<DayUsage> out;
    out.reserve(counts->size());
    for (const auto& day : *counts) {
        out.push_back({day.day * UsageRecorder::kUsecPerDay, date_of(day.day), day.ok, day.refused,
                       day.unrecorded});
    }
    return out;
}

Result<void> KeyService::flush_usage() {
    // The open batch's changes first: their events join what is flushed, and
    // the recorder's pending events must not grow while it writes them.
    (void)commits_.commit_now();
    refusal_lines_.write_summaries();
    change_lines_.write_summaries();
    return usage_.flush(clock_.now_usec());
}

}  // namespace apikeyd
