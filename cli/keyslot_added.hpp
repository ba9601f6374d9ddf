#pragma once
// What `keyslot add tpm2|pkcs11` print once apikeyd has added a slot.

#include <string>
#include <string_view>

#include "dbus/client.hpp"

namespace apikeyd::cli {

// "Added TYPE keyslot ID (details)." with the details apikeyd recorded
// (which is what counts: it picks a default TCTI, a token key's mechanism),
// or {"id"} as JSON.
void print_added_keyslot(client::Client& daemon, std::string_view type, const std::string& id,
                         bool json);

}  // namespace apikeyd::cli
