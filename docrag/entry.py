"""The ``docrag`` console script. Loading the commands (typer, rich and the library: about half a second) happens
here, so that Ctrl-C in that time, or between the commands' own handlers, ends as Ctrl-C in a command does:
``interrupted`` and exit 130, no traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from docrag.cli import app

        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
