"""``python -m docrag.cli``: the same app and commands as the ``docrag`` console script."""

from docrag.entry import main

main()
