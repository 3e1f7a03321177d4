#!/usr/bin/env bash
# Prints the path of a Python 3.13 interpreter: $PYTHON313, python3.13 on PATH, or one that pyenv installed.
set -uo pipefail

works() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; }

for candidate in "${PYTHON313:-}" "$(command -v python3.13 2>/dev/null)"; do
  if works "$candidate"; then echo "$candidate"; exit 0; fi
done
if command -v pyenv >/dev/null 2>&1; then
  for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$' | sort -rV); do
    candidate="$(PYENV_VERSION="$version" pyenv which python3.13 2>/dev/null)"
    if works "$candidate"; then echo "$candidate"; exit 0; fi
  done
fi
echo "Python 3.13 not found: install it (e.g. 'pyenv install 3.13') or set PYTHON313=/path/to/python3.13" >&2
exit 1
