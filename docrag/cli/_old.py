"""The ``docrag`` command line (typer + rich). ``--json`` output is meant for scripts."""

from __future__ import annotations

import json
import logging
import os
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from docrag.config import Limits, RouterConfig, VisualPages

app = typer.Typer(
    name="docrag",
    help="Retrieve the right page from PDFs and images: route, index, search.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens (to stderr).")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Never download checkpoints (as HF_HUB_OFFLINE=1); missing ones fail.")
    ] = False,
) -> None:
    if offline:  # before huggingface_hub is imported, which reads it once
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["DOCRAG_OFFLINE"] = "1"
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for noisy in ("pdfminer", "unstructured", "PIL", "transformers", "sentence_transformers"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        # Weight-loading bars stay off (docrag.indexes.models); downloads show huggingface_hub's progress.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def load_config(path: Path | None) -> dict[str, Any]:
    """Read a TOML config file (tables ``[router]`` and ``[limits]``); a clear error when it is broken."""
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--config") from None


def _short(path: str, width: int = 40) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1) :]


@app.command()
def route(
    paths: Annotated[list[Path], typer.Argument(help="PDF/image files or folders (searched recursively).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (pages, errors).")] = False,
    visual_pages: Annotated[
        VisualPages | None,
        typer.Option(
            "--visual-pages",
            help="auto: decide per page; all or none: a policy; ambiguous-both: as auto, and unsure text pages "
            "get visual vectors too. [default: the config's, else auto]",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (tables such as \\[router] and \\[limits]).")
    ] = None,
) -> None:
    """Route every page: visual (ColPali leg) or text (unified leg), with a label and the reasons."""
    from pydantic import ValidationError
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from docrag.config import Settings, one_line
    from docrag.parsers import discover
    from docrag.pipeline.router import route_files

    raw = load_config(config)
    unknown = sorted(set(raw) - set(Settings.model_fields))
    if unknown:
        known = ", ".join(f"[{k}]" for k in Settings.model_fields if k not in ("profile", "offline"))
        raise typer.BadParameter(
            f"{config}: unknown table(s) {', '.join(unknown)} (known: {known})", param_hint="--config"
        )
    for table in ("router", "limits"):
        if not isinstance(raw.get(table, {}), dict):
            raise typer.BadParameter(f"{config}: [{table}] must be a table of settings", param_hint="--config")
    router_raw = dict(raw.get("router", {}))
    if visual_pages is not None:
        router_raw["visual_pages"] = visual_pages
    try:
        router_cfg = RouterConfig(**router_raw)
    except ValidationError as exc:
        raise typer.BadParameter(f"{config}: {one_line(exc, 'router.')}", param_hint="--config") from None
    try:
        limits = Limits(**raw.get("limits", {}))
    except ValidationError as exc:
        raise typer.BadParameter(f"{config}: {one_line(exc, 'limits.')}", param_hint="--config") from None

    err = Console(stderr=True)
    show_progress = not as_json and err.is_terminal
    files = [f.path for f in discover(paths)]
    with Progress(
        TextColumn("[bold]routing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err,
        disable=not show_progress,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(files))

        def on_file(path: Path, n_pages: int) -> None:
            progress.update(task, advance=1, description=_short(str(path)))

        report = route_files(paths, router_cfg, limits, on_file=on_file)

    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_table(report)
    if not report.pages:
        raise typer.Exit(code=1)


def _print_table(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console()
    if not out.is_terminal:
        out = Console(width=160)
    table = Table(title="docrag routing", show_lines=False)
    for col, kw in (
        ("file", {}),
        ("page", {"justify": "right"}),
        ("route", {}),
        ("label", {}),
        ("conf", {"justify": "right"}),
        ("reasons", {"overflow": "fold"}),
    ):
        table.add_column(col, **kw)
    colours = {"visual": "magenta", "text": "cyan"}
    for r in report.pages:
        table.add_row(
            Path(r.file).name,
            str(r.page),
            f"[{colours[r.route]}]{r.route}[/]",
            r.label,
            f"{r.confidence:.2f}",
            "; ".join(r.reasons),
        )
    out.print(table)
    s = report.summary()
    counts = ", ".join(f"{k}: {s[k]}" for k in ("text", "visual") if s[k])
    out.print(f"{s['pages']} pages ({counts})" if s["pages"] else "no pages")
    if s["ambiguous"] and report.policy in ("auto", "ambiguous-both"):
        extra = s["visual_from_ambiguity"]
        if report.policy == "ambiguous-both":
            cost = f"{extra} of the visual pages are unsure text pages sent to both legs"
        else:
            cost = f"--visual-pages ambiguous-both would add {extra} visual page{'s' * (extra != 1)}"
        base = max(s["visual_without_ambiguity"], 1)
        out.print(
            f"{s['ambiguous']} page{'s' * (s['ambiguous'] != 1)} ambiguous (confidence < {s['ambiguous_below']:.2f}); "
            f"{cost} (+{100 * extra / base:.0f}% visual)"
        )
    if report.skipped:
        out.print(f"[dim]skipped {len(report.skipped)} file(s) that are not PDFs or images[/]")
    for w in report.warnings:
        out.print(f"[yellow]warning[/] {w['file']}: {w['warning']}")
    for e in report.errors:
        where = f"{e['file']} page {e['page']}" if "page" in e else e["file"]
        out.print(f"[red]error[/] {where}: {e['error']}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()


# -- indexing and search ---------------------------------------------------------------------------------------

ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="cpu (default), gpu or lite.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
DbOpt = Annotated[
    str,
    typer.Option(
        "--db",
        help="Database: a folder, or s3://bucket/prefix (endpoint and credentials from the environment, AWS_*, "
        "or \\[storage_options] in --config).",
    ),
]


def _is_uri(db: str) -> bool:
    return "://" in db
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _open(db: str, profile: str | None, config: Path | None, *, must_exist: bool = True) -> Any:
    """The index at ``db``; a ``--db`` that is not a docrag database is one line and exit 2 (except for
    ``index``, which creates it)."""
    from docrag.api import open_index
    from docrag.indexes.store import StoreError

    if must_exist:
        _require_db(db, config)
    try:
        return open_index(db, profile, config)
    except (ValueError, StoreError) as exc:
        _fail(str(exc))


def _require_db(db: str, config: Path | None = None) -> None:
    if _is_uri(db):
        from docrag.config import load_settings
        from docrag.indexes.store import Store, StoreError

        try:
            tables = Store.unchecked(db, load_settings(None, config).storage_options).list_tables()
        except (ValueError, StoreError) as exc:
            _fail(str(exc))
        if "documents" not in tables:
            _fail(f"no docrag database at {db} (no documents table there): run `docrag index PATH --db {db}` first")
        return
    path = Path(db)
    if not path.exists():
        _fail(f"no database at {db}: run `docrag index PATH --db {db}` first")
    if not path.is_dir() or not (path / "documents.lance").exists():
        _fail(f"{db} is not a docrag database (no documents table in it)")


def _fail(message: str, code: int = 2) -> None:
    """One line on stderr (no markup read from the message: paths may contain brackets), then exit."""
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, soft_wrap=True).print(Text.assemble(("error", "red"), " ", message))
    raise typer.Exit(code=code)


def _models_guard(fn: Any, index: Any) -> Any:
    """Run ``fn``; a missing checkpoint, a storage failure or a bad option becomes one clear line; Ctrl-C
    says so and exits 130."""
    from docrag.indexes.models import ModelUnavailableError
    from docrag.indexes.store import StoreError

    try:
        return fn()
    except ModelUnavailableError as exc:
        hint = "" if index.settings.profile == "lite" else " — or use `--profile lite`, which works fully offline"
        _fail(f"{exc}{hint}")
    except (ValueError, StoreError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", code=130)


def _parse_meta(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: use key=value", param_hint="--meta")
        out[key.strip()] = value
    return out


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="PDF/image files or folders (searched recursively).")],
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
    as_json: JsonOpt = False,
) -> None:
    """Index PDFs and images: parse, route, embed, store. Unchanged files are skipped; re-runs resume."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from docrag.pipeline.ingest import Interrupted

    if not _is_uri(db) and Path(db).exists() and not Path(db).is_dir():
        _fail(f"{db} is a file, not a database folder: give --db a folder (new or a docrag database)")
    if engine not in ("local", "ray"):
        _fail(f"unknown engine {engine!r}: choose local or ray")
    if address and engine != "ray":
        _fail("--address is for --engine ray")
    missing = [p for p in paths if not p.exists() and not p.is_symlink()]
    if len(missing) == len(paths):
        _fail(f"no such file or folder: {', '.join(map(str, missing))}")
    idx = _open(db, profile, config, must_exist=False)
    metadata = _parse_meta(meta)
    err = Console(stderr=True)

    def on_lock_wait(holder: str) -> None:
        err.print(f"waiting: {db} is being written by {holder}", highlight=False, markup=False, soft_wrap=True)

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

        def progress(event: str, data: dict[str, Any]) -> None:
            if event == "start":
                tasks["docs"] = bars.add_task("documents", total=data["files"])
                tasks["pages"] = bars.add_task("pages", total=0)
            elif event == "document":
                bars.update(tasks["pages"], total=bars.tasks[tasks["pages"]].total + data["pages"])
                bars.advance(tasks["docs"])
            elif event == "skipped":
                bars.advance(tasks["docs"])
            elif event == "pages":
                bars.advance(tasks["pages"], data["n"])
            elif event == "leg":
                key = f"leg:{data['leg']}"
                if key not in tasks:
                    tasks[key] = bars.add_task(data["leg"], total=None)
                bars.advance(tasks[key], data["n"])

        try:
            report = _models_guard(
                lambda: idx.add(
                    paths,
                    metadata,
                    progress,
                    workers=workers,
                    lock_wait_s=wait,
                    on_lock_wait=on_lock_wait,
                    engine=engine,
                    address=address,
                ),
                idx,
            )
        except Interrupted as exc:
            r = exc.report
            bars.stop()
            msg = f"interrupted: {r.indexed} documents complete, {r.pending} pending — run the same command to resume"
            if as_json:
                typer.echo(json.dumps({**r.to_dict(), "interrupted": True}))
            err.print(msg, highlight=False, markup=False)
            raise typer.Exit(code=130) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        out = Console(soft_wrap=True)  # one line per item when piped: grep and scripts read lines
        extra = f", {report.duplicates} copies recorded" if report.duplicates else ""
        out.print(
            f"indexed {report.indexed}, skipped {report.skipped} unchanged{extra}, removed {report.removed}; "
            f"{report.pages} pages (visual {report.routes.get('visual', 0)}, text "
            f"{report.routes.get('text', 0)}) in {report.seconds:.1f} s → {db}",
            highlight=False,
        )
        if report.not_documents:
            out.print(f"[dim]skipped {len(report.not_documents)} file(s) that are not PDFs or images[/]")
        for w in report.warnings:
            out.print(f"[yellow]warning[/] {_escape(w['file'])}: {_escape(w['warning'])}", highlight=False)
        for f in report.failed:
            out.print(f"[red]failed[/] {_escape(f['file'])}: {_escape(f['error'])}", highlight=False)
        if report.pending:
            out.print(f"[red]{report.pending} document(s) not indexed[/]: run the same command again to resume")
    if report.pending:
        raise typer.Exit(code=1)
    if report.failed and not (report.indexed or report.skipped or report.duplicates):
        raise typer.Exit(code=1)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))


def _hit_json(h: Any, regions: bool = False) -> dict[str, Any]:
    d = h.to_dict(regions=regions)
    keys = ("file", "page", "score", "route", "label", "legs", "snippet") + (("regions",) if regions else ())
    return {key: d[key] for key in keys}


def _where_summary(h: Any) -> str:
    found = h.regions()
    counts: dict[str, int] = {}
    for r in found.regions:
        counts[r.leg] = counts.get(r.leg, 0) + 1
    parts = [f"{leg} {n}" for leg, n in counts.items()]
    parts += [f"{leg}: {why}" for leg, why in found.notes.items() if leg not in counts]
    return "; ".join(parts)


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="The question (omit with --queries).")] = None,
    db: DbOpt = "docrag.db",
    k: Annotated[int, typer.Option("-k", help="Pages to return.")] = 10,
    legs: Annotated[str | None, typer.Option("--legs", help="Comma list of text,visual,bm25,image.")] = None,
    fusion: Annotated[str | None, typer.Option("--fusion", help="rrf or weighted.")] = None,
    where: Annotated[str | None, typer.Option("--where", help="SQL over documents (path, metadata …).")] = None,
    queries: Annotated[Path | None, typer.Option("--queries", help="JSON lines {id, text}: batch mode.")] = None,
    regions: Annotated[
        bool, typer.Option("--regions", help="Say where on each page every leg matched (boxes in page fractions).")
    ] = False,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search pages: one query, or a batch (--queries FILE.jsonl, one JSON line per query out)."""
    from docrag.pipeline.eval import read_queries

    if (query is None) == (queries is None):
        raise typer.BadParameter("give a QUERY or --queries FILE, not both", param_hint="QUERY")
    idx = _open(db, profile, config)
    leg_list = [x.strip() for x in legs.split(",") if x.strip()] if legs else None
    if leg_list:
        present = _models_guard(idx.searcher.present, idx)
        empty = [leg for leg in leg_list if leg in present and not present[leg]]
        if empty and len(empty) == len(leg_list):
            from rich.console import Console

            Console(stderr=True, soft_wrap=True).print(
                f"note: {db} has nothing stored for the {', '.join(empty)} leg(s) (profile {idx.settings.profile}):"
                " no results",
                highlight=False,
                markup=False,
            )
    if queries is not None:
        try:
            items = read_queries(queries)
        except OSError as exc:
            _fail(f"{queries}: cannot read the queries file ({exc.strerror})")
        except ValueError as exc:
            _fail(str(exc))
        results = _models_guard(lambda: idx.search_many([q["text"] for q in items], k, where, leg_list, fusion), idx)
        for q, hits in zip(items, results, strict=True):
            out_hits = _models_guard(lambda hits=hits: [_hit_json(h, regions) for h in hits], idx)
            typer.echo(json.dumps({"id": q["id"], "hits": out_hits}, ensure_ascii=False))
        return
    hits = _models_guard(lambda: idx.search(query, k, where, leg_list, fusion), idx)
    if as_json:
        out_hits = _models_guard(lambda: [_hit_json(h, regions) for h in hits], idx)
        typer.echo(json.dumps({"query": query, "hits": out_hits}, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    out = Console() if Console().is_terminal else Console(width=160)
    table = Table(title=f"docrag: {query}")
    cols = ["#", "file", "page", "score", "route/label", "legs (raw score, rank)", "snippet"]
    for col in cols + (["regions"] if regions else []):
        table.add_column(col, overflow="fold")
    for i, h in enumerate(hits, start=1):
        legs_txt = "; ".join(f"{leg} {v['score']:.3g} #{v['rank']}" for leg, v in h.legs.items())
        row = [str(i), Path(h.file).name, str(h.page), f"{h.score:.4f}", f"{h.route}/{h.label}", legs_txt,
               h.snippet[:160]]
        if regions:
            row.append(_models_guard(lambda h=h: _where_summary(h), idx))
        table.add_row(*row)
    out.print(table)


@app.command()
def stats(db: DbOpt, as_json: JsonOpt = False) -> None:
    """What a database holds: documents, pages per route and label, vectors per leg, models."""
    idx = _open(db, None, None)
    s = _models_guard(idx.stats, idx)
    if as_json:
        typer.echo(json.dumps(s))
    else:
        for key, value in s.items():
            typer.echo(f"{key:>22}: {value}")


@app.command()
def show(
    file: Annotated[str, typer.Argument(help="Document path as indexed (or its doc_id).")],
    page: Annotated[int, typer.Argument(help="Page number (1-based).")],
    db: DbOpt,
    out: Annotated[Path, typer.Option("--out", help="Where to write the PNG.")] = Path("page.png"),
    dpi: Annotated[int, typer.Option("--dpi")] = 100,
    query: Annotated[
        str | None, typer.Option("--query", help="Draw where each leg matched this query on the page.")
    ] = None,
    legs: Annotated[str | None, typer.Option("--legs", help="With --query: comma list of legs.")] = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a page image (rendered from the file, or the stored thumbnail when the file is gone); with
    --query, the page's answer regions drawn on it (a colour per leg, the visual leg as a heatmap)."""
    from docrag.parsers import DocumentError, open_document

    idx = _open(db, profile, config)
    if dpi < 10 or dpi > 600:
        _fail(f"--dpi {dpi}: use 10 to 600")
    resolved = str(Path(file).resolve())
    docs = [
        d
        for d in _models_guard(idx.documents, idx)
        if file == d["doc_id"] or any(file == Path(p).name or p == resolved for p in d["paths"])
    ]
    if not docs:
        _fail(f"{file} is not in {db}")
    doc = docs[0]
    name = Path(doc["path"]).name
    if not 1 <= page <= (doc["n_pages"] or 0):
        _fail(f"page {page} is out of range: {name} has {doc['n_pages']} page(s)")
    if not out.parent.is_dir():
        _fail(f"cannot write {out}: the folder {out.parent} does not exist")
    try:
        with open_document(doc["path"]) as reader:
            img = reader.page(page).render(dpi)
    except DocumentError:
        try:
            img = idx.thumbnail(doc["doc_id"], page)
        except KeyError:
            _fail(f"{name} page {page}: the file cannot be read now and no thumbnail was stored")
    report: dict[str, Any] = {"out": str(out), "file": doc["path"], "page": page}
    if query is not None:
        from docrag.pipeline.regions import draw_regions

        if not query.strip():
            _fail("--query is empty")
        leg_list = [x.strip() for x in legs.split(",") if x.strip()] if legs else None
        hit = _models_guard(lambda: idx.explain(query, doc["doc_id"], page, leg_list), idx)
        if hit is None:
            report |= {"legs": {}, "regions": [], "notes": {"all": "no leg scored this page for the query"}}
        else:
            found = _models_guard(hit.regions, idx)
            img = draw_regions(img, found, leg_list)
            report |= {"legs": hit.to_dict()["legs"]} | found.to_dict()
    try:
        img.save(out)
    except (OSError, ValueError) as exc:
        _fail(f"cannot write {out}: {getattr(exc, 'strerror', None) or exc}")
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    typer.echo(str(out))
    for leg, why in report.get("notes", {}).items():
        typer.echo(f"note: {leg}: {why}", err=True)


@app.command()
def remove(
    targets: Annotated[list[str], typer.Argument(help="Paths (files or folders) or doc_ids.")],
    db: DbOpt,
    as_json: JsonOpt = False,
) -> None:
    """Remove documents from the database."""
    idx = _open(db, None, None)
    n = _models_guard(lambda: idx.remove(*targets), idx)
    typer.echo(json.dumps({"removed": n}) if as_json else f"removed {n} document(s)")
    if n == 0:
        from rich.console import Console

        Console(stderr=True, soft_wrap=True).print(
            f"nothing in {db} matched {', '.join(targets)} (a path as indexed, a folder, or a doc_id)",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(code=1)


@app.command("eval")
def eval_cmd(
    db: DbOpt,
    queries: Annotated[Path, typer.Option("--queries", help="Queries (JSON lines, dev-set or BEIR format).")],
    qrels: Annotated[Path | None, typer.Option("--qrels", help="BEIR qrels TSV (with BEIR queries).")] = None,
    k: Annotated[str, typer.Option("--k", help="Cut-offs, comma separated.")] = "5,10",
    labels: Annotated[Path | None, typer.Option("--labels", help="page_labels.tsv: also score routing.")] = None,
    fusion: Annotated[str | None, typer.Option("--fusion", help="rrf or weighted.")] = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """nDCG@k, recall@k and MRR@10 for the fused ranking and each leg alone, overall and per query kind."""
    from docrag.pipeline.eval import load_queries

    for given, what in ((queries, "--queries"), (qrels, "--qrels"), (labels, "--labels")):
        if given is not None and not given.is_file():
            _fail(f"{what} {given}: no such file")
    idx = _open(db, profile, config)
    if fusion:
        idx.settings.search.fusion = fusion
    try:
        ks = [int(x) for x in k.split(",") if x.strip()]
        if not ks or min(ks) < 1:
            raise ValueError
    except ValueError:
        _fail(f"--k: cut-offs must be positive integers separated by commas (got {k!r})")
    try:
        qs = load_queries(queries, qrels)
    except OSError as exc:
        _fail(f"{exc.filename}: {exc.strerror}")
    except ValueError as exc:
        _fail(str(exc))
    result = _models_guard(lambda: idx.evaluate(qs, ks, labels=labels), idx)
    result["fusion"] = idx.settings.search.fusion
    if as_json:
        typer.echo(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    metrics = [f"ndcg@{x}" for x in ks] + [f"recall@{x}" for x in ks] + ["mrr@10"]
    table = Table(title=f"docrag eval ({len(qs)} queries, fusion {result['fusion']})")
    table.add_column("ranking")
    table.add_column("kind")
    for m in metrics:
        table.add_column(m, justify="right")
    runs = [("fused", result["fused"])] + [(f"{leg} only", r) for leg, r in result["legs"].items()]
    for name, r in runs:
        table.add_row(name, "all", *[f"{r['overall'][m]:.3f}" for m in metrics])
        for kind, row in r["by_kind"].items():
            table.add_row("", f"{kind} ({row['n']})", *[f"{row[m]:.3f}" for m in metrics])
    Console(width=160).print(table)
    if "routing" in result:
        typer.echo(f"routing: {result['routing']}")


@app.command()
def check(
    db: DbOpt,
    repair: Annotated[
        bool, typer.Option("--repair", help="Restore unreadable tables to their last readable version.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify every table of a database (every row read) and each document's rows; --repair restores."""
    from docrag.config import load_settings
    from docrag.indexes.store import Store, StoreError

    _require_db(db)
    store = Store.unchecked(db, load_settings().storage_options)  # its model record may be what is unreadable
    try:
        result = store.check()
        if repair and not result["ok"]:
            with store.writer_lock():
                store.writable = True
                result["repair"] = store.repair()
            result["after"] = store.check()
    except StoreError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", code=130)
    final = result.get("after", result)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for name, t in result["tables"].items():
            line = f"{name:>10}: " + (f"ok, {t['rows']} rows" if t["ok"] else f"UNREADABLE ({t['error']})")
            typer.echo(line)
        if result["inconsistent_documents"]:
            typer.echo(f"{len(result['inconsistent_documents'])} document(s) whose rows do not match their counts")
        if "repair" in result:
            rep = result["repair"]
            for name, v in rep["restored"].items():
                typer.echo(f"restored {name} to version {v}")
            if rep.get("first_stage_dropped"):
                typer.echo("dropped the first stage of visual search (searched exactly until the next index run)")
            if rep["deleted_documents"]:
                typer.echo(f"deleted {len(rep['deleted_documents'])} document(s); the next `docrag index` redoes them")
        typer.echo("database ok" if final["ok"] else "database has problems: run `docrag check --repair`")
    if not final["ok"]:
        raise typer.Exit(code=1)


models_app = typer.Typer(
    help="Checkpoints per profile: what is on this machine (`docrag models`), fetch ahead (`docrag models pull`).",
    no_args_is_help=False,
    invoke_without_command=True,
)
app.add_typer(models_app, name="models")


def _downloads_off() -> bool:
    """HF_HUB_OFFLINE=1, ``docrag --offline`` or DOCRAG_OFFLINE: hub checkpoints will not be downloaded."""
    from docrag.indexes.models import hub_offline

    return hub_offline(os.environ.get("DOCRAG_OFFLINE", "").lower() in {"1", "true", "yes"})


def _model_rows(profile: str | None, config: Path | None) -> list[dict[str, Any]]:
    """One row per checkpoint of each profile (or of ``profile``/``config`` only), with where it is found."""
    from docrag.config import PROFILES, load_settings
    from docrag.indexes.models import availability, checkpoints

    rows = []
    for name in [profile] if profile or config else list(PROFILES):
        try:
            settings = load_settings(name, config)
        except ValueError as exc:
            _fail(str(exc))
        for leg in ("visual", "unified"):
            spec = getattr(settings, leg)
            for c in checkpoints(leg, spec):
                ok, where = availability(c.model, c.revision)
                rows.append(
                    {
                        "profile": settings.profile,
                        "leg": leg,
                        "type": spec.type,
                        "model": c.model,
                        "setting": c.setting,
                        "revision": c.revision,
                        "pinned": c.revision is not None,
                        "available": ok,
                        "where": where,
                        "download": None if ok else c.hf_command(),
                    }
                )
    return rows


@models_app.callback()
def models(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each profile's checkpoints: pinned revision (or "unverified"), and whether this machine has them.

    Nothing is downloaded: hub checkpoints come on first use, or ahead of time with `docrag models pull`.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"profile": profile, "config": config}  # `docrag models --profile lite pull` means lite
        return
    from docrag.config import PROFILE_NOTES

    rows = _model_rows(profile, config)
    offline = _downloads_off()
    ctx.obj = {"profile": profile, "config": config}
    if as_json:
        typer.echo(json.dumps({"profiles": PROFILE_NOTES, "models": rows, "offline": offline}))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="docrag models")
    for col in ("profile", "leg", "type", "model", "revision", "on this machine"):
        table.add_column(col)
    for r in rows:
        rev = Text(r["revision"][:12]) if r["pinned"] else Text("unverified (unpinned)", style="yellow")
        absent = "no: downloads are off" if offline else "no: downloads on first use"
        here = Text.assemble(("yes ", "green"), r["where"]) if r["available"] else Text(absent)
        table.add_row(r["profile"], r["leg"], r["type"], r["model"], rev, here)
    out = Console(width=160)
    out.print(table)
    for name, note in PROFILE_NOTES.items():
        if not profile or name == profile:
            out.print(Text.assemble((name, "bold"), f": {note}"))


@models_app.command("pull")
def models_pull(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Argument(help="cpu, gpu or lite (default: the configured profile).")] = None,
    profile_opt: ProfileOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a profile's checkpoints into the Hugging Face cache now (with progress), at their revisions."""
    parent = ctx.obj or {}
    profile = profile or profile_opt or parent.get("profile")
    config = config or parent.get("config")
    from docrag.config import load_settings
    from docrag.indexes.models import ModelUnavailableError, ensure_models

    try:
        settings = load_settings(profile, config)
    except ValueError as exc:
        _fail(str(exc))
    try:
        found = ensure_models(
            {"visual": settings.visual, "unified": settings.unified}, offline=settings.offline, progress=not as_json
        )
    except ModelUnavailableError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted: run the same command to resume the download", code=130)
    if as_json:
        typer.echo(json.dumps({"profile": settings.profile, "models": found}))
        return
    for model, where in found.items():
        typer.echo(f"{model}: {where}")
    typer.echo(f"profile {settings.profile!r}: all {len(found)} checkpoint(s) on this machine")


def _first_line(cmd: list[str]) -> str | None:
    import shutil
    import subprocess

    if shutil.which(cmd[0]) is None:
        return None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else cmd[0]


def _doctor_report() -> dict[str, Any]:
    import importlib.metadata as md
    import platform

    from docrag.indexes.colpali_compat import has_torchvision
    from docrag.indexes.multivector import FAMILIES

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    import torch
    from huggingface_hub import constants as hf_constants

    cuda = torch.cuda.is_available()
    checks: dict[str, Any] = {
        "python": platform.python_version(),
        "docrag": version("docrag"),
        "torch": torch.__version__,
        "cuda": {
            "available": cuda,
            "build": torch.version.cuda,
            "device": torch.cuda.get_device_name(0) if cuda else None,
        },
        "torchvision": version("torchvision") if has_torchvision() else None,
        "colpali-engine": version("colpali-engine"),
        "transformers": version("transformers"),
        "tesseract": _first_line(["tesseract", "--version"]),
        "poppler": _first_line(["pdftoppm", "-v"]),
        "hf_cache": hf_constants.HF_HUB_CACHE,
        "hf_endpoint": hf_constants.ENDPOINT,
        "offline": _downloads_off(),
    }
    profiles: dict[str, list[str]] = {}
    for row in _model_rows(None, None):
        lacks = profiles.setdefault(row["profile"], [])
        if not row["available"]:
            how = "missing, downloads are off" if checks["offline"] else "downloads on first use"
            lacks.append(f"{row['model']} ({how}: {row['download']})")
        fam = FAMILIES.get(row["type"]) if row["leg"] == "visual" else None
        if fam is not None and fam.needs_torchvision and not checks["torchvision"]:
            lacks.append(f"torchvision (model type {row['type']!r}; `make gpu` installs it)")
        if row["profile"] == "gpu" and row["leg"] == "visual" and not cuda:
            lacks.append("a CUDA GPU (runs on CPU, far too slowly for a 3B model)")
    if checks["tesseract"] is None:
        for lacks in profiles.values():
            lacks.append("tesseract (OCR of scanned pages): apt-get install tesseract-ocr")
    checks["profiles"] = {
        name: {"ready": not lacks, "lacks": list(dict.fromkeys(lacks))} for name, lacks in profiles.items()
    }
    return checks


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """What this machine has for docrag (torch, CUDA, torchvision, tesseract, poppler, the HF cache) and what
    each profile still lacks. Nothing is downloaded."""
    report = _doctor_report()
    if as_json:
        typer.echo(json.dumps(report))
        return
    from rich.console import Console
    from rich.text import Text

    out = Console(soft_wrap=True)
    cuda = report["cuda"]
    lines = [
        ("python", report["python"]),
        ("docrag", report["docrag"]),
        ("torch", f"{report['torch']} (CUDA build {cuda['build']})" if cuda["build"] else f"{report['torch']} (CPU)"),
        ("GPU", cuda["device"] or "none"),
        ("torchvision", report["torchvision"] or "not importable (ColQwen types need it: `make gpu`)"),
        ("colpali-engine", report["colpali-engine"]),
        ("transformers", report["transformers"]),
        ("tesseract", report["tesseract"] or "missing (apt-get install tesseract-ocr)"),
        ("poppler", report["poppler"] or "missing (apt-get install poppler-utils)"),
        ("HF cache", report["hf_cache"]),
        ("downloads", "off (offline)" if report["offline"] else f"on first use from {report['hf_endpoint']}"),
    ]
    for key, value in lines:
        out.print(Text.assemble((f"{key:>15}", "bold"), "  ", str(value)))
    for name, prof in report["profiles"].items():
        head = Text.assemble((f"{'profile ' + name:>15}", "bold"), "  ")
        if prof["ready"]:
            out.print(head + Text("ready", style="green"))
        else:
            out.print(head + Text("lacks: ", style="yellow") + Text("; ".join(prof["lacks"])))
