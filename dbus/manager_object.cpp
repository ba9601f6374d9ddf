#include "dbus/manager_object.hpp"

#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <exception>
#include <string>
#include <vector>

#include "daemon/keyslots/pkcs11_keyslot.hpp"
#include "daemon/log.hpp"
#include "daemon/validation.hpp"
#include "dbus/bus_errors.hpp"
#include "dbus/method_options.hpp"
#include "dbus/options.hpp"
#include "version.hpp"

namespace apikeyd::bus {
namespace {

constexpr uint32_t kDefaultEventsListed = 100;
constexpr uint32_t kDefaultDaysListed = 30;

int invalid_arguments(sd_bus_error* ret, const char* method) {
    return sd_bus_error_setf(ret, "org.apikeyd1.Error.InvalidArgument", "Malformed arguments to %s",
                             method);
}

// Reads `as`, stopping past `limit` entries so that a huge array costs
// nothing more than refusing it.
Result<std::vector<std::string>> read_strings(sd_bus_message* m, size_t limit, const char* what) {
    if (sd_bus_message_enter_container(m, 'a', "s") <= 0) {
        return make_error(ErrorCode::InvalidArgument, std::string("Malformed ") + what);
    }
    std::vector<std::string> out;
    const char* s = nullptr;
    int r = 0;
    while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0) {
        if (out.size() == limit) {
            return make_error(ErrorCode::InvalidArgument, std::string("Too many ") + what +
                                                              ": at most " + std::to_string(limit) +
                                                              " allowed");
        }
        out.emplace_back(s);
    }
    if (r < 0 || sd_bus_message_exit_container(m) < 0) {
        return make_error(ErrorCode::InvalidArgument, std::string("Malformed ") + what);
    }
    return out;
}

// Writes an a{sv} dictionary entry by entry; the first failure sticks.
class DictWriter {
  public:
    explicit DictWriter(sd_bus_message* m) : m_(m) {
        r_ = sd_bus_message_open_container(m_, 'a', "{sv}");
    }

    DictWriter& str(const char* key, const std::string& value) {
        return basic(key, 's', "s", value.c_str());
    }
    DictWriter& u64(const char* key, uint64_t value) { return basic(key, 't', "t", &value); }
    DictWriter& u32(const char* key, uint32_t value) { return basic(key, 'u', "u", &value); }
    DictWriter& boolean(const char* key, bool value) {
        const int b = value ? 1 : 0;
        return basic(key, 'b', "b", &b);
    }
    DictWriter& strv(const char* key, const std::vector<std::string>& values) {
        return put(key, [&] {
            int r = sd_bus_message_open_container(m_, 'e', "sv");
            if (r >= 0)
                r = sd_bus_message_append_basic(m_, 's', key);
            if (r >= 0)
                r = sd_bus_message_open_container(m_, 'v', "as");
            if (r >= 0)
                r = sd_bus_message_open_container(m_, 'a', "s");
            for (const auto& v : values) {
                if (r >= 0)
                    r = sd_bus_message_append_basic(m_, 's', v.c_str());
            }
            for (int i = 0; i < 3 && r >= 0; ++i) {
                r = sd_bus_message_close_container(m_);
            }
            return r;
        });
    }
    DictWriter& u32v(const char* key, const std::vector<uint32_t>& values) {
        return put(key, [&] {
            int r = sd_bus_message_open_container(m_, 'e', "sv");
            if (r >= 0)
                r = sd_bus_message_append_basic(m_, 's', key);
            if (r >= 0)
                r = sd_bus_message_open_container(m_, 'v', "au");
            if (r >= 0)
                r = sd_bus_message_append_array(m_, 'u', values.data(),
                                                values.size() * sizeof(uint32_t));
            for (int i = 0; i < 2 && r >= 0; ++i) {
                r = sd_bus_message_close_container(m_);
            }
            return r;
        });
    }
    // An aa{sv} entry: `write(DictWriter&, item)` fills each inner dictionary.
    template <class Items, class Write>
    DictWriter& dicts(const char* key, const Items& items, Write&& write) {
        return put(key, [&] {
            int r = sd_bus_message_open_container(m_, 'e', "sv");
            if (r >= 0)
                r = sd_bus_message_append_basic(m_, 's', key);
            if (r >= 0)
                r = sd_bus_message_open_container(m_, 'v', "aa{sv}");
            if (r >= 0)
                r = sd_bus_message_open_container(m_, 'a', "a{sv}");
            for (const auto& item : items) {
                if (r >= 0) {
                    DictWriter inner(m_);
                    write(inner, item);
                    r = inner.close();
                }
            }
            for (int i = 0; i < 3 && r >= 0; ++i) {
                r = sd_bus_message_close_container(m_);
            }
            return r;
        });
    }
    int close() {
        if (r_ >= 0) {
            r_ = sd_bus_message_close_container(m_);
        }
        return r_;
    }

