#!/usr/bin/env bash
# `systemd-analyze verify` has nothing to say about the installed unit: no
# unknown or misspelt setting, no bad value, dependencies that exist, and
# Documentation= man pages that the install provides.
#
# verify insists that ExecStart= exists, so it checks a copy of the unit
# installed into a staging root with ExecStart= pointed at the staged binary
# (the only line that differs; --root= cannot help: it would need dbus.socket
# and the rest of systemd inside the staging root). The man pages are looked
# up in the staging root with MANPATH.
source "$(dirname "$0")/lib.sh" "$@"
need_tool systemd-analyze systemd
need_tool "$CMAKE" cmake
make_temp_dir

root="$TEMP_DIR/root"
install_into "$root" /usr
unit_dir=$(systemd_dir systemdsystemunitdir lib/systemd/system)
[[ -x "$root/usr/sbin/apikeyd" ]] || fail "no staged /usr/sbin/apikeyd"

mkdir "$TEMP_DIR/units"
unit="$TEMP_DIR/units/apikeyd.service"
sed "s|^ExecStart=/usr/sbin/apikeyd|ExecStart=$root/usr/sbin/apikeyd|" \
  "$root$unit_dir/apikeyd.service" >"$unit"
grep -qx "ExecStart=$root/usr/sbin/apikeyd" "$unit" || fail "could not point ExecStart= at the staged binary"

man_check=--man=yes
if ! command -v man >/dev/null 2>&1; then
  # Without man(1) verify would report every page missing; the pages'
  # presence is then left to install_layout_test.sh.
  echo "note: man(1) is not installed; Documentation= is not checked here"
  man_check=--man=no
fi

status=0
output=$(MANPATH="$root/usr/share/man" systemd-analyze verify "$man_check" "$unit" 2>&1) || status=$?
echo "systemd-analyze verify printed: ${output:-(nothing)}; exit status $status"
[[ -z "$output" ]] || fail "systemd-analyze verify complained:
$output"
((status == 0)) || fail "systemd-analyze verify exited with $status"
pass "systemd-analyze verify: no complaint"
