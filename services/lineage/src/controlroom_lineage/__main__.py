"""``python -m controlroom_lineage``: run the lineage service."""

from __future__ import annotations

from controlroom_lineage.app import create_app
from controlroom_lineage.settings import LineageSettings
from controlroom_runtime.serve import serve


def main() -> None:
    settings = LineageSettings()
    serve("lineage", create_app(settings), settings)


if __name__ == "__main__":
    main()
