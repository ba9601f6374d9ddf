#!/usr/bin/env bash
# Does the unit's sandbox fit the daemon? Runs this build's apikeyd as an
# unprivileged user (nobody, standing in for apikeyd) under strace on a
# private bus, drives it through apikeyctl (create, list, show, verify,
# import, get, status, recovery keyslot, revoke, enough bad guesses to hit the
# rate limit, a restart that unlocks from the state directory), with a
# software keyslot and with a pkcs11 keyslot on SoftHSM whose PIN comes from
# the credential pkcs11-pin. Then checks the recorded system calls against
# the unit itself:
#   - every call is in the allow list of its SystemCallFilter= lines, as
#     `systemd-analyze syscall-filter` expands the groups, so the filter
#     never answers EPERM to the daemon;
#   - every socket is AF_UNIX (RestrictAddressFamilies=AF_UNIX);
#   - no mapping is writable and executable (MemoryDenyWriteExecute=yes).
# Not covered: the TPM device itself (/dev/tpmrm0 takes open, read, write
# and poll, all allowed; swtpm is reached over TCP, which the unit forbids).
# A sanitizer build is skipped: its runtime makes calls of its own.
source "$(dirname "$0")/lib.sh" "$@"
need_tool systemd-analyze systemd
need_tool strace
need_tool dbus-daemon dbus-daemon
need_tool python3
need_tool softhsm2-util softhsm2
need_tool pkcs11-tool opensc
if ((EUID != 0)); then
  echo "SKIP: runs as root (the daemon is started as nobody)"
  exit 77
fi
if grep -qa -e __asan_init -e __ubsan_handle_ -e __sanitizer_cov_ "$BUILD_DIR/apikeyd"; then
  echo "SKIP: a sanitizer build; its runtime makes system calls of its own"
  exit 77
fi
make_temp_dir
chmod 755 "$TEMP_DIR"
unit="$SOURCE_DIR/systemd/apikeyd.service"
softhsm_module=/usr/lib/softhsm/libsofthsm2.so
[[ -f "$softhsm_module" ]] || fail "SoftHSM's module $softhsm_module is missing (package softhsm2)"

# The allow list the unit's SystemCallFilter= lines make, in their order: the
# first without ~ starts an allow list, later ~ lines remove from it.
systemd-analyze syscall-filter >"$TEMP_DIR/groups" 2>"$TEMP_DIR/groups.stderr" || fail "systemd-analyze syscall-filter failed"
python3 - "$unit" "$TEMP_DIR/groups" >"$TEMP_DIR/allowed" <<'PY' || fail "cannot compute the allow list"
import sys
unit, groups_file = sys.argv[1], sys.argv[2]
groups, current = {}, None
for line in open(groups_file):
    text = line.strip()
    if line.startswith("@"):
        current = text.split()[0]
        groups[current] = []
    elif text and not text.startswith("#") and current:
        groups[current].append(text.split()[0])
def expand(name):
    if not name.startswith("@"):
        return {name}
    if name not in groups:
        sys.exit("unknown group " + name)
    return set().union(*(expand(member) for member in groups[name]))
allowed = None
for line in open(unit):
    if not line.startswith("SystemCallFilter="):
        continue
    value = line.split("=", 1)[1].strip()
    deny = value.startswith("~")
    names = set().union(*(expand(n) for n in value.lstrip("~").split()))
    if deny:
        allowed = (allowed or set()) - names
    else:
        allowed = (allowed or set()) | names
if not allowed:
    sys.exit("the unit has no SystemCallFilter= allow list")
print("\n".join(sorted(allowed)))
PY
pass "the unit's filter allows $(wc -l <"$TEMP_DIR/allowed") system calls"

# A private bus with the project's policy, its daemon-user section naming
# nobody (as for apikeyd in production).
bus_dir="$TEMP_DIR/bus"
mkdir -p "$bus_dir/system.d"
sed 's/<policy user="apikeyd">/<policy user="nobody">/' "$SOURCE_DIR/dbus/org.apikeyd1.conf" \
  >"$bus_dir/system.d/org.apikeyd1.conf"
cat >"$bus_dir/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$bus_dir/socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  </policy>
  <includedir>$bus_dir/system.d</includedir>
</busconfig>
CONF
dbus-daemon --config-file="$bus_dir/bus.conf" --nofork --print-address=1 >"$bus_dir/address" 2>"$bus_dir/log" &
bus_pid=$!
daemon_pid=""
cleanup() {
  if [[ -n "$daemon_pid" ]]; then
    pkill -KILL -P "$daemon_pid" 2>/dev/null # the traced apikeyd, then strace
    kill -KILL "$daemon_pid" 2>/dev/null
  fi
  kill "$bus_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$TEMP_DIR"
}
trap cleanup EXIT
for _ in $(seq 100); do [[ -s "$bus_dir/address" ]] && break; sleep 0.1; done
[[ -s "$bus_dir/address" ]] || fail "dbus-daemon did not start: $(cat "$bus_dir/log")"
export DBUS_SYSTEM_BUS_ADDRESS
DBUS_SYSTEM_BUS_ADDRESS=$(head -n 1 "$bus_dir/address")
ctl="$BUILD_DIR/apikeyctl"

