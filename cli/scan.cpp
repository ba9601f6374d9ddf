#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include "cli/command.hpp"
#include "cli/errors.hpp"
#include "cli/output.hpp"
#include "cli/secret.hpp"
#include "cli/terminal.hpp"
#include "common/key_format.hpp"
#include "common/unique_fd.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

namespace fs = std::filesystem;

// A source tree's files are far smaller; a larger file is a data set or an
// archive, and is named as skipped rather than read whole.
constexpr uint64_t kMaxFileSize = 32 * 1024 * 1024;
// As git decides: a NUL byte among the first 8000 bytes makes a file binary.
constexpr size_t kBinaryProbe = 8000;
// apikeyd's limit for a revoke reason.
constexpr size_t kMaxReasonChars = 256;

struct ScanArgs {
    std::vector<std::string> paths;
    bool revoke = false;
    bool yes = false;
    bool json = false;
};

struct Place {
    std::string file;
    size_t line;
};

struct Found {
    std::string key;
    std::vector<Place> places;
    client::Identification identity;
};

// Distinct key texts in the order found. Their text is wiped when this goes.
struct Findings {
    std::vector<Found> keys;
    size_t files_skipped = 0;

    Findings() = default;
    Findings(const Findings&) = delete;
    Findings& operator=(const Findings&) = delete;
    ~Findings() {
        for (auto& found : keys) {
            wipe(found.key);
        }
    }

    void add(std::string_view key, Place place) {
        for (auto& found : keys) {
            if (found.key == key) {
                found.places.push_back(std::move(place));
                return;
            }
        }
        keys.push_back(Found{std::string(key), {std::move(place)}, {}});
    }
};

bool is_lower_or_digit(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_alnum(char c) {
    return is_lower_or_digit(c) || (c >= 'A' && c <= 'Z');
}

// Every '_' may end a key's prefix. The prefix is the whole run of [a-z0-9]
// before it and the body exactly 38 characters after it, with no letter or
// digit on either side: otherwise "xak_..." would also be found as "ak_..."
// and "k_...", since the checksum covers the body alone, and a key inside a
// longer token is not a key. The checksum then tells key text from text
// that only looks like it, and from a key with a typo.
void find_keys(std::string_view text, const std::string& file, Findings& findings) {
    using namespace key_format;
    constexpr size_t kBody = kRandomLength + kChecksumLength;
    size_t line = 1;
    size_t counted = 0;  // newlines before this offset are in `line`
    for (size_t separator = text.find('_'); separator != std::string_view::npos;
         separator = text.find('_', separator + 1)) {
        if (text.size() - separator - 1 < kBody) {
            break;
        }
        size_t start = separator;
        while (start > 0 && is_lower_or_digit(text[start - 1]) &&
               separator - start <= kMaxPrefixLength) {
            --start;
        }
        const size_t prefix_length = separator - start;
        const size_t end = separator + 1 + kBody;
        if (prefix_length < kMinPrefixLength || prefix_length > kMaxPrefixLength ||
            (start > 0 && is_alnum(text[start - 1])) ||
            (end < text.size() && is_alnum(text[end]))) {
            continue;
        }
        const std::string_view candidate = text.substr(start, end - start);
        if (!parse(candidate)) {
            continue;
        }
        line += static_cast<size_t>(std::count(text.begin() + static_cast<ptrdiff_t>(counted),
                                               text.begin() + static_cast<ptrdiff_t>(start), '\n'));
        counted = start;
        findings.add(candidate, {file, line});
    }
}

void skipped(const std::string& file, std::string_view why, Findings& findings) {
    std::cerr << "apikeyctl: Skipped '" << printable(file) << "': " << why << "." << std::endl;
    ++findings.files_skipped;
}

void scan_file(const fs::path& path, Findings& findings) {
    const std::string file = path.string();
    // O_NONBLOCK: a file replaced by a FIFO since the walk saw it must not
    // hang the open; fstat then tells it is no regular file.
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    const int raw = fd.get();
    if (raw < 0) {
        skipped(file, std::strerror(errno), findings);
        return;
    }
    struct stat st {};
    if (fstat(raw, &st) != 0 || !S_ISREG(st.st_mode)) {
        return;
    }
    if (static_cast<uint64_t>(st.st_size) > kMaxFileSize) {
        skipped(file, "larger than 32 MiB", findings);
        return;
    }
    // The file may hold keys: its copy here is wiped.
    SecretText content;
    char probe[kBinaryProbe];
    ssize_t n;
    while ((n = ::read(raw, probe, sizeof probe)) < 0 && errno == EINTR) {
    }
    if (n < 0) {
        skipped(file, std::strerror(errno), findings);
        return;
    }
    content.append({probe, static_cast<size_t>(n)});
    wipe(probe, sizeof probe);
    if (content.view().find('\0') != std::string_view::npos) {
        return;
    }
    try {
        read_all(raw, content, kMaxFileSize, "file");
    } catch (const UsageError& e) {
        skipped(file, e.what(), findings);
        return;
    }
    find_keys(content.view(), file, findings);
}

// Links met on the way are not followed: they can lead out of the tree or
// round in a loop. A link named on the command line is.
void scan_path(const std::string& root, Findings& findings) {
    std::error_code error;
    const fs::file_status status = fs::status(root, error);
    if (fs::is_regular_file(status)) {
        scan_file(root, findings);
        return;
    }
    if (!fs::is_directory(status)) {
        skipped(root, "not a file or directory", findings);
        return;
    }
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, error);
    for (; !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
        const fs::directory_entry& entry = *it;
        if (entry.is_symlink(error)) {
            continue;
        }
        if (entry.is_directory(error)) {
            // A repository's objects are compressed: nothing to find there.
            if (entry.path().filename() == ".git") {
                it.disable_recursion_pending();
            }
            continue;
        }
        if (entry.is_regular_file(error)) {
            scan_file(entry.path(), findings);
        }
    }
    if (error) {
        skipped(root, "cannot read all of it: " + error.message(), findings);
    }
}