  private:
    // One {sv} entry of a basic type, container by container: the info
    // dictionary of every VerifyKey reply has 17 of them, and
    // sd_bus_message_append would parse a signature string for each.
    // `value` points at the value (for strings, is the string).
    DictWriter& basic(const char* key, char type, const char* signature, const void* value) {
        return put(key, [&] {
            int r = sd_bus_message_open_container(m_, 'e', "sv");
            if (r >= 0)
                r = sd_bus_message_append_basic(m_, 's', key);
            if (r >= 0)
                r = sd_bus_message_open_container(m_, 'v', signature);
            if (r >= 0)
                r = sd_bus_message_append_basic(m_, type, value);
            for (int i = 0; i < 2 && r >= 0; ++i) {
                r = sd_bus_message_close_container(m_);
            }
            return r;
        });
    }

    template <class F>
    DictWriter& put(const char*, F&& append) {
        if (r_ >= 0) {
            r_ = append();
        }
        return *this;
    }

    sd_bus_message* m_;
    int r_ = 0;
};

void write_info(DictWriter& w, const KeyInfo& info) {
    w.str("id", info.id)
        .str("name", info.name)
        .str("description", info.description)
        .str("kind", kind_name(info.kind))
        .strv("scopes", info.scopes)
        .u32("owner_uid", info.owner_uid)
        .str("state", info.state)
        .u64("created_usec", info.created_usec)
        .u64("expires_usec", info.expires_usec)
        .u64("last_used_usec", info.last_used_usec)
        .u64("use_count", info.use_count)
        .u64("max_uses", info.max_uses)
        .u64("revoked_usec", info.revoked_usec)
        .str("revoke_reason", info.revoke_reason)
        .u32("rate_limit_per_min", static_cast<uint32_t>(info.rate_limit_per_min))
        .u64("rotated_usec", info.rotated_usec)
        .u64("grace_until_usec", info.grace_until_usec);
}

int append_info(sd_bus_message* m, const KeyInfo& info) {
    DictWriter w(m);
    write_info(w, info);
    return w.close();
}

Result<StateFilter> parse_state_filter(const Options& filter) {
    const auto it = filter.find("state");
    if (it == filter.end()) {
        return StateFilter::Active;
    }
    const auto& state = std::get<std::string>(it->second);
    if (state == "active")
        return StateFilter::Active;
    if (state == "revoked")
        return StateFilter::Revoked;
    if (state == "expired")
        return StateFilter::Expired;
    if (state == "all")
        return StateFilter::All;
    return make_error(ErrorCode::InvalidArgument, "Invalid filter 'state' " +
                                                      validation::quote_for_message(state) +
                                                      ": use active, revoked, expired or all");
}

int send_reply(sd_bus_message* reply, int r) {
    return r < 0 ? r : sd_bus_send(nullptr, reply, nullptr);
}

template <class T>
std::optional<T> optional_value(const Options& options, std::string_view name) {
    const auto it = options.find(name);
    return it == options.end() ? std::nullopt : std::optional<T>(std::get<T>(it->second));
}

std::optional<uint64_t> optional_u64(const Options& options, std::string_view name) {
    return optional_value<uint64_t>(options, name);
}

KeyChanges changes_from(const Options& options) {
    KeyChanges changes;
    changes.name = optional_value<std::string>(options, "name");
    changes.description = optional_value<std::string>(options, "description");
    changes.scopes = optional_value<std::vector<std::string>>(options, "scopes");
    changes.expires_in_sec = optional_u64(options, "expires_in_sec");
    changes.never_expires = optional_value<bool>(options, "never_expires").value_or(false);
    changes.max_uses = optional_u64(options, "max_uses");
    changes.rate_limit_per_min = optional_value<uint32_t>(options, "rate_limit_per_min");
    return changes;
}

void write_event(DictWriter& w, const Store::Event& event) {
    w.u64("time_usec", event.time_usec)
        .str("action", event.action)
        .str("result", event.result)
        .u32("caller_uid", event.caller_uid)
        .u32("caller_pid", event.caller_pid);
    if (!event.caller_exe.empty()) {
        w.str("caller_exe", event.caller_exe);
    }
    if (!event.caller_unit.empty()) {
        w.str("caller_unit", event.caller_unit);
    }
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

void write_day(DictWriter& w, const Store::DayCount& day) {
    w.u64("day_usec", day.day * UsageRecorder::kUsecPerDay)
        .str("date", date_of(day.day))
        .u64("ok", day.ok)
        .u64("refused", day.refused);
}

// An aa{sv} reply of `items`, each written by `write`.
template <class Items, class Write>
int reply_dicts(sd_bus_message* m, const Items& items, Write&& write) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = sd_bus_message_open_container(reply.get(), 'a', "a{sv}");
    for (const auto& item : items) {
        if (r >= 0) {
            DictWriter w(reply.get());
            write(w, item);
            r = w.close();
        }
    }
    if (r >= 0)
        r = sd_bus_message_close_container(reply.get());
    return send_reply(reply.get(), r);
}

SecretBuffer take_secret(Options& options, std::string_view name) {
    const auto it = options.find(name);
    return it == options.end() ? SecretBuffer() : std::move(std::get<SecretBuffer>(it->second));
}

// Runs a handler with every exception turned into a logged Internal error:
// nothing may unwind through sd-bus's C frames.
template <int (ManagerObject::*Handler)(sd_bus_message*, sd_bus_error*)>
int dispatch(sd_bus_message* m, void* userdata, sd_bus_error* ret) {
    try {
        return (static_cast<ManagerObject*>(userdata)->*Handler)(m, ret);
    } catch (const std::exception& e) {
        return reply_error(ret, make_error(ErrorCode::Internal, e.what()),
                           sd_bus_message_get_member(m));
    }
}

// Methods that carry key text or a secret in either direction are
// SENSITIVE, so sd-bus wipes those messages when it frees them.
constexpr uint64_t kOpen = SD_BUS_VTABLE_UNPRIVILEGED;
constexpr uint64_t kSecret = SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE;

const sd_bus_vtable kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS(
        "CreateKey", SD_BUS_ARGS("s", name, "s", description, "as", scopes, "a{sv}", options),
        SD_BUS_RESULT("s", id, "s", key), dispatch<&ManagerObject::create_key>, kSecret),
    SD_BUS_METHOD_WITH_ARGS(
        "ImportSecret", SD_BUS_ARGS("s", name, "s", description, "ay", secret, "a{sv}", options),
        SD_BUS_RESULT("s", id), dispatch<&ManagerObject::import_secret>, kSecret),
    SD_BUS_METHOD_WITH_ARGS("ListKeys", SD_BUS_ARGS("a{sv}", filter), SD_BUS_RESULT("aa{sv}", keys),
                            dispatch<&ManagerObject::list_keys>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("GetKey", SD_BUS_ARGS("s", id), SD_BUS_RESULT("a{sv}", info),
                            dispatch<&ManagerObject::get_key>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("RevokeKey", SD_BUS_ARGS("s", id, "s", reason), SD_BUS_NO_RESULT,
                            dispatch<&ManagerObject::revoke_key>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("UpdateKey", SD_BUS_ARGS("s", id, "a{sv}", changes), SD_BUS_NO_RESULT,
                            dispatch<&ManagerObject::update_key>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("RotateKey", SD_BUS_ARGS("s", id, "t", grace_sec),
                            SD_BUS_RESULT("s", key), dispatch<&ManagerObject::rotate_key>, kSecret),
    SD_BUS_METHOD_WITH_ARGS("VerifyKey", SD_BUS_ARGS("s", key, "s", scope),
                            SD_BUS_RESULT("b", valid, "s", id, "a{sv}", info),
                            dispatch<&ManagerObject::verify_key>, kSecret),
    SD_BUS_METHOD_WITH_ARGS("GetSecret", SD_BUS_ARGS("s", id), SD_BUS_RESULT("ay", secret),
                            dispatch<&ManagerObject::get_secret>, kSecret),
    // Sign's data is what the caller signs, often a request body: treated as
    // sensitive like the secrets, and the MAC is as good as one.
    SD_BUS_METHOD_WITH_ARGS("Sign", SD_BUS_ARGS("s", id, "s", algorithm, "ay", data),
                            SD_BUS_RESULT("ay", mac), dispatch<&ManagerObject::sign>, kSecret),
    SD_BUS_METHOD_WITH_ARGS("GetUsage", SD_BUS_ARGS("s", id, "a{sv}", options),
                            SD_BUS_RESULT("aa{sv}", events), dispatch<&ManagerObject::get_usage>,
                            kOpen),
    SD_BUS_METHOD_WITH_ARGS("GetUsageByDay", SD_BUS_ARGS("s", id, "a{sv}", options),
                            SD_BUS_RESULT("aa{sv}", days),
                            dispatch<&ManagerObject::get_usage_by_day>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("IdentifyKey", SD_BUS_ARGS("s", key),
                            SD_BUS_RESULT("b", known, "s", id, "a{sv}", info),
                            dispatch<&ManagerObject::identify_key>, kSecret),
    SD_BUS_METHOD_WITH_ARGS("GetStatus", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", status),
                            dispatch<&ManagerObject::get_status>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("AddKeyslot", SD_BUS_ARGS("s", type, "a{sv}", options),
                            SD_BUS_RESULT("s", slot_id, "s", recovery_key),
                            dispatch<&ManagerObject::add_keyslot>, kSecret),
    SD_BUS_METHOD_WITH_ARGS("RemoveKeyslot", SD_BUS_ARGS("s", slot_id), SD_BUS_NO_RESULT,
                            dispatch<&ManagerObject::remove_keyslot>, kOpen),
    SD_BUS_METHOD_WITH_ARGS("Unlock", SD_BUS_ARGS("s", type, "a{sv}", credentials),
                            SD_BUS_NO_RESULT, dispatch<&ManagerObject::unlock>, kSecret),
    SD_BUS_SIGNAL_WITH_ARGS("KeyCreated", SD_BUS_ARGS("s", id), 0),
    SD_BUS_SIGNAL_WITH_ARGS("KeyChanged", SD_BUS_ARGS("s", id), 0),
    SD_BUS_SIGNAL_WITH_ARGS("KeyRevoked", SD_BUS_ARGS("s", id), 0),
    SD_BUS_VTABLE_END,
};

}  // namespace

Result<std::unique_ptr<ManagerObject>> ManagerObject::create(sd_bus* bus, KeyService& service,
                                                             KeyslotAdmin& keyslots) {
    std::unique_ptr<ManagerObject> object(new ManagerObject(service, keyslots));
    auto callers = CallerCache::create(bus);
    if (!callers) {
        return callers.error();
    }
    object->callers_ = std::move(*callers);
    auto commits = GroupCommit::create(bus, service);
    if (!commits) {
        return commits.error();
    }
    object->commits_ = std::move(*commits);
    sd_bus_slot* slot = nullptr;
    const int r =
        sd_bus_add_object_vtable(bus, &slot, kObjectPath, kInterface, kVtable, object.get());
    if (r < 0) {
        return make_error(ErrorCode::Internal,
                          std::string("Cannot register the Manager object: ") + std::strerror(-r));
    }
    object->vtable_slot_.reset(slot);
    return object;
}

int ManagerObject::answer_after_commit(sd_bus_message* m, sdbus::MessagePtr reply, int r,
                                       const char* signal, std::string id) {
    if (r < 0) {
        return r;
    }
    commits_->answer_after_commit(m, std::move(reply), signal, std::move(id));
    // Handled (sd-bus would answer 0 with "Unknown method"); the reply
    // follows the commit.
    return 1;
}

int ManagerObject::create_key(sd_bus_message* m, sd_bus_error* ret) {
    const char* name = nullptr;
    const char* description = nullptr;
    if (sd_bus_message_read(m, "ss", &name, &description) < 0) {
        return invalid_arguments(ret, "CreateKey");
    }
    auto scopes = read_strings(m, limits::kMaxScopes, "scopes");
    if (!scopes) {
        return reply_error(ret, scopes.error(), "CreateKey");
    }
    auto options = read_options(m, method_options::kCreate, "option");
    if (!options) {
        return reply_error(ret, options.error(), "CreateKey");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "CreateKey");
    }
    CreateKeyRequest request;
    request.name = name;
    request.description = description;
    request.scopes = std::move(*scopes);
    request.expires_in_sec = optional_u64(*options, "expires_in_sec");
    request.max_uses = optional_u64(*options, "max_uses").value_or(0);
    request.rate_limit_per_min =
        optional_value<uint32_t>(*options, "rate_limit_per_min").value_or(0);
    if (const auto it = options->find("prefix"); it != options->end()) {
        request.prefix = std::get<std::string>(it->second);
    }
    if (auto ok = commits_->begin(); !ok) {
        return reply_error(ret, ok.error(), "CreateKey");
    }
    auto created = service_.create_key(*caller, request);
    if (!created) {
        return reply_error(ret, created.error(), "CreateKey");
    }

    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = sd_bus_message_sensitive(reply.get());
    if (r >= 0)
        r = sd_bus_message_append_basic(reply.get(), 's', created->id.c_str());
    // Written straight into the (sensitive) message: no NUL-terminated copy
    // of the key text is ever made.
    char* space = nullptr;
    if (r >= 0)
        r = sd_bus_message_append_string_space(reply.get(), created->key_text.size(), &space);
    if (r >= 0)
        std::memcpy(space, created->key_text.data(), created->key_text.size());
    return answer_after_commit(m, std::move(reply), r, "KeyCreated", std::move(created->id));
}

int ManagerObject::import_secret(sd_bus_message* m, sd_bus_error* ret) {
    const char* name = nullptr;
    const char* description = nullptr;
    const void* secret = nullptr;
    size_t secret_size = 0;
    if (sd_bus_message_read(m, "ss", &name, &description) < 0 ||
        sd_bus_message_read_array(m, 'y', &secret, &secret_size) < 0) {
        return invalid_arguments(ret, "ImportSecret");
    }
    auto options = read_options(m, method_options::kImport, "option");
    if (!options) {
        return reply_error(ret, options.error(), "ImportSecret");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "ImportSecret");
    }
    ImportRequest request;
    request.name = name;
    request.description = description;
    if (auto size_ok = validation::check_secret_size(secret_size); !size_ok) {
        return reply_error(ret, size_ok.error(), "ImportSecret");
    }
    request.secret = SecretBuffer({static_cast<const uint8_t*>(secret), secret_size});
    request.expires_in_sec = optional_u64(*options, "expires_in_sec");
    if (auto ok = commits_->begin(); !ok) {
        return reply_error(ret, ok.error(), "ImportSecret");
    }
    auto id = service_.import_secret(*caller, std::move(request));
    if (!id) {
        return reply_error(ret, id.error(), "ImportSecret");
    }
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = sd_bus_message_append_basic(reply.get(), 's', id->c_str());
    return answer_after_commit(m, std::move(reply), r, "KeyCreated", std::move(*id));
}

int ManagerObject::list_keys(sd_bus_message* m, sd_bus_error* ret) {
    auto filter = read_options(m, method_options::kListFilter, "filter");
    if (!filter) {
        return reply_error(ret, filter.error(), "ListKeys");
    }
    auto state = parse_state_filter(*filter);
    if (!state) {
        return reply_error(ret, state.error(), "ListKeys");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "ListKeys");
    }
    auto keys = service_.list_keys(*caller, *state);
    if (!keys) {
        return reply_error(ret, keys.error(), "ListKeys");
    }
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = sd_bus_message_open_container(reply.get(), 'a', "a{sv}");
    for (const auto& info : *keys) {
        if (r >= 0)
            r = append_info(reply.get(), info);
    }
    if (r >= 0)
        r = sd_bus_message_close_container(reply.get());
    return send_reply(reply.get(), r);
}

int ManagerObject::get_key(sd_bus_message* m, sd_bus_error* ret) {
    const char* id = nullptr;
    if (sd_bus_message_read(m, "s", &id) < 0) {
        return invalid_arguments(ret, "GetKey");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "GetKey");
    }
    auto info = service_.get_key(*caller, id);
    if (!info) {
        return reply_error(ret, info.error(), "GetKey");
    }
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = append_info(reply.get(), *info);
    return send_reply(reply.get(), r);
}

int ManagerObject::revoke_key(sd_bus_message* m, sd_bus_error* ret) {
    const char* id = nullptr;
    const char* reason = nullptr;
    if (sd_bus_message_read(m, "ss", &id, &reason) < 0) {
        return invalid_arguments(ret, "RevokeKey");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "RevokeKey");
    }
    if (auto ok = commits_->begin(); !ok) {
        return reply_error(ret, ok.error(), "RevokeKey");
    }
    if (auto ok = service_.revoke_key(*caller, id, reason); !ok) {
        return reply_error(ret, ok.error(), "RevokeKey");
    }
    sd_bus_message* raw = nullptr;
    const int r = sd_bus_message_new_method_return(m, &raw);
    return answer_after_commit(m, sdbus::MessagePtr(raw), r, "KeyRevoked", id);
}

