#!/usr/bin/env python3
"""Writes docs/PERFORMANCE.md and the chart's data from the results that
scripts/bench collected (JSON files in one directory). Standard library only.

usage: report.py RESULTS_DIR OUT_MARKDOWN OUT_CHART_DATA
"""

import json
import statistics
import sys
from pathlib import Path

METHODS = {"verify": "VerifyKey", "get": "GetSecret", "create": "CreateKey"}
FULL_STORE = 1_000_000


def load(results, name):
    return json.loads((results / name).read_text())


def load_lines(results, name):
    return [json.loads(line) for line in (results / name).read_text().splitlines() if line]


def cells(lines):
    """(method, clients) -> line; and (method, clients) -> its paired Ping floor."""
    measured, floors = {}, {}
    for line in lines:
        if line["method"] == "ping":
            floors[(line["floor_for"], line["clients"])] = line
        else:
            measured[(line["method"], line["clients"])] = line
    return measured, floors


def num(value, digits=0):
    return f"{value:,.{digits}f}"


class Targets:
    """Rows of the targets table: what was promised, what was measured."""

    def __init__(self):
        self.rows = []

    def add(self, what, measured, target, higher_is_better, unit, shown=None):
        """Adds a row; returns whether the target was met."""
        passed = measured >= target if higher_is_better else measured < target
        sign = "≥" if higher_is_better else "<"
        self.rows.append(
            (
                what,
                f"{sign} {num(target, 2 if target < 10 else 0)} {unit}",
                shown or f"{num(measured, 2 if measured < 10 else 0)} {unit}",
                "pass" if passed else "**MISS**",
                f"{measured / target:.2f}",
            )
        )
        return passed

    def markdown(self):
        out = [
            "| target | limit | measured (median) | result | measured ÷ limit |",
            "|---|---|---|---|---|",
        ]
        out += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(out)


def micro_us(micro, name, clock="real_time"):
    """The median time of one micro-benchmark run, in µs per operation (or per item)."""
    for b in micro["benchmarks"]:
        if b.get("aggregate_name") == "median" and b["run_name"] == name:
            if "items_per_second" in b:
                return 1e6 / b["items_per_second"]
            return b[clock] * {"ns": 1e-3, "us": 1, "ms": 1e3}[b["time_unit"]]
    return float("nan")


def micro_table(micro):
    out = ["| benchmark | time per operation (median of repetitions) |", "|---|---|"]
    for b in micro["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"]
        if "items_per_second" in b:
            per_item_us = 1e6 / b["items_per_second"]
            shown = f"{per_item_us:,.2f} µs per key"
        else:
            scale = {"ns": 1e-3, "us": 1, "ms": 1e3}[b["time_unit"]]
            shown = f"{b['real_time'] * scale:,.2f} µs"
        out.append(f"| `{name}` | {shown} |")
    return "\n".join(out)


def cpu(line, process):
    return line.get("cpu_us_per_call", {}).get(process, float("nan"))


