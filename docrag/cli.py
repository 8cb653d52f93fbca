"""The ``docrag`` command line (typer + rich). ``--json`` output is meant for scripts."""

from __future__ import annotations

import json
import logging
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
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for noisy in ("pdfminer", "unstructured", "PIL"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


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
        VisualPages, typer.Option("--visual-pages", help="auto: decide per page; all or none: a policy.")
    ] = VisualPages.auto,
    config: Annotated[Path | None, typer.Option("--config", help="TOML file with [router] and [limits].")] = None,
) -> None:
    """Route every page: visual (ColPali leg) or text (unified leg), with a label and the reasons."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from docrag.parsers import discover
    from docrag.pipeline.router import route_files

    raw = load_config(config)
    try:
        router_cfg = RouterConfig(**{**raw.get("router", {}), "visual_pages": visual_pages})
        limits = Limits(**raw.get("limits", {}))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from None

    err = Console(stderr=True)
    show_progress = not as_json and err.is_terminal
    files = [p for p, _ in discover(paths)]
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
    counts: dict[str, int] = {}
    for r in report.pages:
        counts[r.route] = counts.get(r.route, 0) + 1
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no pages"
    out.print(f"{len(report.pages)} pages ({summary})")
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
