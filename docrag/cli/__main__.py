"""``python -m docrag.cli``: the same app and commands as the ``docrag`` console script."""

from docrag.cli import main

main()
