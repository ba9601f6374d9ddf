#pragma once
// How apikeyctl shows things: aligned tables and fields, times, JSON.
// Everything printed for humans goes through printable(), because names,
// descriptions and messages are chosen by users and an escape sequence in a
// key name must not reach root's terminal.

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/secret.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {

// Typed look-ups in an info dictionary: a missing field, or one of another
// type (a daemon of another version), reads as empty.
std::string text_field(const client::Dict& dict, const std::string& name);
uint64_t number_field(const client::Dict& dict, const std::string& name);
bool flag_field(const client::Dict& dict, const std::string& name);
std::vector<std::string> list_field(const client::Dict& dict, const std::string& name);
std::vector<client::Dict> dicts_field(const client::Dict& dict, const std::string& name);

// The one way apikeyctl shows text it did not write: control, format (Cf),
// line and paragraph separator characters and bytes that are not UTF-8
// become escapes (text::escaped in common/printable_text.hpp); printable
// UTF-8 such as "rëad" or "日本" stays as it is.
std::string printable(std::string_view text);

std::string join(const std::vector<std::string>& parts, std::string_view separator);

uint64_t now_usec();
// "never" for 0, else e.g. "just now", "3 minutes ago", "in 30 days".
std::string relative_time(uint64_t usec, uint64_t now);
// Local time, e.g. "2025-01-31 14:03:09 CET".
std::string absolute_time(uint64_t usec);
// "never" for 0, else absolute and relative: "2025-01-31 14:03:09 CET (in 30 days)".
std::string full_time(uint64_t usec, uint64_t now);
// "1 key", "3 keys": `unit` with an s unless n is 1.
std::string plural(uint64_t n, std::string_view unit);
// Exact, in the largest unit that divides it: "30 days", "90 minutes".
std::string duration_text(uint64_t seconds);

class Table {
  public:
    explicit Table(std::vector<std::string> headers);
    void add_row(std::vector<std::string> cells);
    bool empty() const { return rows_.empty(); }
    void print(std::ostream& out, std::string_view indent = "") const;

  private:
    std::vector<std::string> headers_;
    std::vector<std::vector<std::string>> rows_;
};

using Fields = std::vector<std::pair<std::string, std::string>>;
// "Label:" then the values lined up in one column.
void print_fields(std::ostream& out, const Fields& fields, std::string_view indent = "");

// A keyslot's type-specific fields in one line, e.g.
// "tcti=device:/dev/tpmrm0, pcrs=7,16, pin"; "-" when it has none.
std::string keyslot_details(const client::Dict& slot);
// A table of keyslots: ID, TYPE, CREATED, DETAILS.
void print_keyslots(std::ostream& out, const std::vector<client::Dict>& slots,
                    std::string_view indent = "");

nlohmann::json to_json(const client::Value& value);
nlohmann::json to_json(const client::Dict& dict);
// Pretty-printed, on stdout.
void print_json(const nlohmann::json& json);

// Appends `text` as a JSON string literal, for output that holds a secret
// and so cannot go through nlohmann::json's growing buffers.
void append_json_string(SecretText& out, std::string_view text);

// Prints a new key's text, the one time it exists outside apikeyd: alone on
// stdout, between `announcement` and a warning that it is shown once on
// stderr; or {"id", "key"} as JSON on stdout.
void print_key_once(const std::string& id, const std::string& key, std::string_view announcement,
                    bool json);

// Whether the terminal's character set (LC_CTYPE) is UTF-8, so that block
// characters and an ellipsis can be shown rather than ASCII stand-ins.
bool unicode_output();

}  // namespace apikeyd::cli
