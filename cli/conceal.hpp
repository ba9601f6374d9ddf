#pragma once
// The filter of `run --mask`: what a command prints, with every occurrence of
// the secrets it was given, or of their hex or Base64, replaced by
// "<concealed>".

#include <memory>
#include <string_view>
#include <vector>

#include "cli/secret.hpp"

namespace apikeyd::cli {

inline constexpr std::string_view kConcealed = "<concealed>";

// The forms of a secret that `run --mask` conceals besides its bytes: hex
// in lower and upper case, and Base64 in the standard and URL-safe
// alphabets, padded and not. Base64 of a longer stream that holds the
// secret depends on where the secret starts in it, modulo 3: for each of
// the three places, the characters made of the secret's bits alone are a
// form too, so at most one character at each end (up to 4 bits of the
// secret each) is left shown. Built once, for both output streams.
class SecretForms {
  public:
    void add(std::string_view secret);
    // Each form of every secret added; valid while this object lives.
    std::vector<std::string_view> views() const;

  private:
    void keep(const SecretText& form);

    // unique_ptr: a SecretText cannot move.
    std::vector<std::unique_ptr<SecretText>> forms_;
};

class Concealer {
  public:
    // The views must stay valid for the Concealer's lifetime.
    explicit Concealer(std::vector<std::string_view> secrets);

    // Appends to `out` what of the stream so far can be passed on. An end of
    // `chunk` that may be the start of a secret is held back until the next
    // chunk decides, so a secret written in two pieces is still found.
    void feed(std::string_view chunk, SecretText& out);
    // The stream has ended: appends what was held back.
    void finish(SecretText& out);

  private:
    void scan(bool at_end, SecretText& out);

    std::vector<std::string_view> secrets_;
    SecretText pending_;
    SecretText work_;
};

}  // namespace apikeyd::cli
