#pragma once
// The filter of `run --mask`: what a command prints, with every occurrence of
// the secrets it was given replaced by "<concealed>".

#include <string_view>
#include <vector>

#include "cli/secret.hpp"

namespace apikeyd::cli {

inline constexpr std::string_view kConcealed = "<concealed>";

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
