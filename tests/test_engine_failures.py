"""The engine itself failing, not a document: plan workers that cannot start (issue 25 item 5), and the Ray
plan stage's worker stopped when its pipeline fails or stops (item 6)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from types import SimpleNamespace
from typing import ClassVar

import pytest
from clirun import invoke

from docrag.config import Settings
from docrag.pipeline.engines import EngineError
from docrag.pipeline.plan import PlanOptions
from docrag.pipeline.workers import Job, PlanPool

ENV = {"DOCRAG_INGEST__OCR": "false", "DOCRAG_INGEST__ELEMENTS": "text-layer"}


def _options() -> tuple[Settings, PlanOptions]:
    s = Settings()
    return s, PlanOptions.build(s.router, s.ingest, s.limits, visual=False, figures=False)


@pytest.fixture
def broken_install(tmp_path, monkeypatch):
    """A fresh process cannot import pydantic (this one has it already): a worker dies as it starts, as with a
    broken or half-upgraded install. Workers get this process's sys.path."""
    fake = tmp_path / "broken"
    fake.mkdir()
    (fake / "annotated_types.py").write_text('raise ImportError("annotated_types is broken in this test")\n')
    monkeypatch.syspath_prepend(str(fake))


def test_workers_that_die_at_start_up_say_why(broken_install):
    settings, options = _options()
    with PlanPool(2, settings.ingest) as pool:
        for w in pool.workers:  # dead before the first document is sent: that send used to be a BrokenPipeError
            w.proc.join(timeout=60)
        with pytest.raises(EngineError) as err:  # the run stops (pipeline.ingest reports it)
            list(pool.run([Job(i, "/nowhere.pdf", options) for i in range(3)]))
    assert str(err.value) == "plan workers could not start: ImportError: annotated_types is broken in this test"


def test_index_stops_with_the_cause_in_one_line(broken_install, tmp_path, docs):
    res = invoke("index", docs["prose"], "--db", tmp_path / "db", "--profile", "lite", "--workers", "1", env=ENV)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stdout + res.stderr
    failed = [line for line in res.stdout.splitlines() if line.startswith("failed")]
    assert failed == [
        "failed local (local): the run stopped: plan workers could not start: ImportError: annotated_types is "
        "broken in this test"
    ], res.stdout


def test_a_script_without_the_main_guard_is_told_so(tmp_path):
    """Spawn and forkserver workers import the main script again: one without the guard starts docrag again
    in each worker, which fails there. The script's own process gets the cause, not a BrokenPipeError."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            os.environ.setdefault("TEST_PARENT", str(os.getpid()))  # workers inherit it
            from docrag.config import Settings
            from docrag.pipeline.plan import PlanOptions
            from docrag.pipeline.workers import Job, PlanPool
            s = Settings()
            opts = PlanOptions.build(s.router, s.ingest, s.limits, visual=False, figures=False)
            try:
                with PlanPool(1, s.ingest) as pool:
                    pool.workers[0].proc.join(60)
                    kinds = [k for _, k, _ in pool.run([Job(i, "/nowhere.pdf", opts) for i in range(3)])]
            except Exception as exc:
                if os.environ["TEST_PARENT"] != str(os.getpid()):
                    raise  # a worker, running this script again
                print("PARENT", type(exc).__name__, exc, flush=True)
            else:
                print("PARENT finished", kinds, flush=True)
            """
        )
    )
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    lines = [line for line in res.stdout.splitlines() if line.startswith("PARENT")]
    assert lines == [
        f"PARENT WorkerStartError plan workers could not start: {script} starts docrag when it is imported, and "
        'every worker process imports it again: put its code under `if __name__ == "__main__":`'
    ], res.stdout + res.stderr[-3000:]


# -- the Ray plan stage's worker (no cluster needed: the stage is a plain class) ---------------------------------


class FakePool:
    """Stands for ``PlanPool``: plans any document as one header, one batch of pages, done."""

    made: ClassVar[list[FakePool]] = []
    fail_at: str | None = None  # "pages": planning raises there

    def __init__(self, n: int, budgets: object, preload: tuple[str, ...] = ()) -> None:
        self.closed = False
        FakePool.made.append(self)

    def __enter__(self) -> FakePool:
        return self

    def run(self, jobs: list[Job]):
        for job in jobs:
            yield job, "header", {"n_pages": 1, "warnings": []}
            if FakePool.fail_at == "pages":
                raise RuntimeError("the worker's pipe broke")
            yield job, "pages", [SimpleNamespace(number=1)]
            yield job, "done", None

    def more(self, job: Job) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def stage(monkeypatch):
    import docrag.pipeline.workers as workers
    from docrag.pipeline.ray_engine import _PlanStage

    FakePool.made, FakePool.fail_at = [], None
    monkeypatch.setattr(workers, "PlanPool", FakePool)
    _, options = _options()
    return _PlanStage(options, ())


def _batch(n: int = 1) -> dict[str, list]:
    return {
        "job": list(range(n)),
        "doc_id": [f"d{i}" for i in range(n)],
        "path": [f"/x{i}.pdf" for i in range(n)],
        "skip": [""] * n,
    }


def test_ray_plan_stage_stops_its_worker_when_planning_fails(stage):
    FakePool.fail_at = "pages"
    with pytest.raises(RuntimeError, match="pipe broke"):
        list(stage(_batch()))
    assert [p.closed for p in FakePool.made] == [True]  # now, not when the actor is collected


def test_ray_plan_stage_stops_its_worker_when_the_pipeline_stops_taking_events(stage):
    events = stage(_batch(2))
    next(events)  # the first document's header; then the pipeline fails elsewhere, or is interrupted
    events.close()
    assert [p.closed for p in FakePool.made] == [True]
    # A later document (the actor lives on) gets a fresh worker.
    assert [row["kind"][0] for row in stage(_batch())] == ["event", "plan", "event"]
    assert [p.closed for p in FakePool.made] == [True, False]


def test_ray_plan_stage_keeps_its_worker_between_documents_and_closes_it_once(stage):
    for _ in range(3):
        assert len(list(stage(_batch()))) == 3
    assert len(FakePool.made) == 1 and not FakePool.made[0].closed
    stage.close()
    stage.close()
    assert FakePool.made[0].closed
    del stage  # __del__ after close: nothing left to do
