"""Helpers shared by the benchmark scripts: machine description and appending to RESULTS.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def append_results(title: str, body: str, save: bool = True) -> None:
    """Print a dated section and, with ``save``, append it to benchmarks/RESULTS.md."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"\n## {title}\n\n{stamp} — {machine()}\n\n{body.rstrip()}\n"
    print(section)
    if not save:
        return
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nAppended by the scripts in benchmarks/; newest last.\n")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(section)
