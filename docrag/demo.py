"""``python -m docrag.demo [FOLDER]``: index the sample documents and run four example queries.

Uses the default profile when its weights are on this machine or can be downloaded, else ``lite`` (fully
offline), and says why. Ends with where the database is and two commands to try on it.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

import docrag
from docrag.indexes.model_errors import OFFLINE, UNREACHABLE, ModelUnavailableError

QUERIES = [
    "Which table gives the psoriasis cases and controls by IL1B_511 genotype?",
    "What did Miss Watson tell Huck about praying for things?",
    "circuit schematic drawn in xfig",
    "table of puffin and guillemot breeding pairs by cliff",  # examples/mixed/report.docx (converted by LibreOffice)
]


def why_lite(exc: ModelUnavailableError) -> str:
    """Why the default profile could not be used, in the words of ``docrag index``'s error."""
    if exc.kind == OFFLINE:
        return "the default profile's models are not on this machine and downloads are off (HF_HUB_OFFLINE=1)"
    if exc.kind == UNREACHABLE:
        from huggingface_hub import constants

        why = f"the hub cannot be reached ({constants.ENDPOINT})"
        return f"the default profile's models are not on this machine and {why}"
    return f"the default profile's models cannot be had ({exc.model}: {exc.detail})"


def docrag_command() -> str:
    """How to run ``docrag`` from here: the console script beside this Python, relative when it is below."""
    exe = Path(sys.executable).with_name("docrag")
    if not exe.exists() or shutil.which("docrag") == str(exe):
        return "docrag"
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else "examples")
    out = Console() if Console().is_terminal else Console(width=150)
    say = lambda *parts: out.print(Text.assemble(*parts), soft_wrap=True)  # noqa: E731 - no markup from paths
    db = Path(".docrag-demo")
    shutil.rmtree(db, ignore_errors=True)
    try:
        index = docrag.open(db / "cpu", profile="cpu")
        report = index.add([folder])
    except ModelUnavailableError as exc:
        lite = "using the offline lite profile (all-MiniLM-L6-v2 + BM25 + OCR) instead."
        say(("notice", "yellow"), f" {why_lite(exc)}; {lite}")
        index = docrag.open(db / "lite", profile="lite")
        report = index.add([folder])
    settings = index.settings
    say(
        f"indexed {report.indexed} documents, {report.pages} pages in {report.seconds:.1f} s "
        f"(profile {settings.profile}, fusion {settings.search.fusion})"
    )
    for f in report.failed:
        say(("failed", "red"), f" {f['file']}: {f['error']}")
    labels = index.stats()["labels"]
    visual = labels.get("layout", 0) + labels.get("scanned", 0)
    if settings.visual is None and visual:
        say(
            f"{visual} of {report.pages} pages look visual to the router (label layout or scanned below), but the "
            f"{settings.profile} profile has no visual model: they are searched by their text (the text layer, or "
            "OCR for scans) with the text leg and BM25, like every other page."
        )
    top = None
    for query in QUERIES:
        table = Table(title=query, title_justify="left")
        for col in ("#", "file", "page", "score", "route/label", "legs: raw score (rank)", "snippet"):
            table.add_column(col, overflow="fold")
        for i, h in enumerate(index.search(query, k=3), start=1):
            top = top or (query, h)
            legs = ", ".join(f"{leg} {v['score']:.3f} ({v['rank']})" for leg, v in h.legs.items())
            table.add_row(
                str(i), Path(h.file).name, str(h.page), f"{h.score:.3f}", f"{h.route}/{h.label}", legs, h.snippet[:90]
            )
        out.print(table)
    where = Path(index.db)
    say(("database", "bold"), f" {where.resolve()} (profile {settings.profile}). Try, from this folder:")
    exe, quoted = docrag_command(), shlex.quote(str(where))
    say(f"  {exe} search {shlex.quote('zoo time series')} --db {quoted} -k 5")
    if top is not None:
        query, hit = top
        name = shlex.quote(Path(hit.file).name)
        say(f"  {exe} show {name} {hit.page} --db {quoted} --query {shlex.quote(query)} --out page.png")
    else:
        say(f"  {exe} stats --db {quoted}")
    return 0 if report.indexed else 1


if __name__ == "__main__":
    raise SystemExit(main())
