#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_key_format, fuzz_options and fuzz_methods.

The byte formats are those of tests/fuzz/fuzz_support.hpp (Input) and of each
harness; keep this in step with them. fuzz_database's seeds are real
installations, which the harness itself writes:
    APIKEYD_FUZZ_MAKE_SEEDS=tests/fuzz/corpus/fuzz_database build-asan/tests/fuzz/fuzz_database

Usage: tests/fuzz/make_seeds.py   (rewrites tests/fuzz/corpus/<harness>/NN-name)
"""

import pathlib
import shutil
import struct
import zlib

HERE = pathlib.Path(__file__).resolve().parent
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def checksum(random: str) -> str:
    crc = zlib.crc32(random.encode())
    out = ""
    while crc:
        out = BASE62[crc % 62] + out
        crc //= 62
    return out.rjust(6, "0")


def key(prefix: str, random: str) -> str:
    return f"{prefix}_{random}{checksum(random)}"


def write(harness: str, seeds: dict) -> None:
    out = HERE / "corpus" / harness
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for n, (name, data) in enumerate(seeds.items(), 1):
        (out / f"{n:02d}-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())


# ------------------------------------------------------------ key format ---

RANDOM = "cqnLGp9NjmtNL1EihJvc7t3QMlJhc5B7"
write("fuzz_key_format", {
    "valid": key("ak", RANDOM),
    "long-prefix": key("abcdefghijklmnop", "0123456789ABCDEFGHIJKLMNOPQRSTUV"),
    "padded-checksum": key("sk", "mpoLhip4ONuQ6yiI0NjCADK9wuQnwlcs"),
    "bad-checksum": f"ak_{RANDOM}1op5rV",
    "two-separators": key("a_b", RANDOM),
    "upper-prefix": key("AK", RANDOM),
    "truncated": key("ak", RANDOM)[:-1],
    "compose-parts": "\x03abc" + RANDOM,
    "empty": "",
})


# ---------------------------------------------------------------- Input ---

def b(*values: int) -> bytes:
    return bytes(values)


def text(s) -> bytes:
    data = s.encode() if isinstance(s, str) else s
    assert len(data) < 255
    return bytes([len(data)]) + data


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v)


# -------------------------------------------------------------- options ---
# table (pick 7), shape (pick 8; 0-4 dict, 5 dict + trailer, 6 other, 7 none),
# count (pick 7), then per entry: name choice (< 200: kNames[n % 18]), type
# choice (< 160: the table's type for a known name), value.

NAMES = ["expires_in_sec", "max_uses", "prefix", "state", "tcti", "pcrs", "pin",
         "recovery_key", "s", "t", "u", "b", "au", "secret", "", "PIN", "pin ",
         "expires_in_sec\x01", "name", "description", "scopes", "never_expires",
         "rate_limit_per_min", "since_usec", "limit", "uri", "keyslot", "as"]
CREATE, IMPORT, FILTER, KEYSLOT, UNLOCK, EVERY, EMPTY, CHANGES, USAGE = range(9)


def name(n: str) -> bytes:
    return b(NAMES.index(n))


def t_small(v: int) -> bytes:
    return b(0, v)


def t_big(v: int) -> bytes:
    return b(200) + u64(v)


def au(values) -> bytes:
    return b(len(values)) + b"".join(u32(v) for v in values)


RIGHT = b(0)  # the table's type
WRONG_S = b(160)  # kVariantTypes[0] = "s"
WRONG_U = b(162)  # kVariantTypes[2] = "u"

write("fuzz_options", {
    "create": b(CREATE, 0, 3) + name("expires_in_sec") + RIGHT + t_small(60)
    + name("max_uses") + RIGHT + t_big(1 << 40) + name("prefix") + RIGHT + text("sk"),
    "import": b(IMPORT, 0, 1) + name("expires_in_sec") + RIGHT + t_small(1),
    "filter": b(FILTER, 0, 1) + name("state") + RIGHT + text("all"),
    "keyslot": b(KEYSLOT, 0, 3) + name("tcti") + RIGHT + text("device:/dev/tpmrm0")
    + name("pcrs") + RIGHT + au([0, 7, 16]) + name("pin") + RIGHT + text("123456"),
    "unlock": b(UNLOCK, 0, 1) + name("recovery_key") + RIGHT
    + text("abcd-efgh-ijkl-mnop-qrst-uvwx-yz23-4567"),
    "every-type": b(EVERY, 0, 6) + name("s") + RIGHT + text("x") + name("t") + RIGHT
    + t_small(7) + name("u") + RIGHT + u32(7) + name("b") + RIGHT + b(1) + name("au")
    + RIGHT + au([1, 2]) + name("secret") + RIGHT + text("a secret pin value"),
    "duplicate": b(CREATE, 0, 2) + name("max_uses") + RIGHT + t_small(1) + name("max_uses")
    + RIGHT + t_small(2),
    "wrong-type": b(KEYSLOT, 0, 1) + name("pin") + WRONG_U + u32(1234),
    "unknown-name": b(CREATE, 0, 2) + name("prefix") + RIGHT + text("ak") + name("PIN")
    + WRONG_S + text("1234"),
    "secret-wrong-type": b(UNLOCK, 0, 2) + name("pin") + RIGHT + text("correct horse battery")
    + name("recovery_key") + WRONG_U + u32(5),
    "trailer": b(FILTER, 5, 1) + name("state") + RIGHT + text("active"),
    "not-a-dict": b(CREATE, 6, 17) + b(2) + text("a") + text("b"),
    "nothing": b(EMPTY, 7),
    "changes": b(CHANGES, 0, 3) + name("name") + RIGHT + text("renamed") + name("scopes") + RIGHT
    + b(2) + text("read") + text("models:*") + name("never_expires") + RIGHT + b(1),
    "usage": b(USAGE, 0, 2) + name("since_usec") + RIGHT + t_small(0) + name("limit") + RIGHT
    + u32(10),
})


# -------------------------------------------------------------- methods ---
# flags (bit 0: start locked), then calls: op = action | sender << 6, where
# action is an index into the contract's methods (62: advance the clock, 63:
# flush usage, 61: a method with a wrong signature) and sender 0 root, 1 uid
# 1000, 2 uid 1001, 3 none.

METHODS = ["CreateKey", "ImportSecret", "ListKeys", "GetKey", "UpdateKey", "RevokeKey",
           "RotateKey", "VerifyKey", "GetSecret", "Sign", "GetUsage", "GetStatus",
           "AddKeyslot", "RemoveKeyslot", "Unlock"]
ROOT, ALICE, BOB, NOBODY = range(4)
OPTIONS = ["expires_in_sec", "max_uses", "prefix", "state", "name", "description", "scopes",
           "tcti", "pcrs", "pin", "recovery_key", "limit", "since_usec", "never_expires",
           "rate_limit_per_min", "days", "uri", "keyslot"]
WORDS = ["", "tpm2", "recovery", "software", "pkcs11", "read", "write", "models:*",
         "models:read", "*", "hmac-sha256", "active", "revoked", "expired", "all", "k_", "ks_",
         "ak_", "sk", "a", "ak"]
TCTIS = ["device:/dev/tpmrm0", "device:/dev/tpm7", "swtpm:port=1", "mssim:host=localhost,port=1",
         "tabrmd", "pcap:device:/dev/tpm0", "libtss2-tcti-evil.so", "device:/etc/passwd"]
NUMBERS = [0, 1, 2, 3, 60, 3600, 86400]
# The template (tests/fuzz/fuzz_state.cpp): key ids 0 root issued, 1 alice
# (models:*, read; 3 uses), 2 alice (write; expires in 60 s), 3 bob, 4 alice
# revoked, 5 alice imported, 6 root imported; key texts 0-4 of the issued
# ones; slots 0 software, 1 recovery; recovery key 0. What a call returns is
# appended to these lists.


def op(method, sender) -> bytes:
    action = method if isinstance(method, int) else METHODS.index(method)
    return b(action | sender << 6)


def lit(s) -> bytes:
    return b(0) + text(s)


def kid(n: int) -> bytes:
    return b(5, n)


def ktext(n: int) -> bytes:
    return b(6, n)


def slot(n: int) -> bytes:
    return b(7, n)


def recovery(n: int, form: int = 0) -> bytes:
    return b(8, n, form)


def word(w: str) -> bytes:
    return b(9, WORDS.index(w))


def scopes(*ws) -> bytes:
    return b(len(ws)) + b"".join(b(0, WORDS.index(w)) for w in ws)


def num(v: int) -> bytes:
    return b(NUMBERS.index(v))


def opts(*entries) -> bytes:
    return b(len(entries)) + b"".join(entries)


def opt(n: str, value: bytes) -> bytes:
    return b(OPTIONS.index(n), 0) + value


VARIANT_TYPES = ["s", "t", "u", "b", "au", "as", "i", "x", "y", "ay", "d", "o", "g", "n", "q",
                 "at", "v", "a{sv}", "a{ss}", "(su)"]


def opt_typed(n: str, type_: str, value: bytes) -> bytes:
    """An option sent with another type than the contract's."""
    return b(OPTIONS.index(n), 200 + VARIANT_TYPES.index(type_)) + value


