"""``python -m docrag.demo [FOLDER]``: index the sample documents and run three example queries.

Uses the default profile when its weights are on this machine, else ``lite`` (fully offline), and says so.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

import docrag
from docrag.indexes.models import ModelUnavailableError

QUERIES = [
    "Which table gives the psoriasis cases and controls by IL1B_511 genotype?",
    "What did Miss Watson tell Huck about praying for things?",
    "circuit schematic drawn in xfig",
]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else "examples")
    out = Console() if Console().is_terminal else Console(width=150)
    db = Path(".docrag-demo")
    shutil.rmtree(db, ignore_errors=True)
    try:
        index = docrag.open(db / "cpu", profile="cpu")
        report = index.add([folder])
    except ModelUnavailableError as exc:
        out.print(
            f"[yellow]notice[/] the default profile's weights are not on this machine ({exc.model}); "
            "using the offline [bold]lite[/] profile (all-MiniLM-L6-v2 + BM25 + OCR) instead.",
            highlight=False,
        )
        index = docrag.open(db / "lite", profile="lite")
        report = index.add([folder])
    out.print(
        f"indexed {report.indexed} documents, {report.pages} pages in {report.seconds:.1f} s "
        f"(profile {index.settings.profile}, fusion {index.settings.search.fusion})"
    )
    for f in report.failed:
        out.print(f"[red]failed[/] {f['file']}: {f['error']}", highlight=False)
    for query in QUERIES:
        table = Table(title=query, title_justify="left")
        for col in ("#", "file", "page", "score", "route/label", "legs: raw score (rank)", "snippet"):
            table.add_column(col, overflow="fold")
        for i, h in enumerate(index.search(query, k=3), start=1):
            legs = ", ".join(f"{leg} {v['score']:.3f} ({v['rank']})" for leg, v in h.legs.items())
            table.add_row(
                str(i), Path(h.file).name, str(h.page), f"{h.score:.3f}", f"{h.route}/{h.label}", legs, h.snippet[:90]
            )
        out.print(table)
    return 0 if report.indexed else 1


if __name__ == "__main__":
    raise SystemExit(main())
