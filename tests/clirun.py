"""The ``docrag`` command line in tests: in this process (Typer's runner: no cold start) where isolation is not
the point, and as a real process where it is (kills, signals, concurrent writers, an environment read at
import). Both give a ``Ran`` with the exit code, stdout and stderr, as ``subprocess.run`` would."""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

__all__ = ["EXE", "Ran", "invoke", "spawn"]

EXE = str(Path(sys.executable).parent / "docrag")


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str, env: dict[str, str] | None = None) -> Ran:
    """``docrag ARGS`` in this process. An exception the command let through shows as a traceback on stderr
    and exit code 1, as it would from the console script."""
    from docrag.cli import app

    extra = {k: v for k, v in (env or {}).items() if os.environ.get(k) != v}
    result = CliRunner().invoke(app, [str(a) for a in args], env=extra, catch_exceptions=True)
    stderr, code = result.stderr, result.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(result.exception))
        code = 1
    return Ran(code, result.stdout, stderr)


def spawn(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Ran:
    """``docrag ARGS`` as a new process (the console script)."""
    res = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)
    return Ran(res.returncode, res.stdout, res.stderr)