int ManagerObject::verify_key(sd_bus_message* m, sd_bus_error* ret) {
    const char* key = nullptr;
    const char* scope = nullptr;
    if (sd_bus_message_read(m, "ss", &key, &scope) < 0) {
        return invalid_arguments(ret, "VerifyKey");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "VerifyKey");
    }
    auto verification = service_.verify_key(*caller, key, scope);
    if (!verification) {
        return reply_error(ret, verification.error(), "VerifyKey");
    }
    const auto& v = *verification;
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    const int valid = v.valid ? 1 : 0;
    if (r >= 0)
        r = sd_bus_message_append_basic(reply.get(), 'b', &valid);
    if (r >= 0)
        r = sd_bus_message_append_basic(reply.get(), 's', v.info ? v.info->id.c_str() : "");
    if (r >= 0) {
        DictWriter w(reply.get());
        if (v.info) {
            write_info(w, *v.info);
        }
        if (!v.valid) {
            w.str("reason", v.reason);
        }
        r = w.close();
    }
    return send_reply(reply.get(), r);
}

int ManagerObject::get_secret(sd_bus_message* m, sd_bus_error* ret) {
    const char* id = nullptr;
    if (sd_bus_message_read(m, "s", &id) < 0) {
        return invalid_arguments(ret, "GetSecret");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "GetSecret");
    }
    auto secret = service_.get_secret(*caller, id);
    if (!secret) {
        return reply_error(ret, secret.error(), "GetSecret");
    }
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = sd_bus_message_sensitive(reply.get());
    if (r >= 0)
        r = sd_bus_message_append_array(reply.get(), 'y', secret->data(), secret->size());
    return send_reply(reply.get(), r);
}

