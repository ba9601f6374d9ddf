#include "daemon/validation.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "common/printable_text.hpp"

namespace apikeyd::validation {
namespace {

Error invalid(std::string message) {
    return make_error(ErrorCode::InvalidArgument, std::move(message));
}

// What check_text learnt of a text that is fit to store.
struct TextShape {
    size_t chars = 0;
    std::optional<char32_t> leading_space;
    std::optional<char32_t> trailing_space;
    bool only_space = true;
};

enum class Breaks { Refused, Allowed };

// Refuses text longer than `max_chars` characters, not UTF-8, or holding a
// character that could hide or reorder what is shown with it
// (text::unprintable_kind; newline and tab where `breaks` allows them),
// naming the character by its code point and never repeating the bytes.
Result<TextShape> check_text(std::string_view field, std::string_view text, Breaks breaks,
                             size_t max_chars) {
    TextShape shape;
    char32_t last = 0;
    const auto refuse = [&](const std::string& what) {
        return invalid("Invalid " + std::string(field) + ": it " + what + " at character " +
                       std::to_string(shape.chars));
    };
    while (!text.empty()) {
        const auto decoded = text::decode_front(text);
        ++shape.chars;
        if (!decoded.code_point) {
            char byte[8];
            std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[0]));
            return refuse("is not UTF-8: byte " + std::string(byte));
        }
        last = *decoded.code_point;
        const auto kind = text::unprintable_kind(last);
        const bool allowed_break = breaks == Breaks::Allowed && (last == '\n' || last == '\t');
        if (!kind.empty() && !allowed_break) {
            return refuse("contains " + text::code_point_name(last) + " (" + std::string(kind) +
                          ")");
        }
        const bool space = text::is_white_space(last);
        if (shape.chars == 1 && space) {
            shape.leading_space = last;
        }
        shape.only_space = shape.only_space && space;
        text.remove_prefix(decoded.length);
    }
    if (shape.chars > max_chars) {
        return invalid("Invalid " + std::string(field) + ": it is " + std::to_string(shape.chars) +
                       " characters long; the limit is " + std::to_string(max_chars));
    }
    if (shape.chars > 0 && text::is_white_space(last)) {
        shape.trailing_space = last;
    }
    return shape;
}

bool is_scope_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
           c == '*' || c == '-';
}

Result<void> check_scope(std::string_view scope) {
    if (scope.empty() || scope.size() > limits::kMaxScopeLength ||
        !std::all_of(scope.begin(), scope.end(), is_scope_char)) {
        return invalid("Invalid scope " + quote_for_message(scope) + ": a scope is 1-" +
                       std::to_string(limits::kMaxScopeLength) +
                       " characters of a-z 0-9 _ . : * -");
    }
    return {};
}

}  // namespace

std::string quote_for_message(std::string_view text, size_t max) {
    size_t cut = 0;
    for (size_t chars = 0; cut < text.size() && chars < max; ++chars) {
        cut += text::decode_front(text.substr(cut)).length;
    }
    return "'" + text::escaped(text.substr(0, cut), text::Escape::NonAscii) +
           (cut < text.size() ? "..." : "") + "'";
}

Result<void> check_name(std::string_view name) {
    const auto shape = check_text("name", name, Breaks::Refused, limits::kMaxNameChars);
    if (!shape) {
        return shape.error();
    }
    if (shape->chars == 0) {
        return invalid("Invalid name: it is empty");
    }
    // Two names that differ only in white space at an end look the same in
    // a list.
    if (shape->only_space) {
        return invalid("Invalid name: it is only white space");
    }
    if (shape->leading_space) {
        return invalid("Invalid name: it starts with " +
                       text::code_point_name(*shape->leading_space) + " (white space)");
    }
    if (shape->trailing_space) {
        return invalid("Invalid name: it ends with " +
                       text::code_point_name(*shape->trailing_space) + " (white space)");
    }
    return {};
}

Result<void> check_description(std::string_view description) {
    const auto shape =
        check_text("description", description, Breaks::Allowed, limits::kMaxDescriptionChars);
    return shape ? Result<void>() : shape.error();
}

Result<void> check_revoke_reason(std::string_view reason) {
    const auto shape =
        check_text("revoke reason", reason, Breaks::Refused, limits::kMaxRevokeReasonChars);
    return shape ? Result<void>() : shape.error();
}

Result<std::vector<std::string>> normalize_scopes(const std::vector<std::string>& scopes) {
    if (scopes.size() > limits::kMaxScopes) {
        return invalid("Too many scopes: " + std::to_string(scopes.size()) + " given, at most " +
                       std::to_string(limits::kMaxScopes) + " allowed");
    }
    for (const auto& scope : scopes) {
        if (auto checked = check_scope(scope); !checked) {
            return checked.error();
        }
    }
    std::vector<std::string> sorted = scopes;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    return sorted;
}

Result<void> check_requested_scope(std::string_view scope) {
    if (scope.empty()) {
        return {};
    }
    return check_scope(scope);
}

Result<void> check_secret_size(size_t size) {
    if (size == 0 || size > limits::kMaxSecretBytes) {
        return invalid("Invalid secret: it must be 1-" + std::to_string(limits::kMaxSecretBytes) +
                       " bytes long, not " + std::to_string(size));
    }
    return {};
}

Result<void> check_key_id(std::string_view id) {
    const bool well_formed = id.size() == 2 + limits::kKeyIdRandomChars && id.starts_with("k_") &&
                             std::all_of(id.begin() + 2, id.end(), [](char c) {
                                 return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
                             });
    if (!well_formed) {
        // The value is not repeated: a pasted key text is the likeliest
        // wrong id, and it must not travel back in an error.
        return invalid("Invalid key id: ids look like k_ followed by 12 characters of a-z 2-7");
    }
    return {};
}

Result<void> check_keyslot_id(std::string_view id) {
    const bool well_formed = id.size() == 11 && id.starts_with("ks_") &&
                             std::all_of(id.begin() + 3, id.end(), [](char c) {
                                 return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
                             });
    if (!well_formed) {
        return invalid("Invalid keyslot id: ids look like ks_ followed by 8 characters of a-z 2-7");
    }
    return {};
}

bool scopes_allow(std::span<const std::string> granted, std::string_view requested) {
    if (requested.empty()) {
        return true;
    }
    for (const auto& scope : granted) {
        if (scope == "*" || scope == requested) {
            return true;
        }
        // "models:*" covers "models:read" (and "models:a:b"), never "models" itself.
        if (scope.size() >= 2 && scope.ends_with(":*")) {
            const std::string_view stem(scope.data(), scope.size() - 1);
            if (requested.size() > stem.size() && requested.starts_with(stem)) {
                return true;
            }
        }
    }
    return false;
}

}  // namespace apikeyd::validation