// "ak_…x7Qa": enough to tell keys apart and find them, too little to use.
std::string key_hint(std::string_view key) {
    const size_t separator =
        key.size() - key_format::kRandomLength - key_format::kChecksumLength - 1;
    return std::string(key.substr(0, separator + 1)) + (unicode_output() ? "\u2026" : "...") +
           std::string(key.substr(key.size() - 4));
}

struct Verdict {
    std::string state;
    bool live = false;
};

Verdict verdict_of(const client::Identification& identity, uint64_t now) {
    if (!identity.known) {
        if (text_field(identity.info, "reason") == "rate_limited") {
            return {"not checked: too many unknown keys a minute, scan again later"};
        }
        return {"unknown to apikeyd"};
    }
    const std::string state = text_field(identity.info, "state");
    if (state != "active") {
        return {state};
    }
    if (text_field(identity.info, "text") == "previous") {
        const uint64_t grace_until = number_field(identity.info, "grace_until_usec");
        if (grace_until > now) {
            return {"active (previous text, works until " + absolute_time(grace_until) + ")", true};
        }
        return {"rotated (previous text, no longer works)"};
    }
    return {state, true};
}

struct Row {
    const Place* place;
    const Found* found;
    Verdict verdict;
};

// Ordered by file and line, whatever order the directories were read in.
std::vector<Row> rows_of(const Findings& findings) {
    const uint64_t now = now_usec();
    std::vector<Row> rows;
    for (const auto& found : findings.keys) {
        const Verdict verdict = verdict_of(found.identity, now);
        for (const auto& place : found.places) {
            rows.push_back({&place, &found, verdict});
        }
    }
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
        return std::tie(a.place->file, a.place->line) < std::tie(b.place->file, b.place->line);
    });
    return rows;
}

// At most `max_chars` characters of `text`: when it is longer, "..." and its
// end, which of a path is the part that says most.
std::string last_chars(const std::string& text, size_t max_chars) {
    const auto is_lead = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; };
    const size_t chars = static_cast<size_t>(std::count_if(text.begin(), text.end(), is_lead));
    if (chars <= max_chars) {
        return text;
    }
    size_t start = text.size();
    for (size_t kept = 0; kept < max_chars - 3;) {
        kept += is_lead(text[--start]) ? 1 : 0;
    }
    return "..." + text.substr(start);
}

std::string revoke_reason(const std::string& file) {
    static constexpr std::string_view kStart = "found by apikeyctl scan in ";
    return std::string(kStart) + last_chars(printable(file), kMaxReasonChars - kStart.size());
}

// The live keys to revoke, each once with the first place it was found.
std::vector<const Row*> live_rows(const std::vector<Row>& rows) {
    std::vector<const Row*> live;
    std::set<std::string> ids;
    for (const auto& row : rows) {
        if (row.verdict.live && ids.insert(row.found->identity.id).second) {
            live.push_back(&row);
        }
    }
    return live;
}

bool confirmed(const std::vector<const Row*>& live) {
    std::cerr << "These keys are live and will be revoked:\n";
    Table table({"ID", "NAME", "FOUND IN"});
    for (const Row* row : live) {
        table.add_row({row->found->identity.id, text_field(row->found->identity.info, "name"),
                       row->place->file + ":" + std::to_string(row->place->line)});
    }
    table.print(std::cerr, "  ");
    return confirm("Revoke them?");
}

