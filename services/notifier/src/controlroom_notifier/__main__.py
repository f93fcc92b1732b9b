"""``python -m controlroom_notifier``: run the notifier."""

from __future__ import annotations

from controlroom_notifier.app import create_app
from controlroom_notifier.settings import NotifierSettings
from controlroom_runtime.serve import serve


def main() -> None:
    settings = NotifierSettings()
    serve("notifier", create_app(settings), settings)


if __name__ == "__main__":
    main()