# start_daemon SCENARIO RUN [apikeyd args...]: apikeyd as nobody under strace.
start_daemon() {
  local scenario=$1 run=$2
  shift 2
  strace -f -qq -u nobody -o "$TEMP_DIR/$scenario/trace.$run" \
    "$BUILD_DIR/apikeyd" --state-directory="$TEMP_DIR/$scenario/state" "$@" \
    2>"$TEMP_DIR/$scenario/apikeyd.$run.log" &
  daemon_pid=$!
  for _ in $(seq 300); do
    "$ctl" status >/dev/null 2>&1 && return 0
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "$scenario: apikeyd did not come up: $(cat "$TEMP_DIR/$scenario/apikeyd.$run.log")"
}

stop_daemon() {
  local scenario=$1 pid
  pid=$(pgrep -P "$daemon_pid" -x apikeyd || true)
  kill -TERM "${pid:-$daemon_pid}"
  wait "$daemon_pid" || true
  daemon_pid=""
}

exercise() {
  local scenario=$1 key id secret_id
  key=$("$ctl" create survey -s read -s write -y 2>/dev/null | grep '^ak_') || fail "$scenario: create failed"
  id=$("$ctl" list --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
  "$ctl" show "$id" >/dev/null || fail "$scenario: show failed"
  echo "$key" | "$ctl" verify -s read >/dev/null || fail "$scenario: verify failed"
  echo "$key" | "$ctl" verify -s admin >/dev/null && fail "$scenario: verify with a wrong scope passed"
  secret_id=$(printf 's3cret' | "$ctl" import survey-secret --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') || fail "$scenario: import failed"
  [[ "$("$ctl" get "$secret_id")" == s3cret ]] || fail "$scenario: get failed"
  "$ctl" keyslot add recovery >/dev/null 2>&1 || fail "$scenario: keyslot add recovery failed"
  "$ctl" keyslot list >/dev/null || fail "$scenario: keyslot list failed"
  "$ctl" revoke "$id" -r done >/dev/null || fail "$scenario: revoke failed"
  for _ in $(seq 110); do
    echo ak_0000000000000000000000000000000000000 | "$ctl" verify >/dev/null 2>&1 || true
  done
  sleep 1.2 # the usage flush timer
}

# run_scenario NAME [first-start args...]
run_scenario() {
  local scenario=$1
  shift
  mkdir -p "$TEMP_DIR/$scenario/state"
  chown nobody: "$TEMP_DIR/$scenario/state"
  chmod 700 "$TEMP_DIR/$scenario/state"
  start_daemon "$scenario" 1 "$@"
  exercise "$scenario"
  stop_daemon "$scenario"
  start_daemon "$scenario" 2
  "$ctl" status | grep -q 'State: *unlocked' || fail "$scenario: not unlocked after the restart: $("$ctl" status)"
  "$ctl" list >/dev/null || fail "$scenario: list after the restart failed"
  stop_daemon "$scenario"
}

run_scenario software --insecure-software-keyslot

# SoftHSM token readable by nobody; the PIN as a systemd credential.
hsm="$TEMP_DIR/hsm"
mkdir -p "$hsm/tokens" "$hsm/credentials"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$hsm/tokens" >"$hsm/softhsm2.conf"
export SOFTHSM2_CONF="$hsm/softhsm2.conf"
softhsm2-util --init-token --free --label apikeyd --pin 1234 --so-pin 87654321 >/dev/null ||
  fail "softhsm2-util --init-token failed"
pkcs11-tool --module "$softhsm_module" --token-label apikeyd --login --pin 1234 \
  --keypairgen --key-type rsa:2048 --id 01 --label master >/dev/null 2>&1 || fail "pkcs11-tool --keypairgen failed"
printf 1234 >"$hsm/credentials/pkcs11-pin"
chown -R nobody: "$hsm"
chmod 700 "$hsm/credentials"
export CREDENTIALS_DIRECTORY="$hsm/credentials"
run_scenario pkcs11 "--pkcs11-uri=pkcs11:token=apikeyd;id=%01?module-path=$softhsm_module"
unset CREDENTIALS_DIRECTORY SOFTHSM2_CONF

# What the daemon did, all runs together.
cat "$TEMP_DIR"/*/trace.* >"$TEMP_DIR/trace"
sed -E 's/^[0-9]+ +//; s/^<\.\.\. ([a-z0-9_]+) resumed>.*/\1/; s/^([a-z0-9_]+)\(.*/\1/' "$TEMP_DIR/trace" |
  grep -E '^[a-z0-9_]+$' | sort -u >"$TEMP_DIR/used"
[[ $(wc -l <"$TEMP_DIR/used") -gt 20 ]] || fail "strace recorded almost nothing: $(head -c 2000 "$TEMP_DIR/trace")"
echo "system calls used: $(tr '\n' ' ' <"$TEMP_DIR/used")"
denied=$(comm -23 "$TEMP_DIR/used" "$TEMP_DIR/allowed")
[[ -z "$denied" ]] || fail "the unit's SystemCallFilter= would refuse: $denied"
pass "all $(wc -l <"$TEMP_DIR/used") system calls the daemon made are in the unit's allow list"

families=$(grep -oE 'socket\((AF_[A-Z0-9]+|[0-9]+)' "$TEMP_DIR/trace" | sort -u | sed 's/socket(//' | tr '\n' ' ')
[[ "$families" == "AF_UNIX " ]] || fail "sockets of families other than AF_UNIX: $families"
pass "sockets: AF_UNIX only"

wx=$(grep -E '^[0-9]+ +(mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE' "$TEMP_DIR/trace" || true)
[[ -z "$wx" ]] || fail "writable and executable mappings (MemoryDenyWriteExecute=): $wx"
pass "no writable and executable mapping"
