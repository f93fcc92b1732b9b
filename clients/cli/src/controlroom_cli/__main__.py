"""``python -m controlroom_cli``: the same as ``controlroom``."""

from controlroom_cli.app import main

main()
