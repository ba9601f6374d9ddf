#pragma once
// --copy: a new key on the clipboard for a short while, so that it can be
// pasted where it belongs without being selected on the screen.

#include <string>

namespace apikeyd::cli {

// Copies `key` to the clipboard: with wl-copy under Wayland, else xclip or
// xsel under X11 (the key goes to the tool's standard input, never to its
// arguments, which every user can read), else with an OSC 52 sequence to the
// terminal. A detached process clears the clipboard 45 seconds later if it
// still holds the key (OSC 52 cannot be read back: it is cleared anyway).
// Says on stderr what was done and when it will be cleared. A failure is
// said there too rather than thrown: the key has been shown already.
void copy_to_clipboard(const std::string& key);

}  // namespace apikeyd::cli
