#!/usr/bin/env bash
# systemd/apikeyd.service as `systemd-analyze security` rates it: an overall
# exposure of 1.0 or less, and no weakness beyond the five that
# docs/SECURITY.md ("The systemd sandbox") explains. A unit that loses, say,
# PrivateUsers= stays under 1.0 but fails here, so the sandbox cannot erode
# quietly. A newer systemd with new checks fails here too: then judge the new
# check, and harden the unit or document and list it below.
source "$(dirname "$0")/lib.sh" "$@"
need_tool systemd-analyze systemd
need_tool python3

unit="$SOURCE_DIR/systemd/apikeyd.service"

# The offline analysis reads the unit file alone, not the running system.
report=$(systemd-analyze security --offline=true --threshold=10 "$unit" 2>&1) ||
  fail "systemd-analyze security rates the unit above 1.0 (or failed):
$report"
echo "$report"

score=$(sed -n 's/^.*Overall exposure level for apikeyd\.service: \([0-9][0-9.]*\) .*$/\1/p' <<<"$report")
[[ -n "$score" ]] || fail "no overall exposure level in the report"
awk -v s="$score" 'BEGIN { exit !(s <= 1.0) }' || fail "exposure $score is above 1.0"
pass "overall exposure $score (at most 1.0)"

# Every check the unit does not pass, by name.
weak=$(systemd-analyze security --offline=true --json=short "$unit" | python3 -c '
import json, sys
for check in json.load(sys.stdin):
    if not check["set"] or check["exposure"] not in (None, "0.0", 0):
        print(check["name"])')
expected_weak="DeviceAllow=
PrivateDevices=
RestrictAddressFamilies=~AF_UNIX
RootDirectory=/RootImage=
SupplementaryGroups="
if [[ "$(sort <<<"$weak")" != "$expected_weak" ]]; then
  fail "the checks the unit does not pass changed; expected exactly:
$expected_weak
got:
$(sort <<<"$weak")"
fi
pass "the only open checks are the five docs/SECURITY.md explains"

# "Nothing else" for devices: one DeviceAllow=, the TPM resource manager.
device_allow=$(grep '^DeviceAllow=' "$unit" || true)
[[ "$device_allow" == "DeviceAllow=/dev/tpmrm0 rw" ]] ||
  fail "DeviceAllow= must be /dev/tpmrm0 rw alone, is: $device_allow"
grep -qx 'DevicePolicy=closed' "$unit" || fail "DevicePolicy=closed missing"
pass "devices: /dev/tpmrm0 rw only, policy closed"
