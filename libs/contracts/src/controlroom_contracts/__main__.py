"""``python -m controlroom_contracts export DIR``: write JSON Schemas and the AsyncAPI document."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controlroom_contracts.export import export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controlroom_contracts")
    commands = parser.add_subparsers(dest="command", required=True)
    export_cmd = commands.add_parser("export", help="write JSON Schemas and asyncapi.json")
    export_cmd.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    written = export(args.directory)
    print(f"wrote {len(written)} files under {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
