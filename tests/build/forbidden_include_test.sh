#!/usr/bin/env bash
# Proves that the build enforces the parts: a file compiled with a part's
# include directories cannot include a header of a part it must not see.
# For each part it compiles one forbidden include, which must fail because
# the header is not found, and one allowed include, which must compile, so
# the test fails whether the mechanism lets too much through or breaks.
#
# usage: forbidden_include_test.sh CXX PART=DIRS... (DIRS: the part's include
# directories joined with '|', as CMake computes them for the part's target)

set -euo pipefail

if (($# < 2)); then
  echo "usage: $0 CXX PART=DIR|DIR... ..." >&2
  exit 2
fi
cxx=$1
shift
declare -A dirs
for arg in "$@"; do
  dirs[${arg%%=*}]=${arg#*=}
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# compile PART HEADER: compiles a file that includes HEADER with PART's
# include directories; the compiler's output is left in $work/out.
compile() {
  local -a flags=()
  local dir
  IFS='|' read -r -a parts <<<"${dirs[$1]}"
  for dir in "${parts[@]}"; do
    [[ -n $dir ]] && flags+=("-I$dir")
  done
  printf '#include "%s"\n' "$2" >"$work/probe.cpp"
  "$cxx" -std=c++20 -fsyntax-only "${flags[@]}" "$work/probe.cpp" >"$work/out" 2>&1
}

forbidden() {
  if compile "$1" "$2"; then
    echo "FAIL: $1 can include $2"
    failures=$((failures + 1))
  elif grep -qE "$2.*(No such file or directory|file not found)|(No such file or directory|file not found).*$2" "$work/out"; then
    echo "ok: $1 cannot include $2"
  else
    echo "FAIL: including $2 from $1 failed for another reason:"
    cat "$work/out"
    failures=$((failures + 1))
  fi
}

allowed() {
  if compile "$1" "$2"; then
    echo "ok: $1 can include $2"
  else
    echo "FAIL: $1 cannot include $2, which it may:"
    cat "$work/out"
    failures=$((failures + 1))
  fi
}

allowed common common/bus_names.hpp
forbidden common daemon/clock.hpp
allowed core daemon/clock.hpp
allowed core common/c_handle.hpp
forbidden core dbus/manager_object.hpp
forbidden core dbus/client.hpp
allowed cli dbus/client.hpp
allowed cli common/unique_fd.hpp
forbidden cli daemon/key_service.hpp
forbidden cli dbus/manager_object.hpp
forbidden client daemon/clock.hpp

((failures == 0))
