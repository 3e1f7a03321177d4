#!/usr/bin/env bash
# make-venv.sh DIR REQUIREMENTS...: (re)creates a Python 3.13 virtual environment DIR with the pinned requirements.
# Says what it is doing, and how long it took: on a first run this is where the minutes go.
set -euo pipefail
dir="$1"; shift
here="$(cd "$(dirname "$0")" && pwd)"
python="$("$here/find-python313.sh")"
started=$SECONDS
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'; then
  echo "$dir: creating a Python 3.13 virtual environment"
  rm -rf "$dir"
  "$python" -m venv "$dir"
fi
for req in "$@"; do
  echo "$dir: installing the pinned packages of $req (a first install takes a minute or more)"
  "$dir/bin/python" -m pip install --quiet -r "$req"
done
"$dir/bin/python" -m pip check >/dev/null
touch "$dir/.installed"
echo "$dir: ready ($((SECONDS - started)) s, $(du -sh "$dir" | cut -f1))"
