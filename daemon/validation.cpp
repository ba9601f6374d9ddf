#include "daemon/validation.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

namespace apikeyd::validation {
namespace {

Error invalid(std::string message) {
    return make_error(ErrorCode::InvalidArgument, std::move(message));
}

// Decodes UTF-8 strictly (no overlongs, no surrogates, nothing above
// U+10FFFF) and counts code points; nullopt when the text is not UTF-8 or
// holds a control character the caller did not allow.
std::optional<size_t> count_text_chars(std::string_view text, bool allow_newlines) {
    size_t count = 0;
    for (size_t i = 0; i < text.size(); ++count) {
        const auto lead = static_cast<uint8_t>(text[i]);
        uint32_t cp = 0;
        size_t len = 0;
        if (lead < 0x80) {
            cp = lead;
            len = 1;
        } else if ((lead & 0xE0) == 0xC0) {
            cp = lead & 0x1Fu;
            len = 2;
        } else if ((lead & 0xF0) == 0xE0) {
            cp = lead & 0x0Fu;
            len = 3;
        } else if ((lead & 0xF8) == 0xF0) {
            cp = lead & 0x07u;
            len = 4;
        } else {
            return std::nullopt;
        }
        if (i + len > text.size()) {
            return std::nullopt;
        }
        for (size_t k = 1; k < len; ++k) {
            const auto cont = static_cast<uint8_t>(text[i + k]);
            if ((cont & 0xC0) != 0x80) {
                return std::nullopt;
            }
            cp = (cp << 6) | (cont & 0x3Fu);
        }
        static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return std::nullopt;
        }
        const bool newline_or_tab = cp == '\n' || cp == '\t';
        if ((cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) && !(allow_newlines && newline_or_tab)) {
            return std::nullopt;
        }
        i += len;
    }
    return count;
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
    std::string out = "'";
    for (size_t i = 0; i < text.size() && i < max; ++i) {
        const char c = text[i];
        out += (c >= 0x20 && c < 0x7F) ? c : '?';
    }
    if (text.size() > max) {
        out += "...";
    }
    return out + "'";
}

Result<void> check_name(std::string_view name) {
    const auto chars = count_text_chars(name, false);
    if (!chars) {
        return invalid("Invalid name: it must be UTF-8 text without control characters");
    }
    if (*chars == 0 || *chars > limits::kMaxNameChars) {
        return invalid("Invalid name: it must be 1-" + std::to_string(limits::kMaxNameChars) +
                       " characters long, not " + std::to_string(*chars));
    }
    return {};
}

Result<void> check_description(std::string_view description) {
    const auto chars = count_text_chars(description, true);
    if (!chars) {
        return invalid(
            "Invalid description: it must be UTF-8 text without control characters other than "
            "newline and tab");
    }
    if (*chars > limits::kMaxDescriptionChars) {
        return invalid("Invalid description: it is " + std::to_string(*chars) +
                       " characters long; the limit is " +
                       std::to_string(limits::kMaxDescriptionChars));
    }
    return {};
}

Result<void> check_revoke_reason(std::string_view reason) {
    const auto chars = count_text_chars(reason, false);
    if (!chars || *chars > limits::kMaxRevokeReasonChars) {
        return invalid("Invalid revoke reason: it must be UTF-8 text of at most " +
                       std::to_string(limits::kMaxRevokeReasonChars) +
                       " characters without control characters");
    }
    return {};
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
