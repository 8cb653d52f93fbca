"""Isolated worker processes for the plan step: time budgets, a memory cap, kill and replace.

Third-party parsers can hang (pdfminer on a reference cycle), crash (a segfault in a C decoder) or eat
memory (a decompression bomb). Each document is planned in a worker process of its own process group, with
``RLIMIT_AS`` capped; the parent watches the worker's messages and kills the group when a page or the
document runs past its budget. The file is then reported with the stage it was in and the reason, a fresh
worker takes the worker's place, and the batch goes on.

Protocol (over one ``multiprocessing`` pipe per worker): the parent sends ``("plan", job_id, path,
options)``; the worker answers with ``("event", job_id, kind, data, t)`` messages (``stage``, ``header``,
``pages``) and ends with ``("done", job_id)`` or ``("error", job_id, reason)``. After each ``pages`` message
the worker waits for ``("next",)``: the parent asks for more only when it has room, so plans never pile up
in memory while the parent embeds, and time spent waiting for the parent does not count against the
worker's budgets.

A worker says ``("ready",)`` once started. One that dies before (a script without the
``if __name__ == "__main__":`` guard, which each worker imports again; a broken install) stops the run with
``WorkerStartError``, which names the cause: the error a fresh process meets in the same start-up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from docrag.parsers import DocumentError

from .engines import EngineError
from .logs import quiet_third_party
from .options import IngestConfig
from .plan import PlanOptions, plan_document

__all__ = ["Job", "PlanPool", "WorkerStartError", "default_workers", "run_inline"]

log = logging.getLogger(__name__)

START_TIMEOUT_S = 300.0  # a worker's start-up (its imports), which no document's budget pays for
CONVERT_GRACE_S = 30.0  # past the conversion's own budget, before the parent kills worker and converter


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.3g} GiB"


# -- the worker side ------------------------------------------------------------------------------------------


def _limit_memory(limit: int) -> None:
    if limit <= 0:
        return
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError) as exc:  # not on this platform: time budgets still hold
        log.info("no memory cap for workers: %s", exc)


def _quiet_logs(level: int) -> None:
    """The worker logs as the parent does: docrag at ``level``; third-party parsers only their errors.

    Below INFO (the default), the C level of stderr goes to /dev/null too: a native decoder's own messages
    ("terminate called after …") would land in the user's terminal, and a crash is reported by the parent
    anyway with the file, stage and reason. Python logging keeps a copy of the real stderr; ``warnings`` and
    tracebacks printed by the worker go with fd 2 (the parent reports the failure). ``--verbose`` keeps all.
    """
    stream = sys.stderr
    if level > logging.INFO:
        with contextlib.suppress(OSError):
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            stream = os.fdopen(saved, "w", buffering=1)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=stream, force=True)
    if level > logging.INFO:
        quiet_third_party()


def _worker_main(conn: Connection, memory_limit: int, preload: tuple[str, ...], log_level: int) -> None:
    """A worker's life: plan the documents the parent sends, one at a time, until told to stop."""
    import importlib

    os.setpgrp()  # its own process group: a kill takes any child (tesseract) with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _quiet_logs(log_level)
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the plan step reports the failure where it matters
            log.info("preload %s failed: %s", name, exc)
    with contextlib.suppress(OSError):  # the parent closed the pool meanwhile: recv says so below
        conn.send(("ready",))
    _limit_memory(memory_limit)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "stop":
            return
        _, job_id, path, options = msg

        def on_stage(data: dict[str, Any], _job: int = job_id) -> None:
            conn.send(("event", _job, "stage", data, time.monotonic()))

        try:
            for kind, data in plan_document(path, options, on_stage):
                conn.send(("event", job_id, kind, data, time.monotonic()))
                if kind == "pages" and conn.recv()[0] != "next":
                    return
        except DocumentError as exc:
            conn.send(("error", job_id, exc.reason))
            continue
        except MemoryError:
            conn.send(("error", job_id, f"out of memory (worker memory limit {_gib(memory_limit)})"))
            continue
        except Exception as exc:  # a parser bug on one hostile file: that file fails, the worker goes on
            conn.send(("error", job_id, f"unexpected {exc.__class__.__name__}: {str(exc)[:300]}"))
            continue
        conn.send(("done", job_id))


# -- the parent side ------------------------------------------------------------------------------------------


class WorkerStartError(EngineError):
    """A plan worker died before it started: no document can be planned, the run stops."""


_MARK = "docrag-worker-start-error"
# What a worker does before ``_worker_main`` runs (spawn and forkserver alike): ``spawn.prepare`` imports the
# parent's main script or module again, then unpickling the target imports this module.
_START_CHECK = f"""
import json, sys
from multiprocessing import process, spawn
data = json.load(sys.stdin)
process.current_process()._inheriting = True
try:
    spawn.prepare(data)
    import {__name__}
except BaseException as exc:
    print("\\n{_MARK}", type(exc).__name__, " ".join(str(exc).split()), sep="\\t", flush=True)
"""


