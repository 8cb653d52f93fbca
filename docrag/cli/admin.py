"""``docrag stats``, ``docrag check`` and ``docrag doctor``: what a database and this machine hold."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from .app import ConfigOpt, DbOpt, JsonOpt, app, call, open_db, require_db


@app.command()
def stats(db: DbOpt, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """What a database holds: documents, pages per route and label, vectors per leg, models."""
    idx = open_db(db, None, config)
    s = call(idx.stats, idx.settings.profile)
    if as_json:
        typer.echo(json.dumps(s))
        return
    for name, value in stats_rows(s):
        typer.echo(f"{name:<14}  {value}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def stats_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """``Index.stats()`` as (name, value) lines for people (``--json`` has the dict as it is)."""
    vi = s["visual_index"]
    pooled = f", token pooling ×{vi['pool_factor']}" if vi["pool_factor"] > 1 else ""
    incomplete = s["incomplete_documents"]
    unfinished = f" ({incomplete} incomplete: `docrag index` finishes them)" if incomplete else ""
    searched = f" (searched {s['visual_search']})" if s["visual_search"] else ""
    rows = [
        ("database", f"{s['db']} (profile {s['profile']})"),
        ("documents", f"{s['documents']}{unfinished}"),
        ("pages", f"{s['pages']}" + (f": {_counts(s['routes'])}" if s["routes"] else "")),
        ("labels", _counts(s["labels"])),
        ("text chunks", str(s["chunks"])),
        ("images", str(s["images"])),
        ("visual pages", f"{s['visual_pages']}{searched}"),
        ("visual storage", f"{vi['storage']}{pooled}, first stage {vi['first_stage']}"),
    ]
    for leg, spec in s["built_with"].items():
        what = f"{spec['type']}:{spec['model']}@{(spec['revision'] or 'unpinned')[:12]}" if spec else "none"
        rows.append((f"{leg} model", what))
    return rows


@app.command()
def check(
    db: DbOpt,
    repair: Annotated[
        bool, typer.Option("--repair", help="Restore unreadable tables to their last readable version.")
    ] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify every table of a database (every row read) and each document's rows; --repair restores."""
    from docrag.api import Index
    from docrag.config import read_config, resolve

    require_db(db, config)  # the model record is not read: it may be what is unreadable
    idx = call(lambda: Index(db, resolve(None, None, read_config(config), source=str(config or ""))))
    result = call(lambda: idx.check(repair=repair))
    final = result.get("after", result)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for name, t in result["tables"].items():
            typer.echo(f"{name:>10}: " + (f"ok, {t['rows']} rows" if t["ok"] else f"UNREADABLE ({t['error']})"))
        if result["inconsistent_documents"]:
            typer.echo(f"{len(result['inconsistent_documents'])} document(s) whose rows do not match their counts")
        codes = final.get("visual_codes")
        if codes not in (None, "none"):
            note = "" if codes == "current" else " (search reranks from the stored vectors; --repair rebuilds them)"
            typer.echo(f"visual codes: {codes}{note}")
        if result.get("unfinished_documents"):
            typer.echo(
                f"{result['unfinished_documents']} document(s) not finished (hidden from search): a run is indexing "
                "them, or one stopped; `docrag index` the same paths again to finish them"
            )
        if "repair" in result:
            rep = result["repair"]
            for name, v in rep["restored"].items():
                typer.echo(f"restored {name} to version {v}")
            if rep.get("visual_codes") in ("built", "updated"):
                typer.echo(f"visual codes {rep['visual_codes']} from the visual table")
            if rep.get("first_stage_dropped"):
                typer.echo("dropped the first stage of visual search (searched exactly until the next index run)")
            if rep["deleted_documents"]:
                typer.echo(f"deleted {len(rep['deleted_documents'])} document(s); the next `docrag index` redoes them")
        typer.echo("database ok" if final["ok"] else "database has problems: run `docrag check --repair`")
    if not final["ok"]:
        raise typer.Exit(code=1)


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """What this machine has for docrag (torch, CUDA, torchvision, tesseract, poppler, the HF cache) and what
    each profile still lacks. Nothing is downloaded."""
    from docrag.doctor import report as doctor_report

    report = call(doctor_report)
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
