#pragma once
// Reading secrets from standard input, a file or the terminal (without
// echo), and writing them out again, all through read(2)/write(2) so that no
// stdio or iostream buffer keeps a copy.

#include <cstddef>
#include <string>
#include <string_view>

#include "cli/secret.hpp"

namespace apikeyd::cli {

bool is_tty(int fd);

// The first line of `fd`, without its line end ("\n" or "\r\n"). Refuses a
// line longer than `max` bytes with a UsageError that names `what`.
void read_first_line(int fd, SecretText& out, size_t max, std::string_view what);

// Everything up to end of file. Refuses more than `max` bytes.
template <typename Bytes>
void read_all(int fd, Secret<Bytes>& out, size_t max, std::string_view what);

// Shows `prompt` on stderr and reads one line from the terminal on stdin
// with echo off. Ctrl-C and other signals put the echo back before the
// process dies.
template <typename Bytes>
void prompt_hidden(std::string_view prompt, Secret<Bytes>& out, size_t max, std::string_view what);

// One line of secret input (a key, a PIN, a recovery key): asked for with
// `prompt` and without echo on a terminal, else the first line of stdin.
void read_secret_line(std::string_view prompt, SecretText& out, size_t max, std::string_view what);

// Shows `question` on stderr and reads one line of stdin into `answer`,
// without surrounding white space; false at the end of input.
bool ask(std::string_view question, std::string& answer);

// Asks a yes/no question on stderr and reads the answer from stdin; only "y"
// or "yes" is yes.
bool confirm(std::string_view question);

void write_all(int fd, std::string_view data);

}  // namespace apikeyd::cli