def load_table(measured, floors):
    out = [
        "| method | clients | calls/s | p50 | p99 | Ping floor calls/s (same run) | ÷ floor "
        "| apikeyd CPU per call (Ping) | dbus-daemon CPU per call (Ping) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    order = sorted(measured.items(), key=lambda kv: (list(METHODS).index(kv[0][0]), kv[0][1]))
    for (method, clients), line in order:
        floor = floors[(method, clients)]
        out.append(
            f"| {METHODS[method]} | {clients} | {num(line['ops_per_sec'])} | "
            f"{line['p50_us']:,.0f} µs | {line['p99_us']:,.0f} µs | "
            f"{num(floor['ops_per_sec'])} | {line['ops_per_sec'] / floor['ops_per_sec']:.2f} | "
            f"{cpu(line, 'apikeyd'):.1f} µs ({cpu(floor, 'apikeyd'):.1f}) | "
            f"{cpu(line, 'dbus-daemon'):.1f} µs ({cpu(floor, 'dbus-daemon'):.1f}) |"
        )
    return "\n".join(out)


def chart_data(measured, floors, path):
    clients = sorted({c for (_, c) in measured})
    rows = ["# clients verify get create ping_floor"]
    for c in clients:
        floor = statistics.median(f["ops_per_sec"] for (m, fc), f in floors.items() if fc == c)
        values = [measured[(m, c)]["ops_per_sec"] for m in METHODS]
        rows.append(" ".join(str(v) for v in [c, *values, floor]))
    Path(path).write_text("\n".join(rows) + "\n")


def cpu_budget_note(share, extra_us, floor_us):
    """What the CPU per call must lose to reach `share` of the floor, ignoring the clients' CPU."""
    needed = extra_us - floor_us * (1 / share - 1)
    if needed > 0:
        return (
            f"Ignoring the clients' own CPU, {share * 100:.0f} % needs apikeyd and dbus-daemon together "
            f"to spend about {needed:.0f} µs less per call."
        )
    return (
        f"By CPU alone {share * 100:.0f} % is within reach (the extra is {extra_us:.1f} µs, the budget "
        f"{floor_us * (1 / share - 1):.1f} µs): the shortfall is the clients' CPU and the floor's drift."
    )


def main():
    results, out_md, out_dat = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    machine = load(results, "machine.json")
    measured, floors = cells(load_lines(results, "load.jsonl"))
    big_verify = load_lines(results, "big_verify.jsonl")
    big_v = next(line for line in big_verify if line["method"] == "verify")
    big_floor = next(line for line in big_verify if line["method"] == "ping")
    big_fill = next(line for line in load_lines(results, "big_fill.jsonl") if line["method"] == "create")
    big_seed = load(results, "big_seed.json")
    big_db = load(results, "big_db.json")
    big_mem = load(results, "big_memory.json")
    big_cold = load(results, "big_cold.json")
    load_mem = load(results, "load_memory.json")
    cold_sw = load(results, "cold_software.json")
    cold_tpm = load(results, "cold_swtpm.json")
    cli_get = load(results, "cli_get.json")
    big_keys = machine["big_keys"]
    big_label = f"{big_keys:,} keys"

    micro = load(results, "micro.json")
    cli_true = load(results, "cli_true.json")
    cli_version = load(results, "cli_version.json")
    t = Targets()
    misses = []
    for method, share in (("verify", 0.80), ("get", 0.70)):
        line, floor = measured[(method, 4)], floors[(method, 4)]
        ratio = line["ops_per_sec"] / floor["ops_per_sec"]
        if not t.add(
            f"{METHODS[method]} throughput ÷ Ping floor, 4 clients",
            ratio * 100,
            share * 100,
            True,
            "%",
            f"{ratio * 100:.0f} % ({num(line['ops_per_sec'])} ÷ {num(floor['ops_per_sec'])} calls/s)",
        ):
            service = micro_us(
                micro, "BM_ServiceVerifyKey" if method == "verify" else "BM_ServiceGetSecret", "cpu_time"
            )
            extra_daemon = cpu(line, "apikeyd") - cpu(floor, "apikeyd")
            extra_bus = cpu(line, "dbus-daemon") - cpu(floor, "dbus-daemon")
            misses.append(
                f"**{METHODS[method]} at {ratio * 100:.0f} % of the Ping floor** (target {share * 100:.0f} %, "
                f"{ratio / share:.2f} of it). The machine's CPU is the limit at 4 clients: a call costs "
                f"apikeyd {cpu(line, 'apikeyd'):.1f} µs against {cpu(floor, 'apikeyd'):.1f} µs for a Ping "
                f"(+{extra_daemon:.1f} µs) and dbus-daemon {cpu(line, 'dbus-daemon'):.1f} µs against "
                f"{cpu(floor, 'dbus-daemon'):.1f} µs (+{extra_bus:.1f} µs). The key service's own share of "
                f"apikeyd's extra is {service:.1f} µs of CPU in process "
                f"(`{'BM_ServiceVerifyKey' if method == 'verify' else 'BM_ServiceGetSecret'}`: the lookup, "
                "the record's MAC and the usage event, with its share of the once-a-second write); the rest "
                "is outside it: reading the call and writing the reply in the bus layer (`dbus/`) and "
                "sd-bus, and a larger message for dbus-daemon to route and for the kernel to copy. "
                + (
                    "Most of that is VerifyKey's info dictionary (17 entries, three containers each, as the "
                    "contract asks): with the dictionary left out of the reply, in an experiment on "
                    "2026-11-27, apikeyd spent 13 µs and dbus-daemon 8 µs less per call, and the ratio went "
                    "from 0.67 to 0.71 in the same session. "
                    if method == "verify"
                    else ""
                )
                + cpu_budget_note(share, extra_daemon + extra_bus, cpu(floor, "apikeyd") + cpu(floor, "dbus-daemon"))
            )
    create4 = measured[("create", 4)]
    insert_ms = micro_us(micro, "BM_StoreInsertDurable/real_time") / 1000
    batched_us = micro_us(micro, "BM_StoreInsertBatched/1000/real_time")
    create1 = measured[("create", 1)]
    sync_note = (
        "Creates that reach the daemon together share one COMMIT (group commit, `daemon/commit_scheduler.hpp`): "
        "each reply still waits for the WAL's `fdatasync` that made its key durable, so a closed-loop "
        "client makes at most one create per sync plus round trip, and 4 clients at most 4. One durable "
        f"insert takes {insert_ms:.1f} ms on this disk (`BM_StoreInsertDurable`), one insert among 1,000 "
        f"in a transaction {batched_us:.0f} µs (`BM_StoreInsertBatched/1000`); 1 client makes "
        f"{num(create1['ops_per_sec'])} /s (p50 {create1['p50_us'] / 1000:.1f} ms), 4 clients "
        f"{create4['ops_per_sec'] / create1['ops_per_sec']:.1f} × that. Beyond it, apikeyd spends "
        f"{cpu(create4, 'apikeyd'):.0f} µs of CPU and dbus-daemon {cpu(create4, 'dbus-daemon'):.0f} µs per "
        "create (the KeyCreated signal goes only to subscribed connections, and the load clients do not "
        "subscribe) on 2 cores shared with "
        "the clients."
    )
    if not t.add("CreateKey, durable before reply, 4 clients", create4["ops_per_sec"], 1000, True, "/s"):
        misses.append(f"**CreateKey at {num(create4['ops_per_sec'])} /s** with 4 clients "
                      f"({create4['ops_per_sec'] / 1000:.2f} of the 1,000 /s target). " + sync_note)
    if not t.add(f"VerifyKey p99 with {big_label}, 4 clients", big_v["p99_us"] / 1000, 1, False, "ms"):
        misses.append(
            f"**VerifyKey p99 {big_v['p99_us'] / 1000:.2f} ms with {big_label}** (p50 "
            f"{big_v['p50_us'] / 1000:.2f} ms). With 4 closed-loop clients a call waits behind the others' "
            "calls in dbus-daemon and apikeyd, both single-threaded, on 2 cores shared with the clients; "
            f"the Ping floor's own p99 in the same cell was {big_floor['p99_us'] / 1000:.2f} ms."
        )
    t.add(f"daemon RSS with {big_label} (after verify and create load)", big_mem["rss_kb"] / 1024, 150, False, "MB")
    t.add(f"database size per key ({big_label})", big_db["db_bytes"] / big_keys, 500, False, "bytes")
    fill_minutes = FULL_STORE / big_fill["ops_per_sec"] / 60
    if not t.add(
        "filling 1,000,000 keys over D-Bus (16 clients; projected from the CreateKey rate at full size)",
        fill_minutes,
        5,
        False,
        "min",
    ):
        misses.append(
            f"**Filling a million keys over D-Bus would take {fill_minutes:.0f} min** "
            f"({num(big_fill['ops_per_sec'])} CreateKey/s with 16 clients at full size; "
            f"{fill_minutes / 5:.1f} × the 5 min target). 16 closed-loop clients put at most 16 creates "
            "in one COMMIT; in process, the same KeyService code filled the store at "
            f"{num(big_seed['seeded'] / big_seed['seconds'])} keys/s with 10,000 keys per batch."
        )
    for label, cold, limit in (("software keyslot", cold_sw, 150), ("tpm2 keyslot on swtpm", cold_tpm, 500)):
        if not t.add(f"cold start to READY=1, {label}", cold["median_ms"], limit, False, "ms"):
            misses.append(f"**Cold start with the {label}: {cold['median_ms']:.0f} ms** (p90 {cold['p90_ms']:.0f} ms).")
    if not t.add("`apikeyctl get ID`, whole process", cli_get["median_ms"], 10, False, "ms"):
        misses.append(
            f"**`apikeyctl get ID` takes {cli_get['median_ms']:.1f} ms.** Starting any process costs "
            f"{cli_true['median_ms']:.1f} ms here (`/bin/true`), and `apikeyctl --version`, which touches no "
            f"bus, {cli_version['median_ms']:.1f} ms: most of the difference is loading its shared libraries "
            "(libsystemd 252 brings libgcrypt, libgpg-error, liblzma, libzstd, liblz4 and libcap with it; "
            "Debian ships no static libsystemd). CLI11 sets up only the command named, in one translation "
            "unit. The D-Bus part (connect, Hello, GetSecret) is the remaining "
            f"{cli_get['median_ms'] - cli_version['median_ms']:.1f} ms."
        )

    chart_data(measured, floors, out_dat)
    seed_rate = big_seed["seeded"] / big_seed["seconds"]
    quick_note = (
        "\n**This is a `--quick` run** (1 s rounds, 100,000 keys in the big store): "
        "for development only; the committed figures come from the full run.\n"
        if machine["mode"] == "quick"
        else ""
    )

    misses_md = (
        "## Where targets are missed, and why\n\n" + "\n\n".join(f"- {m}" for m in misses) + "\n"
        if misses
        else ""
    )
    md = f"""# Performance

Measured by `scripts/bench` ({machine['mode']} run) on {machine['date']}. Every
figure is a median; each D-Bus figure sits beside the Ping floor measured with
the same clients in the same run, round by round in alternation, because the
machine is shared and absolute numbers drift.
{quick_note}
![throughput against clients](PERFORMANCE.png)

## Machine

| | |
|---|---|
| CPU | {machine['cpu']}, {machine['nproc']} cores (`nproc`) |
| memory | {num(machine['memory_mb'])} MB |
| kernel | {machine['kernel']} |
| date | {machine['date']} |
| SQLite / OpenSSL / dbus-daemon | {machine['sqlite']} / {machine['openssl']} / {machine['dbus']} (Debian 12) |
| bus | a private `dbus-daemon` with the project's policy, as in the tests |
| keyslot | software (unlocked), except the swtpm cold start |
| state directory | on the same ext4 disk as the tree (never tmpfs: syncs cost what they cost) |

## Targets

{t.markdown()}

{misses_md}
## Over D-Bus

Each client is a thread with its own `sd_bus` connection making synchronous
calls back to back (closed loop) for {load_lines(results, 'load.jsonl')[0]['seconds_per_round']:g} s per round,
{load_lines(results, 'load.jsonl')[0]['rounds']} rounds per cell; calls/s is the median round, p50/p99
are over every call of every round. The Ping floor is
`org.freedesktop.DBus.Peer.Ping` sent to `org.apikeyd1`: the same round trip
through `dbus-daemon`, answered by sd-bus inside apikeyd without running any
apikeyd code. VerifyKey verifies a pool of 256 valid keys for scope `read`,
GetSecret reads 256 imported 64-byte secrets, CreateKey makes a new key with
two scopes each call (committed and synced before the reply, as the contract
requires; creates that arrive together share one COMMIT). The load tool runs
on the same 2 cores as `dbus-daemon` and the daemon, as a local client would. Daemon RSS after this load:
{load_mem['rss_kb'] / 1024:.1f} MB (peak {load_mem['hwm_kb'] / 1024:.1f} MB).

{load_table(measured, floors)}

## A store of {big_label}

| | |
|---|---|
| filled in process (`apikeyd_seed`: the daemon's KeyService, 10,000 keys per batch) | {big_seed['seconds']:,.1f} s ({num(seed_rate)} keys/s) |
| CreateKey over D-Bus at this size, 16 clients | {num(big_fill['ops_per_sec'])} /s (p50 {big_fill['p50_us'] / 1000:,.1f} ms, p99 {big_fill['p99_us'] / 1000:,.1f} ms) |
| database file | {big_db['db_bytes'] / 2**20:,.1f} MiB = {big_db['db_bytes'] / big_keys:,.0f} bytes per key |
| VerifyKey, 4 clients, 1,000 keys sampled across the store | {num(big_v['ops_per_sec'])} /s, p50 {big_v['p50_us']:,.0f} µs, p99 {big_v['p99_us']:,.0f} µs (Ping floor {num(big_floor['ops_per_sec'])} /s) |
| daemon RSS after verify and create load | {big_mem['rss_kb'] / 1024:.1f} MB (peak {big_mem['hwm_kb'] / 1024:.1f} MB) |
| cold start to READY=1 at this size | {big_cold['median_ms']:.1f} ms |

## Start-up and the CLI

| | median | p90 | runs |
|---|---|---|---|
| cold start to READY=1, software keyslot | {cold_sw['median_ms']:.1f} ms | {cold_sw['p90_ms']:.1f} ms | {cold_sw['runs']} |
| cold start to READY=1, tpm2 keyslot on swtpm | {cold_tpm['median_ms']:.1f} ms | {cold_tpm['p90_ms']:.1f} ms | {cold_tpm['runs']} |
| `apikeyctl get ID`, spawn to exit | {cli_get['median_ms']:.2f} ms | {cli_get['p90_ms']:.2f} ms | {cli_get['runs']} |
| `apikeyctl --version` (no bus), spawn to exit | {cli_version['median_ms']:.2f} ms | {cli_version['p90_ms']:.2f} ms | {cli_version['runs']} |
| `/bin/true`, spawn to exit: any process here | {cli_true['median_ms']:.2f} ms | {cli_true['p90_ms']:.2f} ms | {cli_true['runs']} |

A cold start is spawn of `apikeyd` on an existing state directory until its
`READY=1` arrives on a `NOTIFY_SOCKET` the benchmark owns (warm page cache);
it includes opening the store, unlocking the keyslot and owning the bus name.
The three commands took turns, one run of each per round, so that they met
the same moments of the machine.

## In process (Google Benchmark)

{micro_table(micro)}

## Reading the figures

- The load tool runs as root, like the daemon. Root owns no quota, so
  CreateKey here skips the per-user key count; for other users that count is
  kept in memory by the key service (`BM_ServiceCreateKeyAsOwnerOf/20000`
  against `/0` shows it does not grow with the keys a user owns).
- CreateKey and the other changes are durable before their reply through
  group commit (`daemon/commit_scheduler.hpp`): the changes that reach the daemon
  together share one COMMIT, hence one `fdatasync` of the WAL
  (`synchronous=FULL`), and every reply waits for it. With N closed-loop
  clients at most N creates share a sync, so the rate is about N ÷ (sync +
  round trip) until the CPU limits it.
- Closed-loop clients hide stalls of the event loop from p99 (a blocked loop
  delays only the calls in flight), so p99 here is a floor for open-loop
  traffic at the same rate.

## Running it

```sh
scripts/bench            # the full run; rewrites this file and PERFORMANCE.png
scripts/bench --quick    # 1 s rounds and 100,000 keys, for development
```
"""
    out_md.write_text(md)


if __name__ == "__main__":
    main()
