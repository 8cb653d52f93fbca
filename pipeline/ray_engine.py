"""Indexing on Ray Data: the same two steps as the local engine, as Ray stages (``docrag[ray]``).

::

    documents to index (the driver's bookkeeping: hashes, skip-unchanged, removed paths — as locally)
      → plan   actor pool on CPUs: each actor keeps one isolated plan worker (``pipeline.workers.PlanPool``),
               so the time and memory budgets, kill-and-replace and per-file failures are the local ones
      → embed  actor pool: one actor per GPU (``num_gpus=1``), else one per node sharing its cores with
               parsing (as the local engine's own process does); ``pipeline.rows.embed_plans``
      → write  in the driver, which holds the writer lock: the events (``pipeline.engines``) go to the
               ``Ingestor``, which writes the rows and flips each document to ``ready`` once all its pages are in

Rows stream through the stages (Ray Data's streaming executor): the plan of a 1,000-page document never
waits in memory whole. Without an address Ray starts on this machine; with one (``ray://…`` or
``host:port``, or ``auto``) the pipeline joins that cluster, whose workers need docrag installed and the
files at the same paths (a shared filesystem).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engines import (
    Embedded,
    EngineError,
    Event,
    Failed,
    Planned,
    Started,
    fresh_pages,
    page_warnings,
    ray_available,
)
from .rows import embed_plans

if TYPE_CHECKING:
    from docrag.config import Settings

    from .plan import PlanOptions
    from .workers import PlanPool

__all__ = ["RayPipelineError", "ray_events", "start_ray"]

log = logging.getLogger(__name__)


def _require_ray() -> Any:
    if not ray_available():
        raise ValueError("the Ray engine needs Ray Data: pip install 'docrag[ray]'")
    import ray

    return ray


def start_ray(address: str | None = None) -> Any:
    """Ray, initialised: joined to ``address``, or started on this machine (or the one already running). An
    address nobody listens at is a ValueError at once, whether or not this process runs Ray already."""
    ray = _require_ray()
    if address:
        _reachable(address)
    if not ray.is_initialized():
        verbose = logging.getLogger("docrag").getEffectiveLevel() <= logging.INFO
        level = logging.INFO if verbose else logging.ERROR  # quiet by default, like the rest of docrag
        kwargs: dict[str, Any] = {"log_to_driver": verbose, "logging_level": level}
        if address:
            kwargs["address"] = address
        else:
            # "local": a new Ray on this machine, never a cluster found in Ray's address file (a head that
            # was killed leaves that file behind, and joining it would hang).
            kwargs.update(address="local", include_dashboard=False)
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(level)
        if not verbose:
            _quiet_error_messages()
        try:
            with warnings.catch_warnings():
                # lancedb warns about fork when Ray starts its processes (fork + exec: nothing is shared).
                warnings.filterwarnings("ignore", message="lancedb fork support", category=RuntimeWarning)
                ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise ValueError(f"cannot start or join {where}: {str(exc).splitlines()[0][:300]}") from None
        from ray.data import DataContext

        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
    return ray


def _quiet_error_messages() -> None:
    """No "(raylet) …" lines on this terminal. ``log_to_driver`` covers the workers' output only; Ray's error
    messages (a task that failed "… retries remaining", an actor that died) reach the driver on a thread of
    their own, printed to stdout, and a Ctrl-C or a failed run makes many of them: the run's own report says
    what failed, and ``--verbose`` shows them. Ray's debugger turns them off the same way."""
    import ray._private.worker as ray_worker

    if hasattr(ray_worker, "_worker_logs_enabled"):
        ray_worker._worker_logs_enabled = False