def tcti(t: str) -> bytes:
    return b(0, TCTIS.index(t))


def pcrs(*values) -> bytes:
    return b(len(values)) + b"".join(b(0, v) for v in values)


def generated_secret() -> bytes:
    return b(0)


def secret_bytes(data: bytes) -> bytes:
    return b(100) + text(data)


UNLOCKED, LOCKED = b(0), b(1)
write("fuzz_methods", {
    "create-verify-revoke": UNLOCKED
    + op("CreateKey", ALICE) + lit("seed key") + lit("made by a seed") + scopes("read", "models:*")
    + opts(opt("expires_in_sec", num(3600)), opt("prefix", word("sk")))
    + op("VerifyKey", ALICE) + ktext(5) + word("models:read")
    + op("VerifyKey", BOB) + ktext(5) + word("")
    + op("RevokeKey", ALICE) + kid(7) + lit("seed done")
    + op("GetKey", ALICE) + kid(7)
    + op("VerifyKey", ALICE) + ktext(5) + word("read")
    + op("ListKeys", ALICE) + opts(opt("state", word("all"))),
    "import-get": UNLOCKED
    + op("ImportSecret", ALICE) + lit("openai") + lit("") + generated_secret()
    + opts(opt("expires_in_sec", num(60)))
    + op("GetSecret", ALICE) + kid(7)
    + op("GetSecret", ALICE) + kid(5)
    + op("GetSecret", BOB) + kid(5)
    + op("GetSecret", ROOT) + kid(6)
    + op(62, ROOT) + b(0, 61)
    + op("GetSecret", ALICE) + kid(7),
    "keyslots": UNLOCKED
    + op("GetStatus", ROOT)
    + op("AddKeyslot", ALICE) + word("recovery") + opts()
    + op("RemoveKeyslot", ROOT) + slot(0)
    + op("RemoveKeyslot", ROOT) + slot(1)
    + op("AddKeyslot", ROOT) + word("tpm2")
    + opts(opt("tcti", tcti("device:/dev/tpmrm0")), opt("pcrs", pcrs(7, 16)),
           opt("pin", lit("123456")))
    + op("GetStatus", ROOT),
    "add-recovery": UNLOCKED
    + op("AddKeyslot", ROOT) + word("recovery") + opts()
    + op("GetStatus", BOB),
    "locked-unlock": LOCKED
    + op("ListKeys", ALICE) + opts()
    + op("GetStatus", ROOT)
    + op("Unlock", ALICE) + word("recovery") + opts(opt("recovery_key", recovery(0)))
    + op("Unlock", ROOT) + word("recovery") + opts(opt("recovery_key", lit("aaaa-bbbb")))
    + op("Unlock", ROOT) + word("tpm2") + opts(opt("pin", lit("1234")))
    + op("Unlock", ROOT) + word("recovery") + opts(opt("recovery_key", recovery(0, 1)))
    + op("VerifyKey", ALICE) + ktext(1) + word("read"),
    "rate-limit": UNLOCKED
    + (op("VerifyKey", BOB) + lit("ak_nope")) * 10
    + op("VerifyKey", BOB) + ktext(3) + word("read")
    + op("GetKey", BOB) + kid(1),
    "expiry-and-uses": UNLOCKED
    + op("VerifyKey", ALICE) + ktext(1) + word("models:read")
    + op("VerifyKey", ALICE) + ktext(1) + word("read")
    + op("VerifyKey", ALICE) + ktext(1) + word("read")
    + op(63, ROOT)
    + op("VerifyKey", ALICE) + ktext(2) + word("write")
    + op(62, ROOT) + b(100, 61)
    + op("VerifyKey", ALICE) + ktext(2) + word("write")
    + op("ListKeys", ROOT) + opts(opt("state", word("expired"))),
    "contract-extras": UNLOCKED
    + op("UpdateKey", ALICE) + kid(1) + opts(opt("name", lit("renamed")))
    + op("RotateKey", ALICE) + kid(1) + num(60)
    + op("Sign", ALICE) + kid(5) + word("hmac-sha256") + text("payload")
    + op("GetUsage", ALICE) + kid(1) + opts(),
    "wrong-calls": UNLOCKED
    + op("GetStatus", NOBODY)
    + op("CreateKey", ALICE) + lit("") + lit("") + b(255) + opts()
    + op(61, ROOT) + b(METHODS.index("GetKey"), 0)
    + op(61, ALICE) + b(METHODS.index("RevokeKey"), 1, 1) + kid(1) + lit("") + lit("extra")
    + op("ImportSecret", ALICE) + lit("big") + lit("") + b(200) + opts()
    + op("CreateKey", ALICE) + lit("x") + lit("") + scopes("read")
    + opts(opt_typed("max_uses", "s", lit("3")))
    + op("ListKeys", ALICE) + opts(opt("state", lit("bogus")), opt("state", word("all"))),
})
