# Shared by the packaging tests (sourced, not run). Each test is a bash script
# that ctest runs with the source and build directories as arguments; it
# prints what it checked and exits non-zero on the first failure. A tool it
# needs that is missing is a failure, never a silent skip.

set -euo pipefail

if (($# < 2)); then
  echo "usage: $0 SOURCE_DIR BUILD_DIR [CMAKE]" >&2
  exit 2
fi
SOURCE_DIR=$(cd "$1" && pwd)
BUILD_DIR=$(cd "$2" && pwd)
CMAKE=${3:-cmake}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

pass() {
  echo "ok: $*"
}

need_tool() {
  command -v "$1" >/dev/null 2>&1 ||
    fail "$1 is not installed (Debian package ${2:-$1}; scripts/install-deps installs it)"
}

# A temporary directory removed when the test exits, however it exits.
make_temp_dir() {
  TEMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/apikeyd-packaging.XXXXXX")
  trap 'rm -rf "$TEMP_DIR"' EXIT
}

# The directory systemd's pkg-config file names for VARIABLE, else FALLBACK
# under the prefix: the same choice the install rules in CMakeLists.txt make.
systemd_dir() {
  local variable=$1 fallback=$2 dir=""
  if command -v pkg-config >/dev/null 2>&1; then
    dir=$(pkg-config --variable="$variable" systemd 2>/dev/null || true)
  fi
  echo "${dir:-/usr/$fallback}"
}

# `cmake --install` of the build directory into DESTDIR with PREFIX.
install_into() {
  local destdir=$1 prefix=$2
  DESTDIR="$destdir" "$CMAKE" --install "$BUILD_DIR" --prefix "$prefix" >"$destdir.log" 2>&1 ||
    fail "cmake --install failed: $(cat "$destdir.log")"
}

# The value of KEY= in an INI-style FILE (the last one wins, as in systemd).
ini_value() {
  local file=$1 key=$2
  sed -n "s/^$key=//p" "$file" | tail -n 1
}