class RayPipelineError(EngineError):
    """The Ray pipeline itself failed (an actor or a node died, the cluster went away): the run stops."""


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a cluster address nobody listens at (``ray.init`` would retry it for minutes)."""
    import socket

    if address.startswith("local"):
        return
    if address == "auto":  # Ray's own resolution: RAY_ADDRESS, else the address file of a cluster started here
        found = os.environ.get("RAY_ADDRESS", "")
        if not found:
            try:
                found = Path("/tmp/ray/ray_current_cluster").read_text(encoding="utf-8").strip()
            except OSError:
                return  # none: ray.init says so at once
        if not found or found == "auto":
            return
        address = found
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address {address!r}: give the Ray cluster as host:port, ray://host:port or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ValueError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})") from None


class _PlanStage:
    """A Ray actor: plans documents one at a time in its own isolated worker process."""

    def __init__(self, options: PlanOptions, preload: tuple[str, ...]) -> None:
        self.options, self.preload = options, preload
        self.pool: PlanPool | None = None
        self._open()  # the worker starts while the embed actors load their models

    def _open(self) -> PlanPool:
        if self.pool is None:
            from .workers import PlanPool

            self.pool = PlanPool(1, self.options.ingest, self.preload).__enter__()
        return self.pool

    def close(self) -> None:
        """Stop the worker process (again: nothing to do)."""
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.close()

    def __call__(self, batch: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The events of the batch's documents. When planning fails, or the pipeline stops taking them (it
        failed, or was interrupted), the worker is stopped at once, not left to the actor's end: the next
        document (if any) starts a fresh one."""
        self._open()
        try:
            yield from self._plan(batch)
        except BaseException:  # GeneratorExit included: the pipeline closed this iterator
            self.close()
            raise

    def _plan(self, batch: dict[str, Any]) -> Iterator[dict[str, Any]]:
        from .workers import Job

        for job_id, doc_id, path, skip in zip(batch["job"], batch["doc_id"], batch["path"], batch["skip"], strict=True):
            skip_pages = frozenset(int(n) for n in str(skip).split(",") if n)  # a resumed document's written pages
            job = Job(int(job_id), str(path), self.options.model_copy(update={"skip_pages": skip_pages}))
            seen = set(skip_pages)  # page numbers delivered (planned again: each page once)
            unread: list[dict[str, str]] = []  # its pages that could not be read, what parsers said
            header = None
            for _, kind, data in self.pool.run([job]):
                if kind == "header" and header is None:
                    header = Started(job.id, data["n_pages"], list(data["warnings"]))
                    yield _event_batch(header)
                elif kind == "pages":  # one row holds the batch: it travels (and is embedded) as one
                    fresh = fresh_pages(seen, data)
                    if fresh:
                        yield {
                            "job": [job.id],
                            "doc_id": [str(doc_id)],
                            "kind": ["plan"],
                            "event": [header],
                            "plan": [fresh],
                        }
                    self.pool.more(job)
                elif kind == "page_errors":
                    unread.extend(page_warnings(data))
                elif kind == "done":
                    yield _event_batch(Planned(job.id, len(seen), header, unread))
                elif kind == "failed":
                    yield _event_batch(Failed(job.id, str(data)))

    def __del__(self) -> None:  # the pipeline ended: Ray Data drops its actors' stages (``__ray_shutdown__``)
        if getattr(self, "pool", None) is not None:
            self.close()


def _event_batch(event: Event) -> dict[str, list[Any]]:
    return {"job": [event.job], "doc_id": [""], "kind": ["event"], "event": [event], "plan": [None]}


class _EmbedStage:
    """A Ray actor holding the embedders: embeds the plans of a batch of pages (several documents)."""

    def __init__(self, settings: Settings, visual: bool, threads: int) -> None:
        from docrag.indexes.embedders import create_embedders
        from docrag.indexes.multivector import MultiVectorEmbedder

        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        self.settings = settings
        self.text, self.image = create_embedders(settings.text, settings.image)
        self.visual = MultiVectorEmbedder(settings.visual) if visual and settings.visual is not None else None

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        events: list[Event] = []
        plans: list[tuple[int, str, Any]] = []
        starts: dict[int, Started] = {}
        for job, doc_id, kind, event, batch_plans in zip(
            batch["job"], batch["doc_id"], batch["kind"], batch["event"], batch["plan"], strict=True
        ):
            if kind == "plan":
                plans.extend((int(job), str(doc_id), p) for p in batch_plans)
                if event is not None:
                    starts[int(job)] = event
            else:
                events.append(event)
        if plans:
            try:
                rows = embed_plans(
                    [(d, p) for _, d, p in plans], self.text, self.image, self.visual, self.settings.ingest
                )
                events.append(Embedded(rows, list(starts.values())))
            except Exception as exc:  # one bad batch fails its documents, not the run
                reason = f"embedding failed: {exc.__class__.__name__}: {str(exc)[:300]}"
                events.extend(Failed(j, reason) for j in sorted({j for j, _, _ in plans}))
        return {"event": events}


