"""``docrag index`` and ``docrag remove``: writing to a database."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from .app import ConfigOpt, DbOpt, JsonOpt, ProfileOpt, app, call, escape, fail, note, open_db


def _parse_meta(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: use key=value", param_hint="--meta")
        out[key.strip()] = value
    return out


def rebuild_command(paths: list[Path], db: str, profile: str | None, config: Path | None) -> str:
    """This command, rebuilding ``db`` (what a model mismatch suggests)."""
    import shlex

    words = ["docrag", "index", *map(str, paths), "--db", db]
    words += ["--profile", profile] if profile else []
    words += ["--config", str(config)] if config else []
    return shlex.join([*words, "--rebuild"])


@app.command()
def index(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files or folders (searched recursively): PDFs, images, Office, HTML, Markdown, text."),
    ],
    db: DbOpt,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    meta: Annotated[list[str], typer.Option("--meta", help="key=value stored with each document.")] = [],  # noqa: B006
    workers: Annotated[
        int | None, typer.Option("--workers", min=0, help="Parsing processes (default: usable cores; 0: in-process).")
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option("--wait", help="Seconds to wait for another writer of --db (default: as long as it takes)."),
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="local (this machine's processes) or ray (Ray Data stages).")
    ] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="With --engine ray: the Ray cluster to join (default: start one).")
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Start --db over with this profile's models (every document is indexed again; the old rows go "
            "once the models are here).",
        ),
    ] = False,
    progress_every: Annotated[
        float,
        typer.Option(
            "--progress-every",
            min=0,
            help="When stderr is not a terminal (a log, CI): a one-line progress summary every this many seconds "
            "(0: none).",
        ),
    ] = 15.0,
    formats: Annotated[
        str | None,
        typer.Option(
            "--formats",
            help="Read only these kinds of file, comma-separated: pdf, image, office, html, text (default: all).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Index documents (PDFs, images, Office and OpenDocument files, HTML, Markdown, plain text): parse, route,
    embed, store. Unchanged files are skipped; re-runs resume."""
    from docrag.parsers import UnknownFormatError, parse_families

    try:
        families = parse_families(formats)
    except UnknownFormatError as exc:
        fail(f"--formats: {exc}")
    seen = {"files": -1, "skipped": 0, "documents": 0, "pages": 0}  # the run's progress (files: -1 until listed)
    try:
        report, interrupted = _index(
            paths,
            db,
            profile,
            config,
            meta,
            workers,
            wait,
            engine,
            address,
            rebuild,
            as_json,
            seen,
            progress_every,
            families,
        )
    except KeyboardInterrupt:  # before the run had its report: opening, models, the writer lock, the workers
        report, interrupted = None, True
    if interrupted:
        _interrupted(report, paths, seen, as_json, families)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        from rich.console import Console

        from docrag.parsers import FAMILIES, skipped_line

        out = Console(soft_wrap=True)  # one line per item when piped: grep and scripts read lines
        copies = report.duplicates
        extra = f", {copies} {'copy' if copies == 1 else 'copies'} recorded" if copies else ""
        others = len(report.not_documents)
        extra += f", {others} not {'a document' if others == 1 else 'documents'}" if others else ""
        out.print(
            f"indexed {report.indexed}, skipped {report.skipped} unchanged{extra}, removed {report.removed}; "
            f"{report.pages} pages (visual {report.routes.get('visual', 0)}, text "
            f"{report.routes.get('text', 0)}) in {report.seconds:.1f} s → {db}",
            highlight=False,
        )
        if report.not_documents:
            line = skipped_line(report.not_documents, report.families or FAMILIES)
            out.print(line, style="dim", highlight=False, markup=False)
        for folder in report.excluded:
            out.print(
                f"note: left out {folder}, the database itself (it lies in a folder being indexed)",
                style="dim",
                highlight=False,
                markup=False,
            )
        verbose = bool(ctx.find_root().params.get("verbose"))
        said = [w for w in report.warnings if w.get("source") == "parser"]  # what parsers said, by file and page
        for w in report.warnings if verbose else [w for w in report.warnings if w not in said]:
            out.print(f"[yellow]warning[/] {escape(w['file'])}: {escape(w['warning'])}", highlight=False)
        if said and not verbose:
            files = len({w["file"] for w in said})
            out.print(f"[dim]{len(said)} parser warning(s) in {files} file(s): `docrag -v index …` shows them[/]")
        for f in report.failed:
            out.print(f"[red]failed[/] {escape(f['file'])}: {escape(f['error'])}", highlight=False)
        for u in report.unsearchable:
            pages = "" if u["pages"] == [1] else f" (pages {', '.join(map(str, u['pages']))})"
            out.print(f"[yellow]warning[/] {escape(u['file'])}{pages}: {escape(u['reason'])}", highlight=False)
        if report.pending:
            out.print(f"[red]{report.pending} document(s) not indexed[/]: run the same command again to resume")
    if report.pending:
        raise typer.Exit(code=1)
    if report.failed and not (report.indexed or report.skipped or report.duplicates):
        raise typer.Exit(code=1)


