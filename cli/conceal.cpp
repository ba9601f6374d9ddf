#include "cli/conceal.hpp"

#include <algorithm>

namespace apikeyd::cli {

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