int ManagerObject::get_status(sd_bus_message* m, sd_bus_error* ret) {
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "GetStatus");
    }
    auto status = service_.status(*caller);
    if (!status) {
        return reply_error(ret, status.error(), "GetStatus");
    }
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r < 0) {
        return r;
    }
    DictWriter w(reply.get());
    w.boolean("locked", status->locked).u64("keys", status->keys).str("version", kVersion);
    if (status->locked) {
        w.str("lock_reason", status->lock_reason);
    }
    w.dicts("keyslots", status->keyslots, [](DictWriter& slot, const KeyslotRecord& record) {
        slot.str("id", record.id).str("type", record.type).u64("created_usec", record.created_usec);
        // Type-specific fields, as far as the contract names them.
        const auto& p = record.params;
        if (p.contains("tcti") && p["tcti"].is_string()) {
            slot.str("tcti", p["tcti"].get<std::string>());
        }
        if (p.contains("pcrs") && p["pcrs"].is_array()) {
            slot.u32v("pcrs", p["pcrs"].get<std::vector<uint32_t>>());
        }
        for (const char* name : {"uri", "mechanism"}) {
            if (record.type == Pkcs11Keyslot::kType && p.contains(name) && p[name].is_string()) {
                slot.str(name, p[name].get<std::string>());
            }
        }
        if (KeyslotManager::takes_pin(record) || p.contains("pin")) {
            slot.boolean("pin", KeyslotManager::takes_pin(record));
        }
    });
    w.strv("warnings", status->warnings);
    return send_reply(reply.get(), w.close());
}

