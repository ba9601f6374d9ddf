#!/usr/bin/env bash
# `cmake --install` of this build into a staging root (DESTDIR): every file
# the README promises, where systemd and dbus-daemon look for it, with sane
# modes and nothing else; the unit and the activation file name the binary
# that was installed, for --prefix /usr and for another prefix.
source "$(dirname "$0")/lib.sh" "$@"
need_tool "$CMAKE" cmake
make_temp_dir

unit_dir=$(systemd_dir systemdsystemunitdir lib/systemd/system)
sysusers_dir=$(systemd_dir sysusersdir lib/sysusers.d)
tmpfiles_dir=$(systemd_dir tmpfilesdir lib/tmpfiles.d)

root="$TEMP_DIR/root"
install_into "$root" /usr

# path (in the installed system) mode [source file it must equal]
expected=(
  "/usr/sbin/apikeyd 755"
  "/usr/bin/apikeyctl 755"
  "$unit_dir/apikeyd.service 644"
  "$sysusers_dir/apikeyd.conf 644 systemd/apikeyd.sysusers"
  "$tmpfiles_dir/apikeyd.conf 644 systemd/apikeyd.tmpfiles"
  "/usr/share/dbus-1/system.d/org.apikeyd1.conf 644 dbus/org.apikeyd1.conf"
  "/usr/share/dbus-1/system-services/org.apikeyd1.service 644"
  "/usr/share/dbus-1/interfaces/org.apikeyd1.Manager.xml 644 dbus/org.apikeyd1.Manager.xml"
  "/usr/share/man/man8/apikeyd.8 644 docs/man/apikeyd.8"
  "/usr/share/man/man1/apikeyctl.1 644 docs/man/apikeyctl.1"
)
expected_paths=()
for entry in "${expected[@]}"; do
  read -r path mode source <<<"$entry"
  expected_paths+=("$path")
  file="$root$path"
  [[ -f "$file" && ! -L "$file" ]] || fail "$path was not installed (a regular file)"
  actual_mode=$(stat -c %a "$file")
  [[ "$actual_mode" == "$mode" ]] || fail "$path has mode $actual_mode, not $mode"
  [[ "$(stat -c %u:%g "$file")" == "$(id -u):$(id -g)" ]] ||
    fail "$path is owned by $(stat -c %U:%G "$file"), not by the installing user"
  if [[ -n "${source:-}" ]]; then
    cmp -s "$file" "$SOURCE_DIR/$source" || fail "$path differs from $source"
  fi
  pass "$path ($mode)"
done

# Nothing else, and nothing writable by others or set-id.
extra=$(cd "$root" && find . -type f -o -type l | sed 's|^\.||' | sort |
  comm -23 - <(printf '%s\n' "${expected_paths[@]}" | sort))
[[ -z "$extra" ]] || fail "unexpected files installed: $extra"
loose=$(find "$root" -perm /6022 -printf '%m %P\n')
[[ -z "$loose" ]] || fail "group/world-writable or set-id files: $loose"
bad_dirs=$(find "$root" -mindepth 1 -type d ! -perm 755 -printf '%m %P\n')
[[ -z "$bad_dirs" ]] || fail "directories not 0755: $bad_dirs"
pass "no other files; nothing group/world-writable or set-id; directories 0755"

# The binaries are the ones built here, and run.
cmp -s "$root/usr/sbin/apikeyd" "$BUILD_DIR/apikeyd" || fail "installed apikeyd is not the build's"
"$root/usr/sbin/apikeyd" --version >/dev/null || fail "installed apikeyd --version failed"
"$root/usr/bin/apikeyctl" --help >/dev/null || fail "installed apikeyctl --help failed"
pass "binaries are this build's and start"

# Unit and activation file agree with each other and with the layout.
unit="$root$unit_dir/apikeyd.service"
activation="$root/usr/share/dbus-1/system-services/org.apikeyd1.service"
[[ "$(ini_value "$unit" ExecStart)" == /usr/sbin/apikeyd ]] ||
  fail "unit ExecStart= is '$(ini_value "$unit" ExecStart)', not /usr/sbin/apikeyd"
[[ "$(ini_value "$activation" Exec)" == /usr/sbin/apikeyd ]] ||
  fail "activation Exec= is '$(ini_value "$activation" Exec)', not /usr/sbin/apikeyd"
[[ "$(ini_value "$activation" Name)" == org.apikeyd1 ]] || fail "activation Name= is not org.apikeyd1"
[[ "$(ini_value "$unit" BusName)" == org.apikeyd1 ]] || fail "unit BusName= is not org.apikeyd1"
[[ "$(ini_value "$activation" SystemdService)" == apikeyd.service ]] ||
  fail "activation SystemdService= is not apikeyd.service"
[[ "$(ini_value "$activation" User)" == apikeyd && "$(ini_value "$unit" User)" == apikeyd ]] ||
  fail "activation and unit must both run as apikeyd"
grep -q '^u apikeyd ' "$SOURCE_DIR/systemd/apikeyd.sysusers" || fail "sysusers does not create apikeyd"
diff <(grep -v '^ExecStart=' "$unit") <(grep -v '^ExecStart=' "$SOURCE_DIR/systemd/apikeyd.service") >/dev/null ||
  fail "the installed unit differs from systemd/apikeyd.service beyond ExecStart="
pass "unit and activation file: /usr/sbin/apikeyd, org.apikeyd1, apikeyd.service, user apikeyd"

# Another prefix: both files follow the binary.
other="$TEMP_DIR/other"
install_into "$other" /opt/apikeyd
[[ -x "$other/opt/apikeyd/sbin/apikeyd" ]] || fail "--prefix /opt/apikeyd: no sbin/apikeyd"
[[ "$(ini_value "$other$unit_dir/apikeyd.service" ExecStart)" == /opt/apikeyd/sbin/apikeyd ]] ||
  fail "--prefix /opt/apikeyd: unit ExecStart= is '$(ini_value "$other$unit_dir/apikeyd.service" ExecStart)'"
[[ "$(ini_value "$other/opt/apikeyd/share/dbus-1/system-services/org.apikeyd1.service" Exec)" == \
  /opt/apikeyd/sbin/apikeyd ]] || fail "--prefix /opt/apikeyd: activation Exec= not rewritten"
pass "--prefix /opt/apikeyd: ExecStart= and Exec= name /opt/apikeyd/sbin/apikeyd"
