"""``docrag route``: every page's route, label and reasons, with no model and no database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from docrag.pipeline.options import VisualPages

from .app import app, fail, guarded, short_path


@app.command()
def route(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders (searched recursively); Office files are converted first.")
    ],
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
    """Route every page: visual (ColPali leg) or text (text and image legs), with a label and the reasons."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from docrag.config import load_settings
    from docrag.indexes.store import conversion_cache
    from docrag.pipeline.routing import route_files

    missing = [p for p in paths if not p.exists() and not p.is_symlink()]
    if len(missing) == len(paths):  # nothing to route: one line, as index says it
        fail(f"no such file or folder: {', '.join(map(str, missing))}")
    overrides: dict[str, Any] = {"router": {"visual_pages": visual_pages.value}} if visual_pages else {}
    with guarded():
        settings = load_settings(None, config, **overrides)

    err = Console(stderr=True)
    show_progress = not as_json and err.is_terminal
    with Progress(
        TextColumn("[bold]routing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err,
        disable=not show_progress,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=None)

        def on_start(n_files: int) -> None:
            progress.update(task, total=n_files)

        def on_file(path: Path, n_pages: int) -> None:
            progress.update(task, advance=1, description=short_path(str(path)))

        cache = conversion_cache()  # an Office file routed now is not converted again when it is indexed
        report = route_files(
            paths, settings.router, settings.limits, on_file=on_file, on_start=on_start, convert_cache=cache
        )

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
            # the setting, as index reads it ([router] in a --config file; route also takes --visual-pages)
            cost = f'\\[router] visual_pages = "ambiguous-both" would add {extra} visual page{"s" * (extra != 1)}'
        base = max(s["visual_without_ambiguity"], 1)
        out.print(
            f"{s['ambiguous']} page{'s' * (s['ambiguous'] != 1)} ambiguous (confidence < {s['ambiguous_below']:.2f}); "
            f"{cost} (+{100 * extra / base:.0f}% visual)"
        )
    if report.skipped:
        out.print(f"[dim]skipped {len(report.skipped)} file(s) that are not of a format docrag reads[/]")
    for w in report.warnings:
        out.print(f"[yellow]warning[/] {w['file']}: {w['warning']}")
    for e in report.errors:
        where = f"{e['file']} page {e['page']}" if "page" in e else e["file"]
        out.print(f"[red]error[/] {where}: {e['error']}")