def _no_restarts() -> dict[str, Any]:
    # Ray Data restarts its actors by default and notes on stderr, for each, that a restart could fail.
    return {"max_restarts": 0}


def ray_events(
    jobs: list[tuple[int, str, str, frozenset[int]]],
    options: PlanOptions,
    settings: Settings,
    *,
    visual: bool,
    address: str | None = None,
    preload: tuple[str, ...] = (),
) -> Iterator[Event]:
    """Run the plan and embed stages over ``jobs`` ((job id, doc_id, path, pages written already)) and yield
    their events as they come (``pipeline.engines``: the driver writes the rows; ``Embedded`` rows name their
    documents by doc_id)."""
    ray = start_ray(address)
    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
    nodes = max(1, len([n for n in ray.nodes() if n.get("Alive")]))
    if gpus:
        embed_actors, embed_res = gpus, {"num_gpus": 1, "num_cpus": 1}
        plan_actors = max(1, cpus - gpus)
    else:
        embed_actors, embed_res = nodes, {"num_cpus": 0}  # shares the cores with parsing, as locally
        plan_actors = max(1, cpus)
    threads = 0 if gpus else max(1, (os.cpu_count() or 1))
    items = [{"job": j, "doc_id": d, "path": p, "skip": ",".join(map(str, sorted(k)))} for j, d, p, k in jobs]
    from ray.data import DataContext

    ctx = DataContext.get_current()
    old_block = ctx.target_max_block_size
    # Every row a plan actor yields (a batch of pages, or an event) is a block of its own, passed on at
    # once: Ray Data otherwise fills blocks up to 128 MiB, so a document's pages would reach the embed actors
    # only when it is all planned and embedding would not overlap parsing. (This dataset only: restored.)
    ctx.target_max_block_size = 1
    try:
        with warnings.catch_warnings():
            # ray_remote_args_fn is the one way to set max_restarts on Ray Data's actors in 2.60 (deprecated for
            # 2.64: the extra pins ray below it).
            warnings.filterwarnings("ignore", message=".*ray_remote_args_fn", category=Warning)
            ds = _pipeline(
                ray, items, options, settings, visual, preload, plan_actors, embed_actors, embed_res, threads
            )
        ds.context.target_max_block_size = 1
    finally:
        ctx.target_max_block_size = old_block
    batches = iter(ds.iter_batches(batch_size=None, batch_format="numpy"))
    try:
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise RayPipelineError(f"the Ray pipeline failed: {exc.__class__.__name__}: {first[:300]}") from exc
            yield from batch["event"]
    finally:  # ended, failed or closed by the consumer: the execution stops now and lets its actors go
        close = getattr(batches, "close", None)
        if close is not None:
            try:
                close()
            except Exception as exc:  # Ray's own clean-up must not hide why the stream ended
                log.info("closing the Ray pipeline: %s", exc)


def _pipeline(
    ray: Any,
    items: list[dict[str, Any]],
    options: PlanOptions,
    settings: Settings,
    visual: bool,
    preload: tuple[str, ...],
    plan_actors: int,
    embed_actors: int,
    embed_res: dict[str, Any],
    threads: int,
) -> Any:
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    ds = ds.map_batches(
        _PlanStage,
        fn_constructor_kwargs={"options": options, "preload": preload},
        batch_size=1,
        batch_format="numpy",
        # One document at a time per actor: a free actor takes the next one (Ray Data would otherwise queue
        # several on each actor up front, and one actor could end up with all the long scans).
        compute=ray.data.ActorPoolStrategy(size=min(plan_actors, max(1, len(items))), max_tasks_in_flight_per_actor=1),
        num_cpus=1,
        # A plan actor does not die of a bad file (its worker process does, and is replaced); one that dies
        # anyway (the node went away) stops the run, and the next run resumes where it stopped.
        ray_remote_args_fn=_no_restarts,
    )
    ds = ds.map_batches(
        _EmbedStage,
        fn_constructor_kwargs={"settings": settings, "visual": visual, "threads": threads},
        batch_size=None,  # a block as it comes: one batch of a document's pages (page_batch), or one event
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=embed_actors),
        ray_remote_args_fn=_no_restarts,
        **embed_res,
    )
    return ds
