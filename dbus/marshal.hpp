#pragma once
// The generic half of every method: read<T> for each argument type a method
// can declare and write() for each result type the core returns. The
// method table (dbus/methods.cpp) names types; this file is all that knows
// how they look on the wire.

#include <systemd/sd-bus.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/key_service.hpp"
#include "daemon/keyslot_admin.hpp"
#include "daemon/result.hpp"
#include "dbus/options.hpp"

namespace apikeyd::bus {

// ---------------------------------------------------------- argument types

// `as` of scopes, refused past limits::kMaxScopes entries without reading on.
struct Scopes {
    std::vector<std::string> values;
};
// `ay`, pointing into the message.
using Bytes = std::span<const uint8_t>;

template <class T>
struct Tag {};

// Not an argument on the wire: the unique name of the connection that sent
// the call, for the methods about that connection (Subscribe, Unsubscribe).
struct Sender {
    std::string_view name;
};

// Each fails with InvalidArgument: "Malformed arguments to <method>" for a
// value that is not there, or the option reader's own message.
Result<std::string_view> read(sd_bus_message* m, const char* method, Tag<std::string_view>);
Result<uint64_t> read(sd_bus_message* m, const char* method, Tag<uint64_t>);
Result<Bytes> read(sd_bus_message* m, const char* method, Tag<Bytes>);
Result<Scopes> read(sd_bus_message* m, const char* method, Tag<Scopes>);
// Reads nothing; AccessDenied for a call without a sender.
Result<Sender> read(sd_bus_message* m, const char* method, Tag<Sender>);
template <const OptionTable& Table>
Result<OptionsArg<Table>> read(sd_bus_message* m, const char*, Tag<OptionsArg<Table>>) {
    auto options = read_options(m, Table.specs, Table.what);
    if (!options) {
        return options.error();
    }
    return OptionsArg<Table>(std::move(*options));
}

// ------------------------------------------------------------ result types

// A method without a result.
struct NoReply {};
// Key text: `s`, written straight into a sensitive reply.
struct SecretText {
    SecretBuffer text;
};
// The signal that announces a change to a key: only the key's owner and
// root receive it.
struct KeySignal {
    const char* member;  // "KeyCreated", "KeyChanged" or "KeyRevoked"
    std::string id;
    uint32_t owner_uid;
};
// A change: its reply (`value`) and its signal wait for the COMMIT that
// makes it durable.
template <class T>
struct Durable {
    T value;
    KeySignal signal;
};

// The most a reply may hold, in bytes on the wire: half of dbus-daemon's
// default max_message_size (32 MiB), which drops a sender that passes it.
// A list reply that would pass it fails with -EMSGSIZE before it is built
// further; the dispatcher answers LimitExceeded instead.
inline constexpr size_t kMaxReplyBytes = 16 * 1024 * 1024;

// Each appends a method's whole result; negative errno on failure. Replies
// that carry a secret mark themselves sensitive (wiped when freed).
int write(sd_bus_message* reply, const NoReply&);
int write(sd_bus_message* reply, const std::string& id);
int write(sd_bus_message* reply, const SecretText& key);
int write(sd_bus_message* reply, const SecretBuffer& secret);
int write(sd_bus_message* reply, const CreatedKey& created);
int write(sd_bus_message* reply, const KeyInfo& info);
int write(sd_bus_message* reply, const std::vector<KeyInfo>& keys);
int write(sd_bus_message* reply, const Verification& verification);
int write(sd_bus_message* reply, const Identification& identification);
int write(sd_bus_message* reply, const ServiceStatus& status);
int write(sd_bus_message* reply, const std::vector<UsageEvent>& events);
int write(sd_bus_message* reply, const std::vector<DayUsage>& days);
int write(sd_bus_message* reply, const AddedKeyslot& added);

}  // namespace apikeyd::bus