int ManagerObject::add_keyslot(sd_bus_message* m, sd_bus_error* ret) {
    const char* type = nullptr;
    if (sd_bus_message_read(m, "s", &type) < 0) {
        return invalid_arguments(ret, "AddKeyslot");
    }
    auto options = read_options(m, method_options::kAddKeyslot, "option");
    if (!options) {
        return reply_error(ret, options.error(), "AddKeyslot");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "AddKeyslot");
    }
    AddKeyslotRequest request;
    request.type = type;
    if (const auto it = options->find("tcti"); it != options->end()) {
        request.tcti = std::get<std::string>(it->second);
    }
    if (const auto it = options->find("pcrs"); it != options->end()) {
        request.pcrs = std::get<std::vector<uint32_t>>(it->second);
    }
    if (const auto it = options->find("uri"); it != options->end()) {
        request.uri = std::get<std::string>(it->second);
    }
    const bool pin_given = options->contains("pin");
    request.pin = take_secret(*options, "pin");
    // An empty PIN would silently make a slot without one.
    if (pin_given && request.pin.empty()) {
        return reply_error(ret,
                           make_error(ErrorCode::InvalidArgument,
                                      "Invalid option 'pin': it is empty (a tpm2 keyslot "
                                      "without a PIN leaves the option out)"),
                           "AddKeyslot");
    }
    auto added = keyslots_.add(*caller, std::move(request));
    if (!added) {
        return reply_error(ret, added.error(), "AddKeyslot");
    }
    log::notice(std::string("Added ") + type + " keyslot " + added->id);
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = sd_bus_message_sensitive(reply.get());
    if (r >= 0)
        r = sd_bus_message_append_basic(reply.get(), 's', added->id.c_str());
    char* space = nullptr;
    if (r >= 0) {
        r = sd_bus_message_append_string_space(reply.get(), added->recovery_key.size(), &space);
    }
    if (r >= 0 && !added->recovery_key.empty()) {
        std::memcpy(space, added->recovery_key.data(), added->recovery_key.size());
    }
    return send_reply(reply.get(), r);
}

