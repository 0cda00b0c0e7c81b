#!/usr/bin/env bash
# Checks that every program in scripts/programs.txt is installed (run after scripts/setup.sh;
# .ci/run does). Prints each missing program with the package that provides it; exit 1 if any.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$PATH:/usr/sbin:/sbin"
missing=0
while read -r prog pkg _; do
  case "$prog" in ''|'#'*) continue ;; esac
  if ! type -P "$prog" >/dev/null 2>&1; then  # a file on PATH, not a builtin
    echo "check-programs: '$prog' is not installed (Debian package $pkg; add it to scripts/setup.sh)" >&2
    missing=1
  fi
done < scripts/programs.txt
[ "$missing" = 0 ] && echo "check-programs: every program the tests run is installed"
exit "$missing"
