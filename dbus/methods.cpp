// The methods of org.apikeyd1.Manager, each declared once: its arguments
// (the parameter types after the caller, read in order by ManagerObject::
// handle), the core call, and its result (written by dbus/marshal.cpp). The
// vtable below gives sd-bus the names and signatures of the contract
// (dbus/org.apikeyd1.Manager.xml); the method name in errors comes from
// the message.

#include "dbus/methods.hpp"

#include <string>
#include <string_view>

#include "dbus/manager_object.hpp"
#include "dbus/method_options.hpp"

namespace apikeyd::bus {
namespace {

using namespace method_options;

// A change with no reply value (or its error), answered and announced by
// `signal` once durable.
Result<Durable<NoReply>> durable(Result<ChangedKey> changed, const char* signal) {
    if (!changed) {
        return changed.error();
    }
    return Durable<NoReply>{{}, {signal, std::move(changed->id), changed->owner_uid}};
}

Result<Durable<CreatedKey>> create_key(Core& core, const Caller& caller, std::string_view name,
                                       std::string_view description, Scopes scopes,
                                       OptionsArg<kCreate> options) {
    CreateKeyRequest request;
    request.name = name;
    request.description = description;
    request.scopes = std::move(scopes.values);
    options.fill(request.expires_in_sec, "expires_in_sec");
    options.fill(request.max_uses, "max_uses");
    options.fill(request.rate_limit_per_min, "rate_limit_per_min");
    options.fill(request.prefix, "prefix");
    auto created = core.keys.create_key(caller, request);
    if (!created) {
        return created.error();
    }
    KeySignal signal{"KeyCreated", created->id, created->owner_uid};
    return Durable<CreatedKey>{std::move(*created), std::move(signal)};
}

Result<Durable<std::string>> import_secret(Core& core, const Caller& caller, std::string_view name,
                                           std::string_view description, Bytes secret,
                                           OptionsArg<kImport> options) {
    ImportRequest request;
    request.name = name;
    request.description = description;
    request.secret = SecretBuffer(secret);
    options.fill(request.expires_in_sec, "expires_in_sec");
    auto imported = core.keys.import_secret(caller, std::move(request));
    if (!imported) {
        return imported.error();
    }
    return Durable<std::string>{imported->id, {"KeyCreated", imported->id, imported->owner_uid}};
}

Result<std::vector<KeyInfo>> list_keys(Core& core, const Caller& caller,
                                       OptionsArg<kListFilter> filter) {
    auto state = parse_state_filter(filter.get<std::string>("state"));
    if (!state) {
        return state.error();
    }
    KeyPage page;
    filter.fill(page.after, "after");
    filter.fill(page.limit, "limit");
    return core.keys.list_keys(caller, *state, page);
}

Result<KeyInfo> get_key(Core& core, const Caller& caller, std::string_view id) {
    return core.keys.get_key(caller, id);
}

Result<Durable<NoReply>> revoke_key(Core& core, const Caller& caller, std::string_view id,
                                    std::string_view reason) {
    return durable(core.keys.revoke_key(caller, id, reason), "KeyRevoked");
}

Result<Durable<NoReply>> update_key(Core& core, const Caller& caller, std::string_view id,
                                    OptionsArg<kChanges> options) {
    KeyChanges changes;
    options.fill(changes.name, "name");
    options.fill(changes.description, "description");
    options.fill(changes.scopes, "scopes");
    options.fill(changes.expires_in_sec, "expires_in_sec");
    options.fill(changes.never_expires, "never_expires");
    options.fill(changes.max_uses, "max_uses");
    options.fill(changes.rate_limit_per_min, "rate_limit_per_min");
    return durable(core.keys.update_key(caller, id, changes), "KeyChanged");
}

Result<Durable<SecretText>> rotate_key(Core& core, const Caller& caller, std::string_view id,
                                       uint64_t grace_sec) {
    auto rotated = core.keys.rotate_key(caller, id, grace_sec);
    if (!rotated) {
        return rotated.error();
    }
    return Durable<SecretText>{{std::move(rotated->key_text)},
                               {"KeyChanged", std::string(id), rotated->owner_uid}};
}

Result<Verification> verify_key(Core& core, const Caller& caller, std::string_view key,
                                std::string_view scope) {
    return core.keys.verify_key(caller, key, scope);
}

Result<SecretBuffer> get_secret(Core& core, const Caller& caller, std::string_view id) {
    return core.keys.get_secret(caller, id);
}

Result<SecretBuffer> sign(Core& core, const Caller& caller, std::string_view id,
                          std::string_view algorithm, Bytes data) {
    return core.keys.sign(caller, id, algorithm, data);
}

Result<std::vector<UsageEvent>> get_usage(Core& core, const Caller& caller, std::string_view id,
                                          OptionsArg<kUsage> options) {
    return core.keys.usage(caller, id, options.get<uint64_t>("since_usec"),
                           options.get<uint32_t>("limit"));
}

Result<std::vector<DayUsage>> get_usage_by_day(Core& core, const Caller& caller,
                                               std::string_view id,
                                               OptionsArg<kUsageByDay> options) {
    return core.keys.usage_by_day(caller, id, options.get<uint32_t>("days"));
}

Result<Identification> identify_key(Core& core, const Caller& caller, std::string_view key) {
    return core.keys.identify_key(caller, key);
}

Result<ServiceStatus> get_status(Core& core, const Caller& caller) {
    return core.keys.status(caller);
}

Result<AddedKeyslot> add_keyslot(Core& core, const Caller& caller, std::string_view type,
                                 OptionsArg<kAddKeyslot> options) {
    AddKeyslotRequest request;
    request.type = type;
    options.fill(request.tcti, "tcti");
    options.fill(request.pcrs, "pcrs");
    options.fill(request.uri, "uri");
    options.fill(request.pin, "pin");
    return core.keyslots.add(caller, std::move(request));
}

Result<NoReply> remove_keyslot(Core& core, const Caller& caller, std::string_view id) {
    if (auto ok = core.keyslots.remove(caller, id); !ok) {
        return ok.error();
    }
    return NoReply{};
}

Result<NoReply> unlock(Core& core, const Caller& caller, std::string_view type,
                       OptionsArg<kUnlockCredentials> credentials) {
    UnlockRequest request;
    request.type = type;
    credentials.fill(request.credentials.pin, "pin");
    credentials.fill(request.credentials.recovery_key, "recovery_key");
    credentials.fill(request.keyslot, "keyslot");
    if (auto ok = core.keyslots.unlock(caller, request); !ok) {
        return ok.error();
    }
    return NoReply{};
}

// Signals go to the calling connection from now on, while it stays on the
// bus, for the keys its user may see.
Result<NoReply> subscribe(Core& core, const Caller& caller, Sender sender) {
    if (auto ok = core.subscribers.subscribe(sender.name, caller.uid); !ok) {
        return ok.error();
    }
    return NoReply{};
}

Result<NoReply> unsubscribe(Core& core, const Caller&, Sender sender) {
    if (auto ok = core.subscribers.unsubscribe(sender.name); !ok) {
        return ok.error();
    }
    return NoReply{};
}

template <auto Method>
constexpr auto handler = &ManagerObject::handle<Method>;

// Methods that carry key text or a secret in either direction are
// SENSITIVE, so sd-bus wipes those messages when it frees them.
constexpr uint64_t kOpen = SD_BUS_VTABLE_UNPRIVILEGED;
constexpr uint64_t kSecret = SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE;

const sd_bus_vtable kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS(
        "CreateKey", SD_BUS_ARGS("s", name, "s", description, "as", scopes, "a{sv}", options),
        SD_BUS_RESULT("s", id, "s", key), handler<create_key>, kSecret),
    SD_BUS_METHOD_WITH_ARGS(
        "ImportSecret", SD_BUS_ARGS("s", name, "s", description, "ay", secret, "a{sv}", options),
        SD_BUS_RESULT("s", id), handler<import_secret>, kSecret),
    SD_BUS_METHOD_WITH_ARGS("ListKeys", SD_BUS_ARGS("a{sv}", filter), SD_BUS_RESULT("aa{sv}", keys),
                            handler<list_keys>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("GetKey", SD_BUS_ARGS("s", id), SD_BUS_RESULT("a{sv}", info),
                            handler<get_key>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("RevokeKey", SD_BUS_ARGS("s", id, "s", reason), SD_BUS_NO_RESULT,
                            handler<revoke_key>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("UpdateKey", SD_BUS_ARGS("s", id, "a{sv}", changes), SD_BUS_NO_RESULT,
                            handler<update_key>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("RotateKey", SD_BUS_ARGS("s", id, "t", grace_sec),
                            SD_BUS_RESULT("s", key), handler<rotate_key>, kSecret),
    SD_BUS_METHOD_WITH_ARGS("VerifyKey", SD_BUS_ARGS("s", key, "s", scope),
                            SD_BUS_RESULT("b", valid, "s", id, "a{sv}", info), handler<verify_key>,
                            kSecret),
    SD_BUS_METHOD_WITH_ARGS("GetSecret", SD_BUS_ARGS("s", id), SD_BUS_RESULT("ay", secret),
                            handler<get_secret>, kSecret),
    // Sign's data is what the caller signs, often a request body: treated as
    // sensitive like the secrets, and the MAC is as good as one.
    SD_BUS_METHOD_WITH_ARGS("Sign", SD_BUS_ARGS("s", id, "s", algorithm, "ay", data),
                            SD_BUS_RESULT("ay", mac), handler<sign>, kSecret),
    SD_BUS_METHOD_WITH_ARGS("GetUsage", SD_BUS_ARGS("s", id, "a{sv}", options),
                            SD_BUS_RESULT("aa{sv}", events), handler<get_usage>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("GetUsageByDay", SD_BUS_ARGS("s", id, "a{sv}", options),
                            SD_BUS_RESULT("aa{sv}", days), handler<get_usage_by_day>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("IdentifyKey", SD_BUS_ARGS("s", key),
                            SD_BUS_RESULT("b", known, "s", id, "a{sv}", info),
                            handler<identify_key>, kSecret),
    SD_BUS_METHOD_WITH_ARGS("GetStatus", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", status),
                            handler<get_status>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("AddKeyslot", SD_BUS_ARGS("s", type, "a{sv}", options),
                            SD_BUS_RESULT("s", slot_id, "s", recovery_key), handler<add_keyslot>,
                            kSecret),
    SD_BUS_METHOD_WITH_ARGS("RemoveKeyslot", SD_BUS_ARGS("s", slot_id), SD_BUS_NO_RESULT,
                            handler<remove_keyslot>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("Unlock", SD_BUS_ARGS("s", type, "a{sv}", credentials),
                            SD_BUS_NO_RESULT, handler<unlock>, kSecret),
    SD_BUS_METHOD_WITH_ARGS("Subscribe", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, handler<subscribe>,
                            kOpen),
    SD_BUS_METHOD_WITH_ARGS("Unsubscribe", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, handler<unsubscribe>,
                            kOpen),
    SD_BUS_SIGNAL_WITH_ARGS("KeyCreated", SD_BUS_ARGS("s", id), 0),
    SD_BUS_SIGNAL_WITH_ARGS("KeyChanged", SD_BUS_ARGS("s", id), 0),
    SD_BUS_SIGNAL_WITH_ARGS("KeyRevoked", SD_BUS_ARGS("s", id), 0),
    SD_BUS_VTABLE_END,
};

}  // namespace

const sd_bus_vtable* manager_vtable() {
    return kVtable;
}

}  // namespace apikeyd::bus
