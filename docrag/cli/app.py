"""The ``docrag`` Typer app, its shared options, and the one mapping from the library's errors to exit codes.

Commands live in the modules beside this one (route, index, search, admin, models) and are thin: they parse
arguments, call the library (``docrag.api``, ``docrag.doctor``) and print. A user's mistake is one line on
stderr and exit 2; Ctrl-C is "interrupted" and exit 130; nothing prints a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

__all__ = ["ConfigOpt", "DbOpt", "JsonOpt", "ProfileOpt", "app", "call", "fail", "guarded", "open_db", "require_db"]

T = TypeVar("T")

app = typer.Typer(
    name="docrag",
    help="Retrieve the right page from PDFs, images, Office, HTML and text files: route, index, search.",
    no_args_is_help=True,
    add_completion=False,
)

ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="cpu (default), gpu or lite.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DbOpt = Annotated[
    str,
    typer.Option(
        "--db",
        help="Database: a folder, or s3://bucket/prefix (endpoint and credentials from the environment, AWS_*, "
        "or \\[storage_options] in --config).",
    ),
]


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
        from docrag.pipeline.logs import quiet_third_party

        quiet_third_party()
        # Weight-loading bars stay off (docrag.indexes.models); downloads show huggingface_hub's progress.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr (no markup read from the message: paths may contain brackets), then exit."""
    from rich.text import Text

    stderr().print(Text.assemble(("error", "red"), " ", message))
    raise typer.Exit(code=code)


def note(message: str) -> None:
    stderr().print(message, highlight=False, markup=False)


@contextmanager
def guarded(
    profile: str | None = None, interrupted: str | None = "interrupted", rebuild: str | None = None
) -> Iterator[None]:
    """The one mapping from the library's errors to exit codes. A missing checkpoint, a storage failure, a
    locked database or a bad option or input (``ValueError``: model mismatch, bad filter, unknown leg …) is one
    line and exit 2; Ctrl-C is ``interrupted`` and exit 130 (None: the caller handles ``KeyboardInterrupt``, as
    ``index`` does, with its counts). ``profile``: the one in use, for the hint that the lite profile works
    offline; ``rebuild``: the command that rebuilds the database with other models."""
    from docrag.indexes.database import ModelMismatchError, StoreError
    from docrag.indexes.models import ModelUnavailableError

    try:
        yield
    except ModelMismatchError as exc:
        if not exc.rebuildable:
            fail(str(exc))
        fail(
            f"{exc.what}: use it with its own models (no --profile, and no other model in --config or DOCRAG_* "
            f"variables), or rebuild it with these: {rebuild or 'docrag index PATHS --db DB … --rebuild'}"
        )
    except ModelUnavailableError as exc:  # the way out first, then one `hf download` command a line
        said = bool(exc.profile) or profile in (None, "lite")  # a profile's models: the message names lite first
        fail(str(exc) + ("" if said else "\n  or use `--profile lite`, which works fully offline"))
    except (ValueError, StoreError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        fail(interrupted, code=130)


def call(
    fn: Callable[[], T], profile: str | None = None, interrupted: str | None = "interrupted", rebuild: str | None = None
) -> T:
    """``fn()`` under ``guarded``."""
    with guarded(profile, interrupted, rebuild):
        return fn()
    raise AssertionError("unreachable")  # pragma: no cover


def require_db(db: str, config: Path | None = None) -> None:
    """Exit 2 with one line unless a docrag database is at ``db``."""
    from docrag.config import read_config, storage_options
    from docrag.indexes.store import Store, is_uri

    with guarded():
        if not is_uri(db) and not Path(db).exists():
            fail(f"no database at {db}: run `docrag index PATH --db {db}` first")
        if not Store.exists(db, storage_options(read_config(config)) or None):
            if is_uri(db):
                fail(f"no docrag database at {db} (no documents table there): run `docrag index PATH --db {db}` first")
            fail(f"{db} is not a docrag database (no documents table in it)")


def open_db(
    db: str,
    profile: str | None = None,
    config: Path | None = None,
    *,
    must_exist: bool = True,
    rebuild: bool = False,
    rebuild_command: str | None = None,
    interrupted: str | None = "interrupted",
) -> Any:
    """The index at ``db`` (settings resolved once, ``docrag.config.resolve``). A ``--db`` that is not a docrag
    database is one line and exit 2 (except for ``index``, which creates it). ``interrupted``: as ``guarded``."""
    from docrag.api import open_index

    if must_exist:
        require_db(db, config)
    idx = call(lambda: open_index(db, profile, config, rebuild=rebuild), profile, interrupted, rebuild=rebuild_command)
    if profile == "gpu":
        require_cuda(idx.settings)
    return idx


def require_cuda(settings: Any) -> None:
    """Exit 2 with one line when ``--profile gpu`` would run on a machine without CUDA (a device set by hand in
    the settings is the user's choice)."""
    from docrag.config import LEGS

    if all(getattr(settings, leg) is None or getattr(settings, leg).device != "auto" for leg in LEGS):
        return
    import torch

    if not torch.cuda.is_available():
        fail(
            "the gpu profile needs a CUDA GPU and torch sees none on this machine: use `--profile cpu` (the default) "
            "or `--profile lite` (offline)"
        )


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))


def short_path(path: str, width: int = 40) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def legs_option(legs: str | None) -> list[str] | None:
    return [x.strip() for x in legs.split(",") if x.strip()] if legs else None


def main() -> None:  # pragma: no cover - console entry point
    app()
