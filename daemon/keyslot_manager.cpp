#include "daemon/keyslot_manager.hpp"

#include <algorithm>

#include "daemon/ids.hpp"
#include "daemon/keyslots/pkcs11_keyslot.hpp"
#include "daemon/keyslots/recovery_keyslot.hpp"
#include "daemon/keyslots/software_keyslot.hpp"
#include "daemon/keyslots/tpm2_keyslot.hpp"
#include "daemon/validation.hpp"

namespace apikeyd {
namespace {
constexpr std::string_view kCheckValueMeta = "master_key_check";
}

KeyslotManager::KeyslotManager(Store& store, std::filesystem::path state_directory,
                               const Clock& clock, Pkcs11ModuleAllowlist pkcs11_modules)
    : store_(store),
      state_directory_(std::move(state_directory)),
      clock_(clock),
      pkcs11_modules_(std::move(pkcs11_modules)) {}

Result<bool> KeyslotManager::initialized() {
    auto slots = store_.list_keyslots();
    if (!slots) {
        return slots.error();
    }
    keyslots_ = std::move(*slots);
    return !keyslots_.empty();
}

std::unique_ptr<KeyslotProtector> KeyslotManager::protector_for(std::string_view type) const {
    if (type == SoftwareKeyslot::kType) {
        return std::make_unique<SoftwareKeyslot>(state_directory_);
    }
    if (type == Tpm2Keyslot::kType) {
        return std::make_unique<Tpm2Keyslot>();
    }
    if (type == RecoveryKeyslot::kType) {
        return std::make_unique<RecoveryKeyslot>();
    }
    if (type == Pkcs11Keyslot::kType) {
        return std::make_unique<Pkcs11Keyslot>(pkcs11_modules_);
    }
    return nullptr;
}

bool KeyslotManager::takes_pin(const KeyslotRecord& slot) {
    if (slot.type == Pkcs11Keyslot::kType) {
        return true;
    }
    const auto pin = slot.params.find("pin");
    return pin != slot.params.end() && pin->is_boolean() && pin->get<bool>();
}

bool KeyslotManager::has_keyslot_of_type(std::string_view type) const {
    return std::any_of(keyslots_.begin(), keyslots_.end(),
                       [&](const auto& slot) { return slot.type == type; });
}

Result<void> KeyslotManager::initialize(KeyslotProtector& protector) {
    auto master = MasterKey::generate();
    if (!master) {
        return master.error();
    }
    auto check = MasterKey::check_value(*master);
    auto id = new_keyslot_id();
    if (!check || !id) {
        return make_error(ErrorCode::Internal, "Cannot create the master key");
    }
    KeyslotRecord slot;
    slot.id = std::move(*id);
    slot.type = std::string(protector.type());
    slot.created_usec = clock_.now_usec();
    if (auto ok = protector.enroll(*master, slot); !ok) {
        return ok;
    }
    auto stored = store_.transaction([&]() -> Result<void> {
        if (auto ok = store_.insert_keyslot(slot); !ok) {
            return ok;
        }
        return store_.set_meta(kCheckValueMeta, *check);
    });
    if (!stored) {
        return stored;
    }
    keyslots_.push_back(std::move(slot));
    return accept(std::move(*master));
}

Result<void> KeyslotManager::accept(SecretBuffer master) {
    auto stored = store_.get_meta(kCheckValueMeta);
    if (!stored) {
        return stored.error();
    }
    auto check = MasterKey::check_value(master);
    if (!check) {
        return check.error();
    }
    if (!*stored || !crypto::equal_ct(*check, **stored)) {
        return make_error(ErrorCode::AccessDenied,
                          "it yielded a master key that does not match this installation's check "
                          "value");
    }
    auto derived = MasterKey::derive(master);
    if (!derived) {
        return derived.error();
    }
    master_key_.emplace(std::move(*derived));
    master_ = std::move(master);
    lock_reason_.clear();
    return {};
}

void KeyslotManager::unlock(const UnlockCredentials& startup) {
    if (keyslots_.empty()) {
        lock_reason_ = "no keyslot is enrolled";
        return;
    }
    std::string reasons;
    bool pin_refused = false;
    for (const auto& slot : keyslots_) {
        auto protector = protector_for(slot.type);
        Result<void> outcome = make_error(ErrorCode::Internal, "unknown keyslot type");
        if (protector) {
            const bool offer_pin =
                slot.type == Pkcs11Keyslot::kType && !startup.pin.empty() && !pin_refused;
            UnlockCredentials credentials;
            if (offer_pin) {
                credentials.pin = SecretBuffer(startup.pin.span());
            }
            auto master = protector->unseal(slot, credentials);
            // The token denying access with a PIN in hand means the PIN (or
            // the token's PIN state) was the problem; a second token would
            // only count another wrong try. A master key that fails the
            // check value is the record's fault, not the PIN's.
            pin_refused = pin_refused ||
                          (offer_pin && !master && master.error().code == ErrorCode::AccessDenied);
            outcome = master ? accept(std::move(*master)) : Result<void>(master.error());
        }
        if (outcome) {
            return;
        }
        reasons += (reasons.empty() ? "" : "; ") + slot.type + " keyslot " + slot.id + ": " +
                   outcome.error().message;
    }
    lock_reason_ = "no keyslot could unlock the master key (" + reasons + ")";
}

Result<void> KeyslotManager::unlock_with(std::string_view type,
                                         const UnlockCredentials& credentials,
                                         std::string_view only_slot) {
    if (!locked()) {
        return make_error(ErrorCode::InvalidArgument, "apikeyd is not locked");
    }
    auto protector = protector_for(type);
    if (!protector || !has_keyslot_of_type(type)) {
        return make_error(ErrorCode::NotFound, "No " + std::string(type) + " keyslot is enrolled");
    }
    if (!only_slot.empty()) {
        if (auto ok = validation::check_keyslot_id(only_slot); !ok) {
            return ok;
        }
        const bool known = std::any_of(keyslots_.begin(), keyslots_.end(), [&](const auto& slot) {
            return slot.id == only_slot && slot.type == type;
        });
        if (!known) {
            return make_error(
                ErrorCode::NotFound,
                "No " + std::string(type) + " keyslot with id '" + std::string(only_slot) + "'");
        }
    }
    // A PIN goes only to slots that take one, and the first refusal ends the
    // attempt: each wrong try is a dictionary-attack strike on the TPM or a
    // step of the token's PIN counter, and trying one PIN on every slot would
    // spend strikes where the PIN is right. A recovery key costs no strikes,
    // so every recovery slot is tried.
    const bool with_pin = !credentials.pin.empty();
    std::optional<Error> refused;
    for (const auto& slot : keyslots_) {
        if (slot.type != type || (with_pin && !takes_pin(slot)) ||
            (!only_slot.empty() && slot.id != only_slot)) {
            continue;
        }
        auto master = protector->unseal(slot, credentials);
        auto outcome = master ? accept(std::move(*master)) : Result<void>(master.error());
        if (outcome) {
            return {};
        }
        refused = outcome.error();
        refused->message = "Cannot unlock with " + std::string(type) + " keyslot " + slot.id +
                           ": " + refused->message;
        // A refused PIN ends the attempt (see above); an absent token or a
        // missing module does not, another slot may still take this PIN.
        if (with_pin && refused->code == ErrorCode::AccessDenied) {
            break;
        }
    }
    if (refused) {
        return *refused;
    }
    return make_error(ErrorCode::NotFound, "No " + std::string(type) + " keyslot takes " +
                                               (with_pin ? "a PIN" : "these credentials"));
}

Result<std::string> KeyslotManager::add(KeyslotProtector& protector) {
    if (locked()) {
        return make_error(ErrorCode::Locked, "apikeyd is locked: " + lock_reason_);
    }
    auto id = new_keyslot_id();
    if (!id) {
        return id.error();
    }
    KeyslotRecord slot;
    slot.id = std::move(*id);
    slot.type = std::string(protector.type());
    slot.created_usec = clock_.now_usec();
    if (auto ok = protector.enroll(master_, slot); !ok) {
        return ok.error();
    }
    if (auto ok = store_.insert_keyslot(slot); !ok) {
        return ok.error();
    }
    keyslots_.push_back(slot);
    return slot.id;
}

Result<void> KeyslotManager::remove(std::string_view id) {
    // While locked nobody can tell which slot still works; removing one then
    // could remove the only way back in.
    if (locked()) {
        return make_error(ErrorCode::Locked,
                          "apikeyd is locked; unlock it before removing "
                          "keyslots: " +
                              lock_reason_);
    }
    if (auto ok = validation::check_keyslot_id(id); !ok) {
        return ok;
    }
    const auto it = std::find_if(keyslots_.begin(), keyslots_.end(),
                                 [&](const auto& slot) { return slot.id == id; });
    if (it == keyslots_.end()) {
        return make_error(ErrorCode::NotFound, "No keyslot with id '" + std::string(id) + "'");
    }
    if (keyslots_.size() == 1) {
        return make_error(ErrorCode::InvalidArgument,
                          "Keyslot " + it->id +
                              " is the last one; add another before removing it, or the keys "
                              "could never be opened again");
    }
    if (auto ok = store_.delete_keyslot(id); !ok) {
        return ok;
    }
    const KeyslotRecord removed = *it;
    keyslots_.erase(it);
    if (auto protector = protector_for(removed.type)) {
        return protector->forget(removed);
    }
    return {};
}

}  // namespace apikeyd
