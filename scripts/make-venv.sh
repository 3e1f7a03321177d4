#!/usr/bin/env bash
# make-venv.sh DIR REQUIREMENTS...: (re)creates a Python 3.13 virtual environment DIR with the pinned requirements.
set -euo pipefail
dir="$1"; shift
here="$(cd "$(dirname "$0")" && pwd)"
python="$("$here/find-python313.sh")"
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'; then
  rm -rf "$dir"
  "$python" -m venv "$dir"
fi
for req in "$@"; do
  "$dir/bin/python" -m pip install --quiet -r "$req"
done
"$dir/bin/python" -m pip check
touch "$dir/.installed"