int ManagerObject::remove_keyslot(sd_bus_message* m, sd_bus_error* ret) {
    const char* id = nullptr;
    if (sd_bus_message_read(m, "s", &id) < 0) {
        return invalid_arguments(ret, "RemoveKeyslot");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "RemoveKeyslot");
    }
    if (auto ok = keyslots_.remove(*caller, id); !ok) {
        return reply_error(ret, ok.error(), "RemoveKeyslot");
    }
    log::notice(std::string("Removed keyslot ") + id);
    return sd_bus_reply_method_return(m, "");
}

int ManagerObject::unlock(sd_bus_message* m, sd_bus_error* ret) {
    const char* type = nullptr;
    if (sd_bus_message_read(m, "s", &type) < 0) {
        return invalid_arguments(ret, "Unlock");
    }
    auto options = read_options(m, method_options::kUnlockCredentials, "credential");
    if (!options) {
        return reply_error(ret, options.error(), "Unlock");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "Unlock");
    }
    UnlockCredentials credentials{take_secret(*options, "pin"),
                                  take_secret(*options, "recovery_key")};
    std::string keyslot;
    if (const auto it = options->find("keyslot"); it != options->end()) {
        keyslot = std::get<std::string>(it->second);
    }
    if (auto ok = keyslots_.unlock(*caller, type, credentials, keyslot); !ok) {
        log::warning(std::string("Unlock with a ") + type +
                     " keyslot refused: " + ok.error().message);
        return reply_error(ret, ok.error(), "Unlock");
    }
    log::notice(std::string("Unlocked with a ") + type + " keyslot");
    // systemctl status showed "Locked" since the start; it is not any more.
    sd_notify(0, "STATUS=Serving");
    return sd_bus_reply_method_return(m, "");
}

