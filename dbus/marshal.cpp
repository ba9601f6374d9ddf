#include "dbus/marshal.hpp"

#include <cerrno>
#include <cstring>
#include <optional>

#include "daemon/validation.hpp"
#include "version.hpp"

namespace apikeyd::bus {
namespace {

Error malformed_arguments(const char* method) {
    return make_error(ErrorCode::InvalidArgument,
                      std::string("Malformed arguments to ") + (method ? method : "?"));
}

// An aa{sv} of `items`, each written by `write(DictWriter&, item)`; adds
// the bytes written to `*bytes`. -EMSGSIZE when they pass kMaxReplyBytes.
template <class Items, class Write>
int write_dicts(sd_bus_message* reply, const Items& items, Write&& write, size_t* bytes = nullptr);

// Bytes an `s` of `size` takes at most: padding, length, text, NUL.
constexpr size_t string_bytes(size_t size) {
    return 3 + 4 + size + 1;
}

// Writes an a{sv} dictionary entry by entry; the first failure sticks.
// Counts, at least, the bytes it wrote: every list reply is checked
// against kMaxReplyBytes with it.
class DictWriter {
  public:
    explicit DictWriter(sd_bus_message* m) : m_(m) {
        r_ = sd_bus_message_open_container(m_, 'a', "{sv}");
    }

    DictWriter& str(const char* key, const std::string& value) {
        bytes_ += string_bytes(value.size());
        return basic(key, 's', "s", value.c_str());
    }
    DictWriter& u64(const char* key, uint64_t value) { return basic(key, 't', "t", &value); }
    DictWriter& u32(const char* key, uint32_t value) { return basic(key, 'u', "u", &value); }
    DictWriter& boolean(const char* key, bool value) {
        const int b = value ? 1 : 0;
        return basic(key, 'b', "b", &b);
    }
    DictWriter& strv(const char* key, const std::vector<std::string>& values) {
        bytes_ += 8;
        for (const auto& v : values) {
            bytes_ += string_bytes(v.size());
        }
        return entry(key, "as", [&] {
            int r = sd_bus_message_open_container(m_, 'a', "s");
            for (const auto& v : values) {
                if (r >= 0)
                    r = sd_bus_message_append_basic(m_, 's', v.c_str());
            }
            return r >= 0 ? sd_bus_message_close_container(m_) : r;
        });
    }
    DictWriter& u32v(const char* key, const std::vector<uint32_t>& values) {
        bytes_ += 8 + values.size() * sizeof(uint32_t);
        return entry(key, "au", [&] {
            return sd_bus_message_append_array(m_, 'u', values.data(),
                                               values.size() * sizeof(uint32_t));
        });
    }
    // An aa{sv} entry.
    template <class Items, class Write>
    DictWriter& dicts(const char* key, const Items& items, Write&& write) {
        return entry(key, "aa{sv}", [&] { return write_dicts(m_, items, write, &bytes_); });
    }
    int close() {
        if (r_ >= 0) {
            r_ = sd_bus_message_close_container(m_);
        }
        return r_;
    }
    size_t bytes() const { return bytes_; }

  private:
    // One {sv} entry of a basic type, container by container: the info
    // dictionary of every VerifyKey reply has 17 of them, and
    // sd_bus_message_append would parse a signature string for each.
    // `value` points at the value (for strings, is the string).
    DictWriter& basic(const char* key, char type, const char* signature, const void* value) {
        return entry(key, signature, [&] { return sd_bus_message_append_basic(m_, type, value); });
    }

    // {sv} with the variant's contents appended by `append`.
    template <class F>
    DictWriter& entry(const char* key, const char* signature, F&& append) {
        // The entry's alignment, its key, the variant's signature, and the
        // largest fixed-size value (8 bytes, aligned).
        bytes_ += 7 + string_bytes(std::strlen(key)) + 2 + std::strlen(signature) + 7 + 8;
        if (r_ >= 0)
            r_ = sd_bus_message_open_container(m_, 'e', "sv");
        if (r_ >= 0)
            r_ = sd_bus_message_append_basic(m_, 's', key);
        if (r_ >= 0)
            r_ = sd_bus_message_open_container(m_, 'v', signature);
        if (r_ >= 0)
            r_ = append();
        for (int i = 0; i < 2 && r_ >= 0; ++i) {
            r_ = sd_bus_message_close_container(m_);
        }
        return *this;
    }

