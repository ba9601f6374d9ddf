#!/usr/bin/env bash
# systemd/apikeyd.sysusers and systemd/apikeyd.tmpfiles applied for real to
# temporary roots (--root), never to this machine: the daemon's own system
# user and group, membership of tss (created when no TPM package made it,
# joined when one did), no login, and its state directory 0700.
source "$(dirname "$0")/lib.sh" "$@"
need_tool systemd-sysusers systemd
need_tool systemd-tmpfiles systemd
make_temp_dir

sysusers="$SOURCE_DIR/systemd/apikeyd.sysusers"
tmpfiles="$SOURCE_DIR/systemd/apikeyd.tmpfiles"

# The dry run parses the file and says what it would do.
dry=$(systemd-sysusers --root="$TEMP_DIR/dry" --dry-run "$sysusers" 2>&1) ||
  fail "systemd-sysusers --dry-run failed: $dry"
grep -q "Creating user 'apikeyd'" <<<"$dry" || fail "the dry run does not create apikeyd: $dry"
pass "sysusers dry run: $(tr '\n' ' ' <<<"$dry")"

# A field of NAME's line in a root's passwd or group file.
entry_field() {
  local file=$1 name=$2 field=$3
  awk -F: -v n="$name" -v f="$field" '$1 == n { print $f }' "$file"
}

check_root() {
  local root=$1 tss_gid=$2
  local passwd="$root/etc/passwd" group="$root/etc/group"
  local uid gid
  uid=$(entry_field "$passwd" apikeyd 3)
  gid=$(entry_field "$passwd" apikeyd 4)
  [[ -n "$uid" ]] || fail "no apikeyd user in $passwd: $(cat "$passwd")"
  ((uid > 0 && uid < 1000)) || fail "apikeyd has uid $uid, not a system uid"
  [[ "$(entry_field "$group" apikeyd 3)" == "$gid" ]] || fail "apikeyd's primary group is not its own group"
  [[ "$(entry_field "$passwd" apikeyd 6)" == /var/lib/apikeyd ]] || fail "apikeyd's home is not /var/lib/apikeyd"
  [[ "$(entry_field "$passwd" apikeyd 7)" == */nologin ]] || fail "apikeyd can log in: $(entry_field "$passwd" apikeyd 7)"
  [[ "$(entry_field "$root/etc/shadow" apikeyd 2)" == '!'* ]] || fail "apikeyd has a usable password"
  [[ ",$(entry_field "$group" tss 4)," == *,apikeyd,* ]] || fail "apikeyd is not a member of tss: $(cat "$group")"
  if [[ -n "$tss_gid" ]]; then
    [[ "$(entry_field "$group" tss 3)" == "$tss_gid" ]] || fail "the existing tss group changed its gid"
  fi

  local out
  out=$(systemd-tmpfiles --root="$root" --create "$tmpfiles" 2>&1) || fail "systemd-tmpfiles --create failed: $out"
  local dir="$root/var/lib/apikeyd"
  [[ -d "$dir" ]] || fail "tmpfiles did not create /var/lib/apikeyd"
  [[ "$(stat -c '%a %u:%g' "$dir")" == "700 $uid:$gid" ]] ||
    fail "/var/lib/apikeyd is $(stat -c '%a %u:%g' "$dir"), not 700 $uid:$gid"
  pass "$(basename "$root"): apikeyd uid $uid gid $gid, in tss, nologin, locked; /var/lib/apikeyd 700 $uid:$gid"
}

# A root without tss: sysusers creates the group.
mkdir -p "$TEMP_DIR/no-tss/etc"
out=$(systemd-sysusers --root="$TEMP_DIR/no-tss" "$sysusers" 2>&1) || fail "systemd-sysusers failed: $out"
check_root "$TEMP_DIR/no-tss" ""

# A root where a TPM package made tss already (Debian's tpm-udev): joined, kept.
mkdir -p "$TEMP_DIR/with-tss/etc"
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$TEMP_DIR/with-tss/etc/passwd"
printf 'root:x:0:\ntss:x:109:\n' >"$TEMP_DIR/with-tss/etc/group"
out=$(systemd-sysusers --root="$TEMP_DIR/with-tss" "$sysusers" 2>&1) || fail "systemd-sysusers failed: $out"
check_root "$TEMP_DIR/with-tss" 109

# Applying both again changes nothing (package upgrades run them again).
before=$(cat "$TEMP_DIR/with-tss/etc/passwd" "$TEMP_DIR/with-tss/etc/group")
systemd-sysusers --root="$TEMP_DIR/with-tss" "$sysusers" >/dev/null 2>&1 || fail "second sysusers run failed"
[[ "$before" == "$(cat "$TEMP_DIR/with-tss/etc/passwd" "$TEMP_DIR/with-tss/etc/group")" ]] ||
  fail "a second sysusers run changed passwd or group"
check_root "$TEMP_DIR/with-tss" 109
pass "idempotent"