int ManagerObject::update_key(sd_bus_message* m, sd_bus_error* ret) {
    const char* id = nullptr;
    if (sd_bus_message_read(m, "s", &id) < 0) {
        return invalid_arguments(ret, "UpdateKey");
    }
    auto changes = read_options(m, method_options::kChanges, "change");
    if (!changes) {
        return reply_error(ret, changes.error(), "UpdateKey");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "UpdateKey");
    }
    if (auto ok = commits_->begin(); !ok) {
        return reply_error(ret, ok.error(), "UpdateKey");
    }
    if (auto ok = service_.update_key(*caller, id, changes_from(*changes)); !ok) {
        return reply_error(ret, ok.error(), "UpdateKey");
    }
    sd_bus_message* raw = nullptr;
    const int r = sd_bus_message_new_method_return(m, &raw);
    return answer_after_commit(m, sdbus::MessagePtr(raw), r, "KeyChanged", id);
}

int ManagerObject::rotate_key(sd_bus_message* m, sd_bus_error* ret) {
    const char* id = nullptr;
    uint64_t grace_sec = 0;
    if (sd_bus_message_read(m, "st", &id, &grace_sec) < 0) {
        return invalid_arguments(ret, "RotateKey");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "RotateKey");
    }
    if (auto ok = commits_->begin(); !ok) {
        return reply_error(ret, ok.error(), "RotateKey");
    }
    auto key_text = service_.rotate_key(*caller, id, grace_sec);
    if (!key_text) {
        return reply_error(ret, key_text.error(), "RotateKey");
    }
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = sd_bus_message_sensitive(reply.get());
    char* space = nullptr;
    if (r >= 0)
        r = sd_bus_message_append_string_space(reply.get(), key_text->size(), &space);
    if (r >= 0)
        std::memcpy(space, key_text->data(), key_text->size());
    return answer_after_commit(m, std::move(reply), r, "KeyChanged", id);
}