def _start_error(timeout_s: float = 120.0) -> str | None:
    """The error a worker meets as it starts, found again in a fresh process (the worker's own traceback went
    to its stderr): one line, or None when the start-up goes through there."""
    from multiprocessing import spawn

    data = spawn.get_preparation_data("docrag-start-check")
    data.pop("authkey", None)  # not needed there; the rest is plain strings and lists (JSON, never pickle)
    try:
        res = subprocess.run(
            [spawn.get_executable(), "-c", _START_CHECK],
            input=json.dumps(data).encode(),
            capture_output=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [x for x in res.stdout.decode(errors="replace").splitlines() if x.startswith(_MARK + "\t")]
    if not lines:
        return None
    _, name, message = [*lines[-1].split("\t", 2), "", ""][:3]
    if name == "RuntimeError" and "bootstrapping phase" in message:
        main = data.get("init_main_from_path") or data.get("init_main_from_name") or "the main script"
        return (
            f"{main} starts docrag when it is imported, and every worker process imports it again: put its code "
            'under `if __name__ == "__main__":`'
        )
    return f"{name}: {message[:300]}" if message else name


@dataclass(slots=True)
class Job:
    """One document to plan. ``options`` may be replaced on a retry (element extraction skipped)."""

    id: int
    path: str
    options: PlanOptions
    n_pages: int = 0
    retried: bool = False


@dataclass(slots=True)
class _Worker:
    proc: Any
    conn: Connection
    job: Job | None = None
    stage: dict[str, Any] = field(default_factory=dict)
    stage_since: float = 0.0  # when the current stage began (worker clock, CLOCK_MONOTONIC is system-wide)
    busy_since: float | None = None  # when the worker was last asked for work (None: waiting for the parent)
    busy_total: float = 0.0  # seconds the current job has been worked on (not waiting for the parent)
    waiting: bool = False  # sent pages, waits for "next"
    ready: bool = False  # said it started


def _describe(stage: dict[str, Any]) -> str:
    """'ocr of page 3', 'page 3' (parsing it), 'elements', 'open' …"""
    name = stage.get("stage", "starting")
    if "page" not in stage:
        return name
    return f"page {stage['page']}" if name == "page" else f"{name} of page {stage['page']}"


class PlanPool:
    """N worker processes planning documents in parallel under time and memory budgets.

    ``run(jobs)`` yields ``(job, kind, data)`` as the workers report: ``header``, ``pages`` (call
    ``more(job)`` when ready for the next batch of that job), ``done``, ``failed`` (data: the reason, with
    the stage). A job whose element extraction runs out of time is retried once with the text layer instead.
    """

    def __init__(self, n_workers: int, budgets: IngestConfig, preload: tuple[str, ...] = ()) -> None:
        self.n = max(1, n_workers)
        self.budgets = budgets  # page_timeout_s, document_timeout_s, elements_timeout_s, worker_memory_bytes
        self.preload = ("docrag.pipeline.plan", *preload)
        methods = mp.get_all_start_methods()
        self.ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        self.log_level = logging.getLogger("docrag").getEffectiveLevel()  # workers log as this process does
        self.workers: list[_Worker] = []
        self._resume: deque[_Worker] = deque()

    # -- lifecycle --
    def _spawn(self) -> _Worker:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(
            target=_worker_main,
            args=(child, self.budgets.worker_memory_bytes, self.preload, self.log_level),
            daemon=True,
        )
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def __enter__(self) -> PlanPool:
        self.workers = [self._spawn() for _ in range(self.n)]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self.workers:
            if w.job is None:
                with contextlib.suppress(OSError):
                    w.conn.send(("stop",))
        deadline = time.monotonic() + 2
        for w in self.workers:
            if w.job is not None:
                self._kill(w)
                continue
            w.proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                self._kill(w)
        self.workers = []

    def _kill(self, w: _Worker) -> None:
        try:
            os.killpg(w.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            w.proc.kill()
        if w.stage.get("pgid"):  # a converter (LibreOffice) runs in a process group of its own
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                os.killpg(int(w.stage["pgid"]), signal.SIGKILL)
        w.proc.join(timeout=5)
        w.conn.close()

    def _replace(self, w: _Worker) -> None:
        self._kill(w)
        self.workers[self.workers.index(w)] = self._spawn()

    # -- scheduling --
    def _send(self, w: _Worker, msg: tuple) -> None:
        """To a worker; one that died is found by ``run`` (its pipe reads end-of-file), not here."""
        with contextlib.suppress(OSError):  # BrokenPipeError, ConnectionResetError
            w.conn.send(msg)

    def _assign(self, w: _Worker, job: Job) -> None:
        w.job, w.stage, w.busy_total, w.waiting = job, {}, 0.0, False
        w.busy_since = w.stage_since = time.monotonic()
        self._send(w, ("plan", job.id, job.path, job.options))

    def more(self, job: Job) -> None:
        """The parent has room for another batch of ``job``'s pages."""
        for w in self.workers:
            if w.job is job and w.waiting:
                w.waiting = False
                w.busy_since = w.stage_since = time.monotonic()
                self._send(w, ("next",))
                return

    def _budget_exceeded(self, w: _Worker, now: float) -> str | None:
        lim = self.budgets
        if w.busy_since is None or w.waiting:
            return None
        if not w.ready:  # still starting (importing its parsers): not the document's time
            late = now - w.stage_since > START_TIMEOUT_S
            return f"the worker did not start within {START_TIMEOUT_S:g} s" if late else None
        stage = w.stage.get("stage", "")
        in_stage = now - w.stage_since
        busy = w.busy_total + (now - w.busy_since)
        if stage == "elements":
            budget = max(lim.elements_timeout_s, 1.0 * (w.job.n_pages if w.job else 0))
            if in_stage > budget:
                return f"element extraction timed out after {budget:g} s"
        elif stage == "convert":  # the worker kills its converter at convert_timeout_s; this is the backstop
            budget = (w.job.options.convert.timeout_s if w.job else lim.page_timeout_s) + CONVERT_GRACE_S
            if in_stage > budget:
                return f"conversion by LibreOffice timed out after {budget:g} s"
        elif in_stage > lim.page_timeout_s:
            return f"{_describe(w.stage)} timed out after {lim.page_timeout_s:g} s (page_timeout_s)"
        if busy > lim.document_timeout_s:
            return f"the document took more than {lim.document_timeout_s:g} s (document_timeout_s)"
        return None

    def _crash_reason(self, w: _Worker) -> str:
        w.proc.join(timeout=5)
        code = w.proc.exitcode
        where = f" while in {_describe(w.stage)}" if w.stage else ""
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            cap = self.budgets.worker_memory_bytes
            hint = ""
            if -code == signal.SIGKILL:
                hint = " (the system's out-of-memory killer, or the user)"
            elif -code in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS) and cap > 0:
                hint = f" (a parser failed to allocate memory under the worker memory limit of {_gib(cap)}?)"
            return f"worker killed by {name}{where}{hint}"
        return f"worker exited unexpectedly (code {code}){where}"

    def _start_failure(self, w: _Worker) -> WorkerStartError:
        w.proc.join(timeout=5)
        code = w.proc.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            cause = f"a worker was killed by {name} as it started"
        else:
            cause = _start_error() or f"a worker exited with code {code} as it started"
        return WorkerStartError(f"plan workers could not start: {cause}")

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, str, Any]]:
        queue = deque(jobs)
        while True:
            for w in self.workers:
                if w.job is None and queue:
                    self._assign(w, queue.popleft())
            active = [w for w in self.workers if w.job is not None]
            if not active:
                return
            ready = wait([w.conn for w in active], timeout=0.25)
            now = time.monotonic()
            for w in active:
                if w.conn in ready:
                    try:
                        msg = w.conn.recv()
                    except (EOFError, OSError):
                        if not w.ready:
                            raise self._start_failure(w) from None
                        yield from self._lost(w, self._crash_reason(w), queue)
                        continue
                    yield from self._handle(w, msg, queue)
                    continue
                reason = self._budget_exceeded(w, now)
                if reason is not None:
                    yield from self._lost(w, reason, queue)

    def _lost(self, w: _Worker, reason: str, queue: deque[Job]) -> Iterator[tuple[Job, str, Any]]:
        """A worker that hung, crashed or ran out of memory is replaced. Its document fails, unless it was in
        element extraction (a third-party parser): then it is planned again with the text layer instead."""
        job, stage = w.job, w.stage.get("stage")
        self._replace(w)
        if stage == "elements" and not job.retried:
            job.retried = True
            job.options = job.options.model_copy(update={"elements_fallback": reason})
            queue.appendleft(job)
            log.info("%s: %s; planning it again with the text layer", job.path, reason)
            return
        yield job, "failed", reason

    def _handle(self, w: _Worker, msg: tuple, queue: deque[Job]) -> Iterator[tuple[Job, str, Any]]:
        job = w.job
        kind = msg[0]
        if kind == "ready":
            w.ready = True
            if w.job is not None and not w.waiting:  # its budgets count from now, not from its start-up
                w.busy_since = w.stage_since = time.monotonic()
            return
        if kind == "event":
            _, _, event, data, t = msg
            if event == "stage":
                w.stage, w.stage_since = data, t
                return
            if event == "header":
                job.n_pages = data["n_pages"]
            if event == "pages":
                w.waiting = True
                w.busy_total += t - (w.busy_since or t)
                w.busy_since = None
            yield job, event, data
            return
        w.job, w.busy_since = None, None
        if kind == "done":
            yield job, "done", None
        else:
            yield job, "failed", msg[2]


def run_inline(jobs: list[Job]) -> Iterator[tuple[Job, str, Any]]:
    """The same events as ``PlanPool.run``, planned in this process: no isolation, no budgets (``workers=0``).

    Pull-based like the pool: the next batch of a document is planned when the consumer asks for it."""
    for job in jobs:
        try:
            for kind, data in plan_document(job.path, job.options):
                yield job, kind, data
        except DocumentError as exc:
            yield job, "failed", exc.reason
            continue
        except Exception as exc:
            yield job, "failed", f"unexpected {exc.__class__.__name__}: {str(exc)[:300]}"
            continue
        yield job, "done", None
