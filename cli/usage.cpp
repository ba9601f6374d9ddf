#include <time.h>

#include <algorithm>
#include <iostream>
#include <limits>
#include <map>
#include <memory>

#include "cli/args.hpp"
#include "cli/command.hpp"
#include "cli/errors.hpp"
#include "cli/output.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

constexpr uint64_t kUsecPerDay = 86'400'000'000;
constexpr uint32_t kDefaultDays = 30;
// Cells of the longest bar: the chart fits an 80-column terminal.
constexpr uint64_t kBarWidth = 40;

struct UsageArgs {
    std::string id;
    std::string since;
    std::string limit;
    std::string days;
    bool json = false;
};

struct Day {
    uint64_t index;  // days since the epoch, UTC
    uint64_t ok = 0;
    uint64_t refused = 0;
    uint64_t unrecorded = 0;  // of ok + refused, not stored one by one
};

uint32_t option_u32(const std::string& text, std::string_view option) {
    const uint64_t value = *parse_count(text);
    if (value > std::numeric_limits<uint32_t>::max()) {
        throw UsageError(std::string(option) + " " + text + " is too large");
    }
    return static_cast<uint32_t>(value);
}

std::string utc_date(uint64_t day_index) {
    const auto seconds = static_cast<time_t>(day_index * 86'400);
    tm utc{};
    char text[16];
    if (gmtime_r(&seconds, &utc) == nullptr || strftime(text, sizeof text, "%Y-%m-%d", &utc) == 0) {
        return "@" + std::to_string(seconds);
    }
    return text;
}

// Every day of the window, oldest first, with zeros where apikeyd has no
// entry: a gap must show as a gap. The window is the `days` days up to
// today, widened to any day apikeyd answered outside it.
std::vector<Day> every_day(const std::vector<client::Dict>& entries, uint32_t days, uint64_t now) {
    const uint64_t today = now / kUsecPerDay;
    uint64_t first = today >= days - 1 ? today - (days - 1) : 0;
    uint64_t last = today;
    std::map<uint64_t, Day> by_index;
    for (const auto& entry : entries) {
        const uint64_t index = number_field(entry, "day_usec") / kUsecPerDay;
        Day& day = by_index.try_emplace(index, Day{index}).first->second;
        day.ok += number_field(entry, "ok");
        day.refused += number_field(entry, "refused");
        day.unrecorded += number_field(entry, "unrecorded");
        first = std::min(first, index);
        last = std::max(last, index);
    }
    std::vector<Day> filled;
    for (uint64_t index = first; index <= last; ++index) {
        const auto it = by_index.find(index);
        filled.push_back(it != by_index.end() ? it->second : Day{index});
    }
    return filled;
}

uint64_t cells(uint64_t count, uint64_t widest) {
    if (count == 0) {
        return 0;
    }
    // Rounded, but never below one cell: a day with any event must not look
    // like a day without.
    return std::max<uint64_t>(1, (count * kBarWidth + widest / 2) / widest);
}

std::string repeat(std::string_view cell, uint64_t n) {
    std::string out;
    for (uint64_t i = 0; i < n; ++i) {
        out += cell;
    }
    return out;
}

void print_chart(std::ostream& out, const std::vector<Day>& days) {
    const bool unicode = unicode_output();
    const std::string_view ok_cell = unicode ? "\u2588" : "#";
    const std::string_view refused_cell = unicode ? "\u2591" : ".";
    uint64_t widest = 0;
    uint64_t widest_ok = 0;
    uint64_t widest_refused = 0;
    for (const auto& day : days) {
        widest = std::max(widest, day.ok + day.refused);
        widest_ok = std::max(widest_ok, day.ok);
        widest_refused = std::max(widest_refused, day.refused);
    }
    struct Line {
        std::string date;
        uint64_t bar_cells;
        std::string bar;
        const Day* day;
    };
    std::vector<Line> lines;
    uint64_t bar_column = 0;
    for (const auto& day : days) {
        const uint64_t ok = cells(day.ok, widest);
        const uint64_t refused = cells(day.refused, widest);
        lines.push_back({utc_date(day.index), ok + refused,
                         repeat(ok_cell, ok) + repeat(refused_cell, refused), &day});
        bar_column = std::max(bar_column, ok + refused);
    }
    const size_t ok_width = std::to_string(widest_ok).size();
    const size_t refused_width = std::to_string(widest_refused).size();
    out << "Per day (UTC): " << ok_cell << " ok, " << refused_cell << " refused\n";
    for (const auto& line : lines) {
        const std::string ok = std::to_string(line.day->ok);
        const std::string refused = std::to_string(line.day->refused);
        out << line.date << "  " << line.bar << std::string(bar_column - line.bar_cells, ' ')
            << "  " << std::string(ok_width - ok.size(), ' ') << ok << " ok  "
            << std::string(refused_width - refused.size(), ' ') << refused << " refused\n";
    }
}

std::string or_dash(const std::string& text) {
    return text.empty() ? "-" : text;
}

void print_events(std::ostream& out, const std::vector<client::Dict>& events) {
    if (events.empty()) {
        out << "No events.\n";
        return;
    }
    Table table({"TIME", "ACTION", "RESULT", "UID", "PID", "EXE", "UNIT"});
    for (const auto& event : events) {
        const uint64_t pid = number_field(event, "caller_pid");
        table.add_row(
            {absolute_time(number_field(event, "time_usec")), text_field(event, "action"),
             text_field(event, "result"), std::to_string(number_field(event, "caller_uid")),
             pid == 0 ? "-" : std::to_string(pid), or_dash(text_field(event, "caller_exe")),
             or_dash(text_field(event, "caller_unit"))});
    }
    table.print(out);
}

nlohmann::json days_json(const std::vector<Day>& days) {
    auto array = nlohmann::json::array();
    for (const auto& day : days) {
        array.push_back({{"date", utc_date(day.index)},
                         {"day_usec", day.index * kUsecPerDay},
                         {"ok", day.ok},
                         {"refused", day.refused},
                         {"unrecorded", day.unrecorded}});
    }
    return array;
}

int run_usage(const UsageArgs& args) {
    const uint64_t now = now_usec();
    client::Dict options;
    if (!args.since.empty()) {
        const uint64_t back = *parse_duration_seconds(args.since) * 1'000'000;
        options.emplace("since_usec", now > back ? now - back : uint64_t{0});
    }
    if (!args.limit.empty()) {
        options.emplace("limit", option_u32(args.limit, "--limit"));
    }
    const uint32_t days = args.days.empty() ? kDefaultDays : option_u32(args.days, "--days");

    auto daemon = client::Client::connect_system();
    const auto events = daemon.get_usage(args.id, options);
    const auto per_day = every_day(daemon.get_usage_by_day(args.id, {{"days", days}}), days, now);

    if (args.json) {
        auto event_array = nlohmann::json::array();
        for (const auto& event : events) {
            event_array.push_back(to_json(event));
        }
        print_json({{"id", args.id}, {"events", event_array}, {"days", days_json(per_day)}});
        return 0;
    }
    print_events(std::cout, events);
    uint64_t unrecorded = 0;
    for (const auto& day : per_day) {
        unrecorded += day.unrecorded;
    }
    if (unrecorded != 0) {
        std::cout << unrecorded
                  << " more events of these days were counted but not kept one by "
                     "one: their callers had spent their event budget.\n";
    }
    std::cout << '\n';
    print_chart(std::cout, per_day);
    return 0;
}

}  // namespace

