#pragma once
// Short random printable ids: what lists, logs and the CLI use in place of
// any secret. Base32 (a-z, 2-7) so they read aloud and never look like key
// text.

#include <string>
#include <string_view>

#include "daemon/result.hpp"

namespace apikeyd {

// "k_" + 12 base32 characters (60 bits).
Result<std::string> new_key_id();
// "ks_" + 8 base32 characters.
Result<std::string> new_keyslot_id();

}  // namespace apikeyd
