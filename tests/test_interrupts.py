"""Ctrl-C of ``docrag index`` at any moment says how far it got and how to resume (issue 25 item 7): also in
the first seconds (opening the database, the models, the writer lock), before the run has its report; and a
Ray run keeps Ray's own "(raylet) …" messages off the terminal."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import ClassVar

import pytest
from clirun import EXE, invoke

ENV = {"DOCRAG_INGEST__OCR": "false", "DOCRAG_INGEST__ELEMENTS": "text-layer"}
RESUME = "interrupted: 0 documents complete, 3 pending — run the same command to resume"


@pytest.fixture
def papers(tmp_path) -> Path:
    from docrag.testing import pdfgen

    d = tmp_path / "papers"
    d.mkdir()
    for i, word in enumerate(("zanzibarite", "quokkalith", "marmotine")):
        pdfgen.planted_pdf(d / f"{word}.pdf", f"The {word} shipment left the harbour on a Tuesday.", seed=i)
    return d


def _ctrl_c_in(monkeypatch, target: str, attr: str) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(target + "." + attr, interrupted)


@pytest.mark.parametrize(
    ("moment", "target", "attr"),
    [
        ("opening the database", "docrag.api", "open_index"),
        ("checking the models", "docrag.api.Index", "ensure_models"),
        ("starting the workers", "docrag.pipeline.ingest", "start_pool"),
    ],
)
def test_ctrl_c_before_the_run_begins_says_what_is_pending(monkeypatch, papers, tmp_path, moment, target, attr):
    _ctrl_c_in(monkeypatch, target, attr)
    res = invoke("index", papers, "--db", tmp_path / "db", "--profile", "lite", env=ENV)
    assert res.returncode == 130, (moment, res.stderr)
    assert res.stderr.strip().splitlines() == [RESUME], (moment, res.stderr)


def test_ctrl_c_before_the_run_begins_gives_the_json_report(monkeypatch, papers, tmp_path):
    _ctrl_c_in(monkeypatch, "docrag.api.Index", "ensure_models")
    res = invoke("index", papers, "--db", tmp_path / "db", "--profile", "lite", "--json", env=ENV)
    assert res.returncode == 130, res.stderr
    out = json.loads(res.stdout)
    assert (out["interrupted"], out["indexed"], out["pending"]) == (True, 0, 3)


def test_ctrl_c_while_the_files_are_hashed_counts_them_pending(monkeypatch, papers, tmp_path):
    import docrag.pipeline.ingest as ingest

    real, calls = ingest.file_sha256, []

    def sha256(path: Path) -> str:
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(ingest, "file_sha256", sha256)
    res = invoke("index", papers, "--db", tmp_path / "db", "--profile", "lite", "--workers", "0", env=ENV)
    assert res.returncode == 130, res.stderr
    assert res.stderr.strip().splitlines() == [RESUME]


def _read_until(stream, text: str, proc: subprocess.Popen, timeout: float = 120) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen and time.monotonic() < deadline and proc.poll() is None:
        if select.select([stream], [], [], 0.5)[0]:
            seen += os.read(stream.fileno(), 4096).decode(errors="replace")
    return seen


@pytest.mark.slow
def test_ctrl_c_while_waiting_for_another_writer(papers, tmp_path):
    """A real Ctrl-C (SIGINT) to the command, at a moment seen in its output: it waits for the writer lock."""
    from docrag.indexes.database import Database

    db = tmp_path / "db"
    with Database(db).writer_lock():
        proc = subprocess.Popen(
            [EXE, "index", str(papers), "--db", str(db), "--profile", "lite"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **ENV},
            # As at a terminal (a test runner in the background passes SIGINT on ignored).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            first = _read_until(proc.stderr, "waiting:", proc)
            assert "waiting:" in first, first
            proc.send_signal(signal.SIGINT)
            _, rest = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    err = first + rest.decode(errors="replace")
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == RESUME, err
    assert "error" not in err and "Traceback" not in err


@pytest.mark.parametrize("verbose", [False, True])
def test_ray_error_messages_stay_off_the_terminal_unless_verbose(monkeypatch, verbose):
    """Ray prints its error messages ("(raylet) … retries remaining") on a driver thread of its own, whatever
    ``log_to_driver`` says; a quiet run turns that off too. (A stand-in ``ray.init``: no cluster is started.)"""
    import logging

    import ray._private.worker as ray_worker

    from docrag.pipeline import ray_engine

    class FakeRay:
        inits: ClassVar[list[dict]] = []

        @staticmethod
        def is_initialized() -> bool:
            return False

        @classmethod
        def init(cls, **kwargs) -> None:
            cls.inits.append(kwargs)

    monkeypatch.setattr(ray_worker, "_worker_logs_enabled", True)
    monkeypatch.setattr(ray_engine, "_require_ray", lambda: FakeRay)
    docrag_log = logging.getLogger("docrag")
    monkeypatch.setattr(docrag_log, "level", logging.INFO if verbose else logging.WARNING)
    assert ray_engine.start_ray() is FakeRay
    assert FakeRay.inits[-1]["log_to_driver"] is verbose
    assert ray_worker._worker_logs_enabled is verbose