class _Ticker:
    """Progress where no bar can be drawn (stderr is a log or a pipe): a one-line summary on stderr every
    ``every`` seconds, as the run's events arrive."""

    def __init__(self, every: float, seen: dict[str, int], db: str) -> None:
        self.every, self.seen, self.db = every, seen, db
        self.t0 = self.last = time.monotonic()

    def __call__(self, event: str) -> None:
        now = time.monotonic()
        if event == "start" or now - self.last < self.every:
            return
        self.last = now
        s = self.seen
        done = s["documents"] + s["skipped"]  # begun, or settled without embedding (unchanged, copies, failed)
        note(
            f"indexing {self.db}: {done}/{max(s['files'], 0)} files, {s['pages']} pages embedded, {now - self.t0:.0f} s"
        )


def _index(
    paths: list[Path],
    db: str,
    profile: str | None,
    config: Path | None,
    meta: list[str],
    workers: int | None,
    wait: float | None,
    engine: str,
    address: str | None,
    rebuild: bool,
    as_json: bool,
    seen: dict[str, int],
    progress_every: float = 0.0,
    families: frozenset[str] | None = None,
) -> tuple[Any, bool]:
    """The run, with progress bars (or, when stderr is not a terminal, a line every ``progress_every`` seconds):
    (its report, whether Ctrl-C stopped it). ``seen`` counts its progress."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from docrag.indexes.store import is_uri
    from docrag.pipeline.ingest import Interrupted

    if not is_uri(db) and Path(db).exists() and not Path(db).is_dir():
        fail(f"{db} is a file, not a database folder: give --db a folder (new or a docrag database)")
    missing = [p for p in paths if not p.exists() and not p.is_symlink()]
    if len(missing) == len(paths):
        fail(f"no such file or folder: {', '.join(map(str, missing))}")
    redo = rebuild_command(paths, db, profile, config)
    idx = open_db(db, profile, config, must_exist=False, rebuild=rebuild, rebuild_command=redo, interrupted=None)
    metadata = _parse_meta(meta)
    err = Console(stderr=True)

    def on_lock_wait(holder: str) -> None:
        note(f"waiting: {db} is being written by {holder}")

    with Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
        transient=True,
    ) as bars:
        tasks: dict[str, Any] = {}
        quiet = as_json or err.is_terminal or not progress_every
        tick = None if quiet else _Ticker(progress_every, seen, db)

        def progress(event: str, data: dict[str, Any]) -> None:
            _progress(event, data)
            if tick is not None:
                tick(event)

        def _progress(event: str, data: dict[str, Any]) -> None:
            if event == "start":
                seen["files"] = data["files"]
                tasks["docs"] = bars.add_task("documents", total=data["files"])
                tasks["pages"] = bars.add_task("pages", total=0)
            elif event == "document":
                seen["documents"] += 1
                bars.update(tasks["pages"], total=bars.tasks[tasks["pages"]].total + data["pages"])
                bars.advance(tasks["docs"])
            elif event == "skipped":
                seen["skipped"] += 1
                bars.advance(tasks["docs"])
            elif event == "pages":
                seen["pages"] += data["n"]
                bars.advance(tasks["pages"], data["n"])
            elif event == "leg":
                key = f"leg:{data['leg']}"
                if key not in tasks:
                    tasks[key] = bars.add_task(data["leg"], total=None)
                bars.advance(tasks[key], data["n"])

        try:
            report = call(
                lambda: idx.add(
                    paths,
                    metadata,
                    progress,
                    workers=workers,
                    lock_wait_s=wait,
                    on_lock_wait=on_lock_wait,
                    engine=engine,
                    address=address,
                    formats=families,
                ),
                idx.settings.profile,
                None,
                rebuild=redo,
            )
        except Interrupted as exc:
            return exc.report, True
    return report, False


def _interrupted(
    report: Any, paths: list[Path], seen: dict[str, int], as_json: bool, families: frozenset[str] | None = None
) -> NoReturn:
    """Ctrl-C, whenever it came: the documents complete, those pending and how to resume; exit 130. Pending:
    the run's count, or (while it was still listing and hashing the files, or before) the files it had not
    settled yet."""
    from docrag.pipeline.ingest import IngestReport

    files = seen["files"]
    if report is None:  # no report: the run had not begun (or, files listed, it had done its documents)
        report = IngestReport(indexed=max(0, seen["documents"]) if files >= 0 else 0)
    if files < 0:  # not listed yet: every document under the paths is still to do
        try:
            from docrag.parsers import list_documents

            files = len(list_documents(paths, families=families).files)
        except KeyboardInterrupt:  # a second Ctrl-C: no count
            files = 0
    report.pending = max(report.pending, files - seen["skipped"] - seen["documents"])
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "interrupted": True}))
    note(f"interrupted: {report.indexed} documents complete, {report.pending} pending — run the same command to resume")
    raise typer.Exit(code=130)


@app.command()
def remove(
    targets: Annotated[
        list[str], typer.Argument(help="Paths (files or folders), doc_ids, or file names (one indexed file each).")
    ],
    db: DbOpt,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove documents from the database: by path, folder, doc_id, or a file name that one indexed file has."""
    idx = open_db(db, None, config)
    n = call(lambda: idx.remove(*targets))
    typer.echo(json.dumps({"removed": n}) if as_json else f"removed {n} document(s)")
    if n == 0:
        note(f"nothing in {db} matched {', '.join(targets)} (a path as indexed, a folder, a doc_id or a file name)")
        raise typer.Exit(code=1)
