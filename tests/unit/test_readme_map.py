"""The README's map ("Where things are") matches the tree: every path it names exists, and every
top-level folder and every package of chalicelib/ and tools/ has a row."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def mapped_paths() -> set[str]:
    section = re.search(r"^## Where things are\n(.*?)(?=^## |\Z)", (ROOT / "README.md").read_text(), re.S | re.M)
    assert section, "README has no 'Where things are' section"
    paths: set[str] = set()
    for row in re.findall(r"^\| (.+?) \|", section.group(1), re.M):
        names = re.findall(r"`([^`]+)`", row)
        first = names[0] if names else ""
        folder = first if first.endswith("/") else (first.rsplit("/", 1)[0] + "/" if "/" in first else "")
        for i, name in enumerate(names):
            # `chalicelib/errors.py`, `lazy.py`: the later names of a row live beside the first
            paths.add(name if i == 0 or "/" in name else folder + name)
    return paths


def test_every_path_the_map_names_exists():
    # GIVEN the README's map WHEN each path is looked up THEN it is in the tree
    missing = sorted(p for p in mapped_paths() if not (ROOT / p).exists())
    assert missing == []


def test_every_folder_and_package_has_a_row():
    # GIVEN the tracked tree's top-level folders and the packages of chalicelib/ and tools/
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [Path(line) for line in tracked.splitlines()]
    folders = {f"{f.parts[0]}/" for f in files if len(f.parts) > 1}
    packages = {
        f"{'/'.join(f.parts[:2])}/" for f in files if len(f.parts) > 2 and f.parts[0] in ("chalicelib", "tools")
    }
    # WHEN they are compared with the map THEN each has a row (tests/ by its suites)
    mapped = mapped_paths()
    unmapped = sorted(p for p in folders | packages if p not in mapped and not any(m.startswith(p) for m in mapped))
    assert unmapped == []