    sd_bus_message* m_;
    int r_ = 0;
    size_t bytes_ = 8;  // the array's length and padding
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

void write_event(DictWriter& w, const UsageEvent& event) {
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

void write_day(DictWriter& w, const DayUsage& day) {
    w.u64("day_usec", day.day_usec)
        .str("date", day.date)
        .u64("ok", day.ok)
        .u64("refused", day.refused)
        .u64("unrecorded", day.unrecorded);
}

void write_keyslot(DictWriter& w, const KeyslotInfo& slot) {
    w.str("id", slot.id).str("type", slot.type).u64("created_usec", slot.created_usec);
    if (slot.tcti) {
        w.str("tcti", *slot.tcti);
    }
    if (slot.pcrs) {
        w.u32v("pcrs", *slot.pcrs);
    }
    if (slot.uri) {
        w.str("uri", *slot.uri);
    }
    if (slot.mechanism) {
        w.str("mechanism", *slot.mechanism);
    }
    if (slot.pin) {
        w.boolean("pin", *slot.pin);
    }
}

template <class Items, class Write>
int write_dicts(sd_bus_message* reply, const Items& items, Write&& write, size_t* bytes) {
    size_t written = 8;
    int r = sd_bus_message_open_container(reply, 'a', "a{sv}");
    for (const auto& item : items) {
        if (r >= 0) {
            DictWriter w(reply);
            write(w, item);
            r = w.close();
            written += w.bytes();
            if (written > kMaxReplyBytes) {
                r = -EMSGSIZE;
            }
        }
    }
    if (bytes != nullptr) {
        *bytes += written;
    }
    return r >= 0 ? sd_bus_message_close_container(reply) : r;
}

// (b, s id, a{sv} info): VerifyKey's and IdentifyKey's answer, the info
// followed by what `more` adds.
template <class More>
int write_answer(sd_bus_message* reply, bool yes, const std::optional<KeyInfo>& info, More&& more) {
    const int b = yes ? 1 : 0;
    int r = sd_bus_message_append_basic(reply, 'b', &b);
    if (r >= 0)
        r = sd_bus_message_append_basic(reply, 's', info ? info->id.c_str() : "");
    if (r < 0) {
        return r;
    }
    DictWriter w(reply);
    if (info) {
        write_info(w, *info);
    }
    more(w);
    return w.close();
}

// Written straight into the (sensitive) message: no NUL-terminated copy of
// the text is ever made.
int append_secret_text(sd_bus_message* reply, const SecretBuffer& text) {
    char* space = nullptr;
    const int r = sd_bus_message_append_string_space(reply, text.size(), &space);
    if (r >= 0 && !text.empty()) {
        std::memcpy(space, text.data(), text.size());
    }
    return r;
}

}  // namespace

Result<std::string_view> read(sd_bus_message* m, const char* method, Tag<std::string_view>) {
    const char* s = nullptr;
    if (sd_bus_message_read_basic(m, 's', &s) < 0 || !s) {
        return malformed_arguments(method);
    }
    return std::string_view(s);
}

Result<uint64_t> read(sd_bus_message* m, const char* method, Tag<uint64_t>) {
    uint64_t value = 0;
    if (sd_bus_message_read_basic(m, 't', &value) < 0) {
        return malformed_arguments(method);
    }
    return value;
}

Result<Bytes> read(sd_bus_message* m, const char* method, Tag<Bytes>) {
    const void* data = nullptr;
    size_t size = 0;
    if (sd_bus_message_read_array(m, 'y', &data, &size) < 0) {
        return malformed_arguments(method);
    }
    return Bytes(static_cast<const uint8_t*>(data), size);
}

Result<Scopes> read(sd_bus_message* m, const char*, Tag<Scopes>) {
    const auto malformed = make_error(ErrorCode::InvalidArgument, "Malformed scopes");
    if (sd_bus_message_enter_container(m, 'a', "s") <= 0) {
        return malformed;
    }
    Scopes scopes;
    const char* s = nullptr;
    int r = 0;
    while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0) {
        // Stop reading past the limit: a huge array costs no more than
        // refusing it.
        if (scopes.values.size() == limits::kMaxScopes) {
            return make_error(
                ErrorCode::InvalidArgument,
                "Too many scopes: at most " + std::to_string(limits::kMaxScopes) + " allowed");
        }
        scopes.values.emplace_back(s);
    }
    if (r < 0 || sd_bus_message_exit_container(m) < 0) {
        return malformed;
    }
    return scopes;
}

Result<Sender> read(sd_bus_message* m, const char*, Tag<Sender>) {
    const char* sender = sd_bus_message_get_sender(m);
    if (!sender) {
        return make_error(ErrorCode::AccessDenied, "The call has no sender");
    }
    return Sender{sender};
}

int write(sd_bus_message*, const NoReply&) {
    return 0;
}

int write(sd_bus_message* reply, const std::string& id) {
    return sd_bus_message_append_basic(reply, 's', id.c_str());
}

int write(sd_bus_message* reply, const SecretText& key) {
    const int r = sd_bus_message_sensitive(reply);
    return r < 0 ? r : append_secret_text(reply, key.text);
}

int write(sd_bus_message* reply, const SecretBuffer& secret) {
    const int r = sd_bus_message_sensitive(reply);
    return r < 0 ? r : sd_bus_message_append_array(reply, 'y', secret.data(), secret.size());
}

int write(sd_bus_message* reply, const CreatedKey& created) {
    int r = sd_bus_message_sensitive(reply);
    if (r >= 0)
        r = sd_bus_message_append_basic(reply, 's', created.id.c_str());
    return r < 0 ? r : append_secret_text(reply, created.key_text);
}

int write(sd_bus_message* reply, const KeyInfo& info) {
    DictWriter w(reply);
    write_info(w, info);
    return w.close();
}

int write(sd_bus_message* reply, const std::vector<KeyInfo>& keys) {
    return write_dicts(reply, keys, write_info);
}

int write(sd_bus_message* reply, const Verification& v) {
    return write_answer(reply, v.valid, v.info, [&](DictWriter& w) {
        if (!v.valid) {
            w.str("reason", v.reason);
        }
    });
}

int write(sd_bus_message* reply, const Identification& id) {
    return write_answer(reply, id.known, id.info, [&](DictWriter& w) {
        if (id.info) {
            w.str("text", id.text);
        } else {
            w.str("reason", id.reason);
        }
    });
}

int write(sd_bus_message* reply, const ServiceStatus& status) {
    DictWriter w(reply);
    w.boolean("locked", status.locked).u64("keys", status.keys).str("version", kVersion);
    if (status.locked) {
        w.str("lock_reason", status.lock_reason);
    }
    w.dicts("keyslots", status.keyslots, write_keyslot);
    w.strv("warnings", status.warnings);
    return w.close();
}

int write(sd_bus_message* reply, const std::vector<UsageEvent>& events) {
    return write_dicts(reply, events, write_event);
}

int write(sd_bus_message* reply, const std::vector<DayUsage>& days) {
    return write_dicts(reply, days, write_day);
}

int write(sd_bus_message* reply, const AddedKeyslot& added) {
    int r = sd_bus_message_sensitive(reply);
    if (r >= 0)
        r = sd_bus_message_append_basic(reply, 's', added.id.c_str());
    return r < 0 ? r : append_secret_text(reply, added.recovery_key);
}

}  // namespace apikeyd::bus
