"""Where the plan and embed steps of indexing run, as one stream of events for the bookkeeper.

An engine turns the documents to index into events, in the order they happen:

- ``Started``: a document's header (its page count and warnings), before any of its rows;
- ``Embedded``: embedded rows of one or more documents (and the headers of those documents, for engines that
  may deliver rows first);
- ``Planned``: a document is planned whole, in ``planned`` pages (its rows may still be on their way);
- ``Failed``: a document failed (its worker timed out, crashed, or it could not be read).

``local``: this machine's isolated plan workers (``pipeline.workers``) and embedding in this process, batched
across documents. ``ray``: Ray Data stages (``pipeline.ray_engine``). ``Ingestor`` (``pipeline.ingest``)
consumes either stream the same way: it writes the rows and flips each document to ``ready`` once all its
planned pages are in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plan import PagePlan
    from .rows import EmbeddedRows
    from .workers import Job, PlanPool

__all__ = [
    "ENGINES",
    "Embedded",
    "EngineError",
    "Event",
    "Failed",
    "Planned",
    "Started",
    "check_engine",
    "fresh_pages",
    "local_events",
    "page_warnings",
    "ray_available",
]

ENGINES = ("local", "ray")  # the one list of engine names


class EngineError(RuntimeError):
    """The engine itself failed (an actor or a node died, the cluster went away): the run stops."""


def check_engine(name: str, address: str | None = None) -> None:
    """A ValueError for an unknown engine, an address without Ray, or Ray not installed."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
    if address and name != "ray":
        raise ValueError("a cluster address is for the ray engine (--engine ray)")
    if name == "ray" and not ray_available():
        raise ValueError("the Ray engine needs Ray Data: pip install 'docrag[ray]'")


def ray_available() -> bool:
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(slots=True)
class Started:
    job: int
    n_pages: int
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Embedded:
    rows: EmbeddedRows
    starts: list[Started] = field(default_factory=list)  # the headers of the documents in ``rows``


@dataclass(slots=True)
class Planned:
    job: int
    planned: int  # pages planned (each once, when it was planned again; a resumed document's written ones too)
    header: Started | None = None
    # Pages that could not be read, and what parsers said ({"warning": "page N: reason"}, "source": "parser")
    warnings: list[dict[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Failed:
    job: int
    reason: str


Event = Started | Embedded | Planned | Failed


def fresh_pages(seen: set[int], plans: Sequence[PagePlan]) -> list[PagePlan]:
    """The plans of pages not delivered before (``seen``: page numbers, updated). A document planned again
    (element extraction gave up) repeats its first pages, whose rows may be written already: each page's rows
    are written once, from its first plan."""
    out = [p for p in plans if p.number not in seen]
    seen.update(p.number for p in out)
    return out


def page_warnings(errors: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """A ``page_errors`` event's pages, as the document's warnings: ``{"warning": "page N: …"}``, with the
    ``source`` of what a parser said (``pipeline.chatter``)."""
    return [
        {"warning": f"page {e['page']}: {e['error']}" if e.get("page") else str(e["error"])}
        | ({"source": e["source"]} if e.get("source") else {})
        for e in errors
    ]


def local_events(
    jobs: Sequence[Job],
    pool: PlanPool | None,
    embed: Callable[[list[tuple[int, PagePlan]]], EmbeddedRows],
    page_batch: int,
    models_ready: Callable[[], bool],
    run_inline: Callable[[Sequence[Job]], Iterator[tuple[Job, str, Any]]],
) -> Iterator[Event]:
    """The local engine: plans from the worker ``pool`` (None: planned in this process by ``run_inline``),
    embedded here with ``embed`` in batches of ``page_batch`` pages across documents, and at the end of each
    document (its rows go in as soon as it is planned whole). While the models still load (``models_ready``),
    the workers keep planning ahead, up to four batches."""
    buffer: list[tuple[int, PagePlan]] = []
    planned: dict[int, set[int]] = {}  # job -> page numbers delivered
    failed: set[int] = set()
    unread: dict[int, list[dict[str, str]]] = {}  # job -> its pages that could not be read, what parsers said
    flush_at = max(page_batch, 1)

    def flush() -> Iterator[Event]:
        batch = [(j, p) for j, p in buffer if j not in failed]
        buffer.clear()
        if batch:
            yield Embedded(embed(batch))

    source = pool.run(list(jobs)) if pool is not None else run_inline(list(jobs))
    for job, kind, data in source:
        if kind == "header":
            if job.id not in planned:  # (a second header: planned again, its pages delivered once)
                yield Started(job.id, data["n_pages"], list(data["warnings"]))
            planned.setdefault(job.id, set(job.options.skip_pages))  # a resumed document's written pages count
        elif kind == "pages":
            seen = planned.setdefault(job.id, set(job.options.skip_pages))
            buffer.extend((job.id, p) for p in fresh_pages(seen, data))
            if pool is not None:
                pool.more(job)  # its worker plans the next batch while this one is embedded
            if len(buffer) >= flush_at and (models_ready() or len(buffer) >= 4 * flush_at):
                yield from flush()
        elif kind == "page_errors":
            unread.setdefault(job.id, []).extend(page_warnings(data))
        elif kind == "done":
            if models_ready() and any(j == job.id for j, _ in buffer):
                # Its last pages go now, with whatever else is waiting: a finished document becomes ready as soon
                # as it can, not when a later document fills the batch (a kill would take it along).
                yield from flush()
            yield Planned(job.id, len(planned.get(job.id, ())), warnings=unread.pop(job.id, []))
        elif kind == "failed":
            failed.add(job.id)
            yield Failed(job.id, str(data))
    yield from flush()
