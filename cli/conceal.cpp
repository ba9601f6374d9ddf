#include "cli/conceal.hpp"

#include <algorithm>

#include "common/encoding.hpp"

namespace apikeyd::cli {
namespace {

// The Base64 characters, in `alphabet`, that are made of the bits of `secret`
// alone when it starts `offset` (0, 1 or 2) bytes into a group of three.
void append_base64_core(SecretText& out, std::string_view secret, size_t offset,
                        encoding::Base64Alphabet alphabet) {
    SecretText shifted;
    shifted.append(std::string_view("\0\0", offset));
    shifted.append(secret);
    SecretText encoded;
    encoding::append_base64(encoded, shifted.view(), alphabet, encoding::Padding::Without);
    // A character holds bits [6j, 6j + 6); the secret's are [8 offset, 8 (offset + size)).
    const size_t first = (8 * offset + 5) / 6;
    const size_t end = 8 * (offset + secret.size()) / 6;
    if (end > first) {
        out.append(encoded.view().substr(first, end - first));
    }
}

}  // namespace

void SecretForms::add(std::string_view secret) {
    SecretText form;
    const auto next = [&] {
        keep(form);
        form.clear();
    };
    form.append(secret);
    next();
    for (const auto letter_case : {encoding::HexCase::Lower, encoding::HexCase::Upper}) {
        encoding::append_hex(form, secret, letter_case);
        next();
    }
    for (const auto alphabet :
         {encoding::Base64Alphabet::Standard, encoding::Base64Alphabet::UrlSafe}) {
        for (const auto padding : {encoding::Padding::With, encoding::Padding::Without}) {
            encoding::append_base64(form, secret, alphabet, padding);
            next();
        }
        for (size_t offset = 0; offset < 3; ++offset) {
            append_base64_core(form, secret, offset, alphabet);
            next();
        }
    }
}

void SecretForms::keep(const SecretText& form) {
    const auto same = [&form](const auto& kept) { return kept->view() == form.view(); };
    if (form.empty() || std::any_of(forms_.begin(), forms_.end(), same)) {
        return;
    }
    auto copy = std::make_unique<SecretText>();
    copy->append(form.view());
    forms_.push_back(std::move(copy));
}

std::vector<std::string_view> SecretForms::views() const {
    std::vector<std::string_view> views;
    for (const auto& form : forms_) {
        views.push_back(form->view());
    }
    return views;
}

Concealer::Concealer(std::vector<std::string_view> secrets) {
    for (const auto secret : secrets) {
        if (!secret.empty()) {
            secrets_.push_back(secret);
        }
    }
}

void Concealer::feed(std::string_view chunk, SecretText& out) {
    work_.clear();
    work_.append(pending_.view());
    work_.append(chunk);
    scan(false, out);
}

void Concealer::finish(SecretText& out) {
    work_.clear();
    work_.append(pending_.view());
    scan(true, out);
}

// At each position the longest secret that starts there is replaced. When a
// secret could start there but the data ends before it would, the rest waits
// for more data (unless the stream has ended): it may yet be a longer match.
void Concealer::scan(bool at_end, SecretText& out) {
    const std::string_view data = work_.view();
    size_t passed = 0;  // data[0, passed) is in `out` already
    size_t at = 0;
    while (at < data.size()) {
        const std::string_view rest = data.substr(at);
        size_t longest = 0;
        bool undecided = false;
        for (const auto secret : secrets_) {
            if (secret.front() != rest.front()) {
                continue;
            }
            if (rest.size() >= secret.size()) {
                if (rest.starts_with(secret)) {
                    longest = std::max(longest, secret.size());
                }
            } else if (!at_end && secret.starts_with(rest)) {
                undecided = true;
            }
        }
        if (undecided) {
            break;
        }
        if (longest == 0) {
            ++at;
            continue;
        }
        out.append(data.substr(passed, at - passed));
        out.append(kConcealed);
        at += longest;
        passed = at;
    }
    out.append(data.substr(passed, at - passed));
    pending_.clear();
    pending_.append(data.substr(at));
}

}  // namespace apikeyd::cli
