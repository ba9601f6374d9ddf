#include "daemon/keyslot_admin.hpp"

#include <algorithm>

#include "daemon/keyslot_manager.hpp"
#include "daemon/keyslots/pkcs11_keyslot.hpp"
#include "daemon/keyslots/recovery_keyslot.hpp"
#include "daemon/keyslots/tpm2_keyslot.hpp"
#include "daemon/log.hpp"
#include "daemon/validation.hpp"

namespace apikeyd {
namespace {

// Whoever holds a keyslot holds every key, so managing slots is root's alone.
Result<void> require_root(const Caller& caller, std::string_view what) {
    if (!caller.is_root()) {
        return make_error(ErrorCode::AccessDenied, "Only root may " + std::string(what));
    }
    return {};
}

Result<void> check_pcrs(std::vector<uint32_t>& pcrs) {
    std::sort(pcrs.begin(), pcrs.end());
    pcrs.erase(std::unique(pcrs.begin(), pcrs.end()), pcrs.end());
    for (const uint32_t pcr : pcrs) {
        if (pcr >= Tpm2Keyslot::kPcrCount) {
            return make_error(ErrorCode::InvalidArgument,
                              "Invalid option 'pcrs': PCR " + std::to_string(pcr) +
                                  " does not exist; PCRs are 0-" +
                                  std::to_string(Tpm2Keyslot::kPcrCount - 1));
        }
    }
    return {};
}

SecretBuffer pin_of(AddKeyslotRequest& request) {
    return request.pin ? std::move(*request.pin) : SecretBuffer();
}

Result<void> check_pin_size(const std::optional<SecretBuffer>& pin, size_t limit) {
    if (pin && pin->size() > limit) {
        return make_error(ErrorCode::InvalidArgument,
                          "Invalid option 'pin': at most " + std::to_string(limit) + " bytes");
    }
    return {};
}

}  // namespace

KeyslotAdmin::KeyslotAdmin(KeyslotManager& keyslots)
    : keyslots_(keyslots), refusal_lines_(keyslots.clock(), "refusals", log::Priority::Warning) {}

Result<AddedKeyslot> KeyslotAdmin::add(const Caller& caller, AddKeyslotRequest request) {
    // An empty PIN would silently make a slot without one.
    if (request.pin && request.pin->empty()) {
        return make_error(ErrorCode::InvalidArgument,
                          "Invalid option 'pin': it is empty (a tpm2 keyslot without a PIN "
                          "leaves the option out)");
    }
    if (auto ok = require_root(caller, "add keyslots"); !ok) {
        return ok.error();
    }
    const std::string type = request.type;
    auto added = add_of_type(std::move(request));
    if (added) {
        log::notice("Added " + type + " keyslot " + added->id);
    }
    return added;
}

Result<AddedKeyslot> KeyslotAdmin::add_of_type(AddKeyslotRequest request) {
    if (request.type == Tpm2Keyslot::kType) {
        return add_tpm2(std::move(request));
    }
    if (request.type == Pkcs11Keyslot::kType) {
        return add_pkcs11(std::move(request));
    }
    if (request.type == RecoveryKeyslot::kType) {
        return add_recovery(request);
    }
    return make_error(ErrorCode::InvalidArgument, "Invalid keyslot type " +
                                                      validation::quote_for_message(request.type) +
                                                      ": use tpm2, pkcs11 or recovery");
}

Result<AddedKeyslot> KeyslotAdmin::add_tpm2(AddKeyslotRequest request) {
    if (!request.uri.empty()) {
        return make_error(ErrorCode::InvalidArgument,
                          "Invalid option 'uri' for a tpm2 keyslot: it is for pkcs11");
    }
    if (auto ok = check_pcrs(request.pcrs); !ok) {
        return ok.error();
    }
    if (auto ok = check_pin_size(request.pin, Tpm2Keyslot::kMaxPinSize); !ok) {
        return ok.error();
    }
    // Without a TCTI, the TPM that already holds a slot is the one meant.
    if (request.tcti.empty()) {
        for (const auto& slot : keyslots_.keyslots()) {
            if (slot.type == Tpm2Keyslot::kType && slot.params.contains("tcti") &&
                slot.params["tcti"].is_string()) {
                request.tcti = slot.params["tcti"].get<std::string>();
            }
        }
    }
    if (request.tcti.empty()) {
        request.tcti = Tpm2Keyslot::default_tcti();
    }
    if (request.tcti.empty()) {
        return make_error(ErrorCode::InvalidArgument,
                          "There is no TPM at /dev/tpmrm0 and no tpm2 keyslot to take a TCTI "
                          "from: give the option 'tcti'");
    }
    Tpm2Keyslot protector(
        Tpm2EnrollOptions{std::move(request.tcti), std::move(request.pcrs), pin_of(request)});
    auto id = keyslots_.add(protector);
    if (!id) {
        return id.error();
    }
    return AddedKeyslot{std::move(*id), SecretBuffer()};
}

Result<AddedKeyslot> KeyslotAdmin::add_pkcs11(AddKeyslotRequest request) {
    if (!request.tcti.empty() || !request.pcrs.empty()) {
        return make_error(ErrorCode::InvalidArgument,
                          "Invalid option for a pkcs11 keyslot: tcti and pcrs are for tpm2");
    }
    if (request.uri.empty()) {
        return make_error(ErrorCode::InvalidArgument,
                          "A pkcs11 keyslot needs the option 'uri' (RFC 7512, e.g. "
                          "pkcs11:token=...;id=...)");
    }
    // Enrolment logs in to prove the round trip on the token.
    if (!request.pin) {
        return make_error(ErrorCode::InvalidArgument,
                          "A pkcs11 keyslot needs the option 'pin': the token's user PIN");
    }
    if (auto ok = check_pin_size(request.pin, Pkcs11Keyslot::kMaxPinSize); !ok) {
        return ok.error();
    }
    Pkcs11Keyslot protector(Pkcs11EnrollOptions{std::move(request.uri), pin_of(request)},
                            keyslots_.pkcs11_modules());
    auto id = keyslots_.add(protector);
    if (!id) {
        return id.error();
    }
    return AddedKeyslot{std::move(*id), SecretBuffer()};
}

Result<AddedKeyslot> KeyslotAdmin::add_recovery(const AddKeyslotRequest& request) {
    if (!request.tcti.empty() || !request.pcrs.empty() || !request.uri.empty() || request.pin) {
        return make_error(ErrorCode::InvalidArgument,
                          "A recovery keyslot takes no options (tcti and pcrs are for tpm2, uri "
                          "for pkcs11, pin for both)");
    }
    RecoveryKeyslot protector;
    auto id = keyslots_.add(protector);
    if (!id) {
        return id.error();
    }
    SecretBuffer recovery_key(protector.recovery_key().span());
    return AddedKeyslot{std::move(*id), std::move(recovery_key)};
}

Result<void> KeyslotAdmin::remove(const Caller& caller, std::string_view id) {
    if (auto ok = require_root(caller, "remove keyslots"); !ok) {
        return ok;
    }
    if (auto ok = keyslots_.remove(id); !ok) {
        return ok;
    }
    log::notice("Removed keyslot " + std::string(id));
    return {};
}

Result<void> KeyslotAdmin::unlock(const Caller& caller, const UnlockRequest& request) {
    // Nothing a caller wrote reaches the log before the caller is known to
    // be root, and then only quoted, escaped and cut.
    if (auto ok = require_root(caller, "unlock apikeyd"); !ok) {
        refusal_lines_.write(caller.uid,
                             "Unlock refused: uid " + std::to_string(caller.uid) + " is not root");
        return ok;
    }
    if (auto ok = unlock_with(request); !ok) {
        refusal_lines_.write(caller.uid, "Unlock with keyslot type " +
                                             validation::quote_for_message(request.type) +
                                             " refused: " + ok.error().message);
        return ok;
    }
    log::notice("Unlocked with a " + request.type + " keyslot");
    if (on_unlocked_) {
        on_unlocked_();
    }
    return {};
}

Result<void> KeyslotAdmin::unlock_with(const UnlockRequest& request) {
    const std::string_view type = request.type;
    if (type != Tpm2Keyslot::kType && type != Pkcs11Keyslot::kType &&
        type != RecoveryKeyslot::kType) {
        return make_error(ErrorCode::InvalidArgument,
                          "Invalid keyslot type " + validation::quote_for_message(type) +
                              ": unlock with tpm2 or pkcs11 (a PIN) or recovery (the recovery "
                              "key)");
    }
    return keyslots_.unlock_with(type, request.credentials, request.keyslot);
}

}  // namespace apikeyd