Runner setup_usage(CLI::App& command) {
    auto args = std::make_shared<UsageArgs>();
    command.add_option("ID", args->id, "The key's id, as list shows it")
        ->required()
        ->check(key_id());
    command
        .add_option("--since", args->since,
                    "Only events of the last DURATION: a number and s, m, h or d (12h)")
        ->type_name("DURATION")
        ->check(duration());
    command
        .add_option("--limit", args->limit,
                    "At most N events, newest first (default 100, max 1000)")
        ->type_name("N")
        ->check(positive_count());
    command
        .add_option("--days", args->days,
                    "The chart covers the last N days, today included (default 30, max 400)")
        ->type_name("N")
        ->check(positive_count());
    command.add_flag("--json", args->json,
                     "Print {\"id\", \"events\", \"days\"} as JSON (every day of the chart, "
                     "zeros included)");
    command.footer(
        "Shows the key's recent events (verifications, reads, signatures, changes) with\n"
        "who made them, then a bar per day: how many were ok and how many refused.\n"
        "apikeyd keeps the newest 1000 events per key and 10000 per caller UID, and\n"
        "400 days of daily counts. Beyond 600 events a minute from one UID, events\n"
        "are counted per day but not kept one by one.\n\n" +
        command.get_footer());
    return [args] { return run_usage(*args); };
}

}  // namespace apikeyd::cli