// Returns the ids revoked; a refusal is reported and the others still tried.
std::vector<std::string> revoke_live(client::Client& daemon, const std::vector<const Row*>& live,
                                     bool json, bool& failed) {
    std::vector<std::string> revoked;
    for (const Row* row : live) {
        const std::string& id = row->found->identity.id;
        try {
            daemon.revoke_key(id, revoke_reason(row->place->file));
        } catch (const client::BusError& e) {
            report_bus_error(e);
            failed = true;
            continue;
        }
        revoked.push_back(id);
        if (!json) {
            std::cout << "Revoked key " << id << "." << std::endl;
        }
    }
    return revoked;
}

nlohmann::json findings_json(const std::vector<Row>& rows) {
    auto array = nlohmann::json::array();
    for (const auto& row : rows) {
        const auto& identity = row.found->identity;
        array.push_back({{"file", row.place->file},
                         {"line", row.place->line},
                         {"key", key_hint(row.found->key)},
                         {"known", identity.known},
                         {"id", identity.id},
                         {"state", row.verdict.state},
                         {"live", row.verdict.live}});
    }
    return array;
}

void print_table(const std::vector<Row>& rows) {
    Table table({"LOCATION", "KEY", "ID", "STATE"});
    for (const auto& row : rows) {
        const auto& identity = row.found->identity;
        table.add_row({row.place->file + ":" + std::to_string(row.place->line),
                       key_hint(row.found->key), identity.known ? identity.id : "-",
                       row.verdict.state});
    }
    table.print(std::cout);
}

int run_scan(const ScanArgs& args) {
    // Refused before the scan, not after a long one.
    if (args.revoke && !args.yes && !is_tty(STDIN_FILENO)) {
        throw UsageError(
            "scan --revoke asks before revoking, on a terminal; without one, add --yes");
    }
    // A path that is not there is most likely mistyped: a clean result for
    // it would be wrong.
    for (const auto& path : args.paths) {
        std::error_code error;
        if (!fs::exists(fs::status(path, error)) || error) {
            throw UsageError("Cannot scan '" + printable(path) +
                             "': " + (error ? error.message() : "it does not exist"));
        }
    }
    Findings findings;
    for (const auto& path : args.paths) {
        scan_path(path, findings);
    }

    std::optional<client::Client> daemon;
    if (!findings.keys.empty()) {
        daemon.emplace(client::Client::connect_system());
        for (auto& found : findings.keys) {
            found.identity = daemon->identify_key(found.key);
        }
    }
    const std::vector<Row> rows = rows_of(findings);
    const std::vector<const Row*> live = live_rows(rows);

    if (!args.json) {
        if (rows.empty()) {
            std::cout << "No apikeyd key text found." << std::endl;
        } else {
            print_table(rows);
            std::set<const Found*> live_texts;
            for (const auto& row : rows) {
                if (row.verdict.live) {
                    live_texts.insert(row.found);
                }
            }
            std::cout << plural(findings.keys.size(), "key text") << " in "
                      << plural(rows.size(), "place") << ", " << live_texts.size()
                      << " of them live." << std::endl;
        }
    }
    bool failed = false;
    std::vector<std::string> revoked;
    if (args.revoke && !live.empty()) {
        if (args.yes || confirmed(live)) {
            revoked = revoke_live(*daemon, live, args.json, failed);
        } else {
            std::cerr << "Nothing was revoked." << std::endl;
        }
    }
    if (args.json) {
        std::vector<std::string> live_ids;
        for (const Row* row : live) {
            live_ids.push_back(row->found->identity.id);
        }
        print_json({{"findings", findings_json(rows)},
                    {"live_keys", live_ids},
                    {"revoked", revoked},
                    {"skipped_files", findings.files_skipped}});
    }
    if (failed) {
        return kExitDaemonError;
    }
    return live.empty() ? kExitOk : kExitInvalid;
}

}  // namespace

Runner setup_scan(CLI::App& command) {
    auto args = std::make_shared<ScanArgs>();
    command.add_option("PATH", args->paths, "Files and directories to search")->required();
    command.add_flag("--revoke", args->revoke,
                     "Revoke the live keys found, after asking on the terminal");
    command.add_flag("-y,--yes", args->yes,
                     "With --revoke: do not ask (needed without a terminal)");
    command.add_flag("--json", args->json,
                     "Print {\"findings\", \"live_keys\", \"revoked\", \"skipped_files\"} as JSON");
    command.footer(
        "Finds apikeyd key text (a prefix, _, 38 characters with a valid checksum) in\n"
        "text files, skipping binary files, .git directories and files over 32 MiB,\n"
        "and asks apikeyd whose each one is. A key text is shown as its prefix and last\n"
        "4 characters only. Exit status 1: a live (active) key was found.\n\n" +
        command.get_footer());
    return [args] { return run_scan(*args); };
}

}  // namespace apikeyd::cli
