"""Write the API's OpenAPI description (chalicelib/web/openapi.py) to openapi.json.

python -m tools.ops.openapi            write it
python -m tools.ops.openapi --check    exit 1 if openapi.json differs from what the code describes
"""

import argparse
import json
import sys

from chalicelib.web.openapi import document
from tools.stage import ROOT

PATH = ROOT / "openapi.json"


def rendered() -> str:
    """The description as committed: indented JSON, keys in the code's order."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.check:
        if not PATH.exists() or PATH.read_text() != rendered():
            print("openapi.json is not what the code describes: run python -m tools.ops.openapi", file=sys.stderr)
            return 1
        return 0
    PATH.write_text(rendered())
    print(f"wrote {PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
