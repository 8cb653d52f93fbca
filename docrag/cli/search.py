"""``docrag search``, ``docrag show`` and ``docrag eval``: reading a database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import ConfigOpt, DbOpt, JsonOpt, ProfileOpt, app, call, fail, legs_option, note, open_db

HIT_KEYS = ("file", "page", "score", "confidence", "route", "label", "legs", "snippet", "metadata", "chunk", "text")


def _hit_json(h: Any, regions: bool = False) -> dict[str, Any]:
    d = h.to_dict(regions=regions)
    return {key: d[key] for key in HIT_KEYS + (("regions",) if regions else ())}


def _filters(items: list[str] | None) -> dict[str, Any]:
    """``--filter key=value`` (repeatable; a key given again: any of its values) as a metadata filter."""
    out: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--filter {item!r}: use key=value (a key given again matches any of its values)")
        out.setdefault(key.strip(), []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


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
    where: Annotated[str | None, typer.Option("--where", help="SQL over documents (path, size, indexed_at …).")] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="KEY=VALUE",
            help="key=value: documents indexed with this --meta (repeatable: all keys must match; a key twice: "
            "either value).",
        ),
    ] = None,
    min_score: Annotated[
        float | None,
        typer.Option(
            "--min-score", help="Only hits whose confidence (0 to 1, comparable across queries) is at least this."
        ),
    ] = None,
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

    if query is None and queries is None:
        fail("give a QUERY or --queries FILE")
    if query is not None and queries is not None:
        fail("give a QUERY or --queries FILE, not both")
    if query is not None and not query.strip():
        fail("the query is empty: give the words to search for")
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        fail(f"--min-score {min_score:g}: a confidence is between 0 and 1 (0.5 is a reasonable start)")
    keys = _filters(filters)
    conditions: list[Any] = [c for c in (where, keys) if c]
    idx = open_db(db, profile, config)
    prof = idx.settings.profile
    leg_list = legs_option(legs)
    if leg_list:
        present = call(idx.searcher.present, prof)
        empty = [leg for leg in leg_list if leg in present and not present[leg]]
        if empty and len(empty) == len(leg_list):
            note(f"note: {db} has nothing stored for the {', '.join(empty)} leg(s) (profile {prof}): no results")
    if queries is not None:
        try:
            items = read_queries(queries)
        except OSError as exc:
            fail(f"{queries}: cannot read the queries file ({exc.strerror})")
        except ValueError as exc:
            fail(str(exc))
        texts = [q["text"] for q in items]
        results = call(lambda: idx.search_many(texts, k, conditions, leg_list, fusion, min_score=min_score), prof)
        for q, hits in zip(items, results, strict=True):
            out_hits = call(lambda hits=hits: [_hit_json(h, regions) for h in hits], prof)
            typer.echo(json.dumps({"id": q["id"], "hits": out_hits}, ensure_ascii=False))
        return
    hits = call(lambda: idx.search(query, k, conditions, leg_list, fusion, min_score=min_score), prof)
    if hits.hidden:
        note(
            f"note: {hits.hidden} document(s) not searchable yet: being indexed, or left by a run that stopped "
            "(`docrag index` finishes them)"
        )
    if min_score is not None and not hits:
        note(f"note: no page has a confidence of at least {min_score:g} (--min-score) for this query")
    if as_json:
        out_hits = call(lambda: [_hit_json(h, regions) for h in hits], prof)
        typer.echo(json.dumps({"query": query, "hits": out_hits, "hidden": hits.hidden}, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    out = Console() if Console().is_terminal else Console(width=160)
    table = Table(title=f"docrag: {query}")
    cols = ["#", "file", "page", "score", "confidence", "route/label", "legs (raw score, rank)", "snippet"]
    for col in cols + (["regions"] if regions else []):
        table.add_column(col, overflow="fold")
    for i, h in enumerate(hits, start=1):
        legs_txt = "; ".join(f"{leg} {v['score']:.3g} #{v['rank']}" for leg, v in h.legs.items())
        row = [
            str(i),
            Path(h.file).name,
            str(h.page),
            f"{h.score:.4f}",
            "" if h.confidence is None else f"{h.confidence:.2f}",
            f"{h.route}/{h.label}",
            legs_txt,
            h.snippet[:160],
        ]
        if regions:
            row.append(call(lambda h=h: _where_summary(h), prof))
        table.add_row(*row)
    out.print(table)


@app.command()
def show(
    file: Annotated[str, typer.Argument(help="Document path as indexed (or its doc_id).")],
    page: Annotated[int, typer.Argument(help="Page number (1-based).")],
    db: DbOpt,
    out: Annotated[Path, typer.Option("--out", help="Where to write the PNG.")] = Path("page.png"),
    dpi: Annotated[
        int | None,
        typer.Option("--dpi", help="Resolution. [default: 100 for a PDF page; an image file keeps its own size]"),
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", help="Draw where each leg matched this query on the page.")
    ] = None,
    legs: Annotated[str | None, typer.Option("--legs", help="With --query: comma list of legs.")] = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a page image (rendered from the file, or the stored thumbnail when the file is gone); with
    --query, the page's answer regions drawn on it (a colour per leg, the visual leg as a heatmap) and a legend
    below it."""
    idx = open_db(db, profile, config)
    prof = idx.settings.profile
    if dpi is not None and not 10 <= dpi <= 600:
        fail(f"--dpi {dpi}: use 10 to 600")
    doc = call(lambda: idx.find(file), prof)
    if doc is None:
        fail(f"{file} is not in {db}")
    name = Path(doc["path"]).name
    if not 1 <= page <= (doc["n_pages"] or 0):
        fail(f"page {page} is out of range: {name} has {doc['n_pages']} page(s)")
    if not out.parent.is_dir():
        fail(f"cannot write {out}: the folder {out.parent} does not exist")
    from docrag.parsers import IMAGE_SUFFIXES

    if dpi is None:  # an image file is never scaled up: asked for more than it has, it comes at its own size
        dpi_ = float("inf") if Path(doc["path"]).suffix.lower() in IMAGE_SUFFIXES else 100.0
    else:
        dpi_ = float(dpi)
    try:
        img = call(lambda: idx.render(doc["doc_id"], page, dpi_), prof)
    except KeyError:
        fail(f"{name} page {page}: the file cannot be read now and no thumbnail was stored")
    report: dict[str, Any] = {"out": str(out), "file": doc["path"], "page": page}
    if query is not None:
        from docrag.pipeline.regions import draw_regions

        if not query.strip():
            fail("--query is empty")
        leg_list = legs_option(legs)
        hit = call(lambda: idx.explain(query, doc["doc_id"], page, leg_list), prof)
        if hit is None:
            report |= {"legs": {}, "regions": [], "notes": {"all": "no leg scored this page for the query"}}
        else:
            found = call(hit.regions, prof)
            img = draw_regions(img, found, leg_list)
            report |= {"legs": hit.to_dict()["legs"]} | found.to_dict()
    try:
        img.save(out)
    except (OSError, ValueError) as exc:
        fail(f"cannot write {out}: {getattr(exc, 'strerror', None) or exc}")
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    typer.echo(str(out))
    for leg, why in report.get("notes", {}).items():
        typer.echo(f"note: {leg}: {why}", err=True)


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
            fail(f"{what} {given}: no such file")
    idx = open_db(db, profile, config)
    try:
        ks = [int(x) for x in k.split(",") if x.strip()]
        if not ks or min(ks) < 1:
            raise ValueError
    except ValueError:
        fail(f"--k: cut-offs must be positive integers separated by commas (got {k!r})")
    try:
        qs = load_queries(queries, qrels)
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}")
    except ValueError as exc:
        fail(str(exc))
    result = call(lambda: idx.evaluate(qs, ks, labels=labels, fusion=fusion), idx.settings.profile)
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
    console = Console(width=160)
    console.print(table)
    if "routing" in result:
        r = result["routing"]
        if not r["pages"]:
            typer.echo("routing: none of the labelled pages is in the database (files are matched by name)")
            return
        typer.echo(
            f"routing: {r['pages']} labelled pages, label accuracy {r['label_accuracy']:.3f}, route accuracy "
            f"{r['route_accuracy']:.3f}"
        )
        console.print(_confusion_table(r["confusion"]))


def _confusion_table(confusion: dict[str, dict[str, int]]) -> Any:
    """Pages by hand label (rows) and the router's label (columns)."""
    from rich.table import Table

    found = sorted({label for row in confusion.values() for label in row})
    table = Table()
    table.add_column("hand label")
    for label in found:
        table.add_column(f"router: {label}", justify="right")
    for hand, row in sorted(confusion.items()):
        table.add_row(hand, *[str(row.get(label, 0)) for label in found])
    return table