namespace {
// OpenSSL's SHA-256 code spills its state into its own stack frames, the
// finished MAC included, and leaves it there (a gcore after Sign found two
// copies): overwrite the stack below the caller's frame once the MAC is made.
[[gnu::noinline]] void wipe_stack_below() {
    unsigned char burn[16 * 1024];
    wipe(burn, sizeof burn);
    asm volatile("" : : "r"(burn) : "memory");
}
}  // namespace

int ManagerObject::sign(sd_bus_message* m, sd_bus_error* ret) {
    const char* id = nullptr;
    const char* algorithm = nullptr;
    const void* data = nullptr;
    size_t size = 0;
    if (sd_bus_message_read(m, "ss", &id, &algorithm) < 0 ||
        sd_bus_message_read_array(m, 'y', &data, &size) < 0) {
        return invalid_arguments(ret, "Sign");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "Sign");
    }
    auto mac = service_.sign(*caller, id, algorithm, {static_cast<const uint8_t*>(data), size});
    wipe_stack_below();
    if (!mac) {
        return reply_error(ret, mac.error(), "Sign");
    }
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = sd_bus_message_sensitive(reply.get());
    if (r >= 0)
        r = sd_bus_message_append_array(reply.get(), 'y', mac->data(), mac->size());
    // The reply is wiped when sd-bus frees it; this copy is ours to wipe.
    wipe(mac->data(), mac->size());
    return send_reply(reply.get(), r);
}

int ManagerObject::get_usage(sd_bus_message* m, sd_bus_error* ret) {
    const char* id = nullptr;
    if (sd_bus_message_read(m, "s", &id) < 0) {
        return invalid_arguments(ret, "GetUsage");
    }
    auto options = read_options(m, method_options::kUsage, "option");
    if (!options) {
        return reply_error(ret, options.error(), "GetUsage");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "GetUsage");
    }
    auto events =
        service_.usage(*caller, id, optional_u64(*options, "since_usec").value_or(0),
                       optional_value<uint32_t>(*options, "limit").value_or(kDefaultEventsListed));
    if (!events) {
        return reply_error(ret, events.error(), "GetUsage");
    }
    return reply_dicts(m, *events, write_event);
}

int ManagerObject::get_usage_by_day(sd_bus_message* m, sd_bus_error* ret) {
    const char* id = nullptr;
    if (sd_bus_message_read(m, "s", &id) < 0) {
        return invalid_arguments(ret, "GetUsageByDay");
    }
    auto options = read_options(m, method_options::kUsageByDay, "option");
    if (!options) {
        return reply_error(ret, options.error(), "GetUsageByDay");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "GetUsageByDay");
    }
    auto days = service_.usage_by_day(
        *caller, id, optional_value<uint32_t>(*options, "days").value_or(kDefaultDaysListed));
    if (!days) {
        return reply_error(ret, days.error(), "GetUsageByDay");
    }
    return reply_dicts(m, *days, write_day);
}

int ManagerObject::identify_key(sd_bus_message* m, sd_bus_error* ret) {
    const char* key = nullptr;
    if (sd_bus_message_read(m, "s", &key) < 0) {
        return invalid_arguments(ret, "IdentifyKey");
    }
    auto caller = callers_->caller_of(m);
    if (!caller) {
        return reply_error(ret, caller.error(), "IdentifyKey");
    }
    auto identified = service_.identify_key(*caller, key);
    if (!identified) {
        return reply_error(ret, identified.error(), "IdentifyKey");
    }
    const auto& id = *identified;
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = sd_bus_message_append(reply.get(), "bs", id.known ? 1 : 0,
                                  id.info ? id.info->id.c_str() : "");
    if (r >= 0) {
        DictWriter w(reply.get());
        if (id.info) {
            write_info(w, *id.info);
            w.str("text", id.text);
        } else {
            w.str("reason", id.reason);
        }
        r = w.close();
    }
    return send_reply(reply.get(), r);
}

}  // namespace apikeyd::bus
