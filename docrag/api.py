"""The Python API: ``docrag.open(db, profile=...)`` → ``Index``."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docrag.config import LEGS, Settings, read_config, resolve, storage_options

if TYPE_CHECKING:
    from PIL import Image

    from docrag.indexes.embedders import Embedder
    from docrag.indexes.multivector import MultiVectorEmbedder
    from docrag.indexes.store import Store
    from docrag.pipeline.ingest import IngestReport
    from docrag.pipeline.search import Hit, Searcher, Where

__all__ = ["Index", "Results", "open_index"]


class Results(list):
    """A list of ``Hit``s that converts to a pandas DataFrame. ``hidden``: documents the search could not see
    (still being indexed, or left by a run that stopped)."""

    hidden: int = 0
    # Set by ``Index``: a hit's page thumbnail, for the notebook table (``_repr_html_``).
    thumbnails: Callable[[Hit], Image.Image | None] | None = None

    def __repr__(self) -> str:
        from docrag.display import hits_text

        return hits_text(self, self.hidden)

    def _repr_html_(self) -> str:
        from docrag.display import hits_html

        return hits_html(self, self.thumbnails, self.hidden)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [h.to_dict() for h in self]

    def to_pandas(self) -> Any:
        """One row per hit: rank, file, page, score, confidence, route, label, snippet, metadata (a dict), the
        matching chunk (``chunk``: its text; ``chunk_boxes``, ``chunk_leg``), the page's ``text``, and each leg's
        raw score and rank (``text_score``, ``text_rank`` …)."""
        import pandas as pd

        rows = []
        for rank, h in enumerate(self, start=1):
            d = h.to_dict()
            chunk = d.pop("chunk") or {}
            row = {"rank": rank, **{k: v for k, v in d.items() if k not in ("legs", "text")}}
            row |= {"chunk": chunk.get("text"), "chunk_boxes": chunk.get("boxes"), "chunk_leg": chunk.get("leg")}
            row["text"] = d["text"]
            for leg, info in h.legs.items():
                row[f"{leg}_score"] = info["score"]
                row[f"{leg}_rank"] = info["rank"]
            rows.append(row)
        if not rows:  # the same columns when nothing clears min_score: selecting them still works
            columns = ["rank", "file", "doc_id", "page", "score", "confidence", "route", "label", "snippet"]
            return pd.DataFrame(columns=[*columns, "metadata", "chunk", "chunk_boxes", "chunk_leg", "text"])
        return pd.DataFrame(rows)


class Index:
    """One docrag database: add documents, search pages, inspect what is stored.

    Embedders load on first use. The database remembers the model specs its vectors came from; opening it
    with different models is refused rather than mixing incomparable vectors.
    """

    def __init__(self, db: str | Path, settings: Settings, *, rebuild: bool = False, create: bool = False) -> None:
        from docrag.pipeline.logs import quiet_notebook_progress

        quiet_notebook_progress()  # before any library imports tqdm.auto: no "IProgress not found" in a kernel
        self.db = str(db)
        self.settings = settings
        self._rebuild = rebuild  # start the database over (other models) at the next add
        self._create = create  # a missing database may be made here (create=True, or the first add)
        self._store: Store | None = None
        self._searcher: Searcher | None = None
        self._visual: MultiVectorEmbedder | None = None
        self._single: dict[str, Embedder] = {}  # the text and image legs' embedders (one when they share a model)

    def __repr__(self) -> str:
        from docrag.display import index_text

        return index_text(self)

    def _repr_html_(self) -> str:  # a notebook shows this for ``index``: the database, models, counts
        from docrag.display import index_html

        return index_html(self)

    # -- lazy parts ----------------------------------------------------------------------------------------
    def embedder(self, leg: str) -> Embedder:
        """The ``text`` or ``image`` leg's embedder (loaded on first use; one model when both legs name it)."""
        if leg not in self._single:
            from docrag.indexes.embedders import create_embedder, same_model

            spec = getattr(self.settings, leg)
            if spec is None:
                self.settings.need(leg)  # a model named without its type: say so
                raise ValueError(f"profile {self.settings.profile!r} has no {leg} model (settings.{leg})")
            other = "image" if leg == "text" else "text"
            if other in self._single and same_model(spec, getattr(self.settings, other)):
                self._single[leg] = self._single[other]
            else:
                self.ensure_models(leg)
                self._single[leg] = create_embedder(spec)
        return self._single[leg]

    @property
    def text_embedder(self) -> Embedder:
        """The text leg's embedder (text chunks, and the query for the text leg)."""
        return self.embedder("text")

    @property
    def image_embedder(self) -> Embedder:
        """The image leg's image–text model (figures and image files, and the query for the image leg)."""
        return self.embedder("image")

    def _loader(self, leg: str) -> Any:
        """A zero-argument loader of the leg's model, or None when the settings turn the leg off."""
        if getattr(self.settings, leg) is None:
            return None
        return (lambda: self.visual_embedder) if leg == "visual" else (lambda: self.embedder(leg))

    @property
    def visual_embedder(self) -> MultiVectorEmbedder:
        if self._visual is None:
            from docrag.indexes.multivector import MultiVectorEmbedder

            if self.settings.visual is None:
                self.settings.need("visual")  # a model named without its type: say so
                raise ValueError(f"profile {self.settings.profile!r} has no visual model")
            self.ensure_models("visual")
            self._visual = MultiVectorEmbedder(self.settings.visual)
        return self._visual

    def ensure_models(self, *legs: str, progress: bool = True) -> dict[str, str]:
        """Make the checkpoints of ``legs`` (default: all three) loadable: found in a directory or the Hugging Face
        cache, else downloaded there — unless downloads are off (``settings.offline``, HF_HUB_OFFLINE=1), where
        one ``ModelsUnavailableError`` names every missing one. Returns {model: local directory}."""
        from docrag.indexes.embedders import embedder_class
        from docrag.indexes.models import ensure_models
        from docrag.indexes.multivector import FAMILIES

        legs = legs or LEGS
        specs = {leg: getattr(self.settings, leg) for leg in legs}
        if specs.get("visual") is not None and specs["visual"].type not in FAMILIES:  # before any download
            raise ValueError(f"unknown visual model type {specs['visual'].type!r}; known: {', '.join(FAMILIES)}")
        for leg in ("text", "image"):
            if specs.get(leg) is not None:
                embedder_class(specs[leg])  # an unknown type is a ValueError naming the known ones
        return ensure_models(specs, offline=self.settings.offline, progress=progress, profile=self.settings.profile)

    @property
    def store(self) -> Store:
        """The database, opened for reading (opening writes nothing; a read-only copy can be searched)."""
        if self._store is None:
            from docrag.indexes.store import Store

            if not self._create:
                self._require()
            self._store = Store(
                self.db,
                self.settings.visual,
                self.settings.text,
                self.settings.image,
                profile=self.settings.profile,
                visual_index=self.settings.visual_index,
                storage_options=self.settings.storage_options,
            )
        return self._store

    def _require(self) -> None:
        """``NoDatabaseError`` unless a docrag database is at ``db``: reading a mistyped path is an error, never
        an empty database made on the spot."""
        from docrag.indexes.store import NoDatabaseError, Store

        why = Store.absent(self.db, self.settings.storage_options or None)
        if why is not None:
            raise NoDatabaseError(
                f"{why}: check the path, or make a new database with docrag.open({self.db!r}, create=True) "
                "or by adding documents (index.add(PATHS))"
            )

    def _make(self) -> None:
        """Make the database now when there is none (``docrag.open(..., create=True)``): its tables and its record,
        under the writer lock. An existing one is left as it is."""
        from docrag.indexes.store import Store

        if Store.exists(self.db, self.settings.storage_options or None):
            return
        store = self.store
        with store.writer_lock(None, None, self.settings.ingest.writer_lease_s):
            store.make_writable()

    # -- writing ---------------------------------------------------------------------------------------------
    def add(
        self,
        paths: str | Path | Iterable[str | Path],
        metadata: dict[str, Any] | None = None,
        progress: Any = None,
        *,
        workers: int | None = None,
        lock_wait_s: float | None = None,
        on_lock_wait: Any = None,
        engine: str = "local",
        address: str | None = None,
        formats: str | Iterable[str] | None = None,
    ) -> IngestReport:
        """Index documents (files or folders, recursive; ``formats``: only these families, e.g. "pdf,office");
        unchanged documents are skipped.

        ``workers``: parsing processes (default: the usable cores; 0 parses in this process, without the
        time and memory budgets). Another writer on the same database is waited for (``lock_wait_s``).
        ``engine="ray"`` runs parsing and embedding as Ray Data stages (``docrag[ray]``), on a local Ray or
        the cluster at ``address``; the rows are written from here, with the same rules as locally.
        Ctrl-C raises ``docrag.pipeline.ingest.Interrupted`` with the report so far; rerun to resume.
        """
        from docrag.indexes.store import Store
        from docrag.parsers import parse_families
        from docrag.pipeline.engines import check_engine
        from docrag.pipeline.ingest import Ingestor, start_pool

        families = parse_families(formats)  # a mistake is said before anything is made
        if metadata is not None:  # a value JSON cannot keep is said before anything is made
            from docrag.indexes.metadata import check_metadata

            check_metadata(metadata)
        if isinstance(paths, (str, Path)):
            paths = [paths]
        check_engine(engine, address)  # a mistake is said before any checkpoint is fetched
        if self.settings.router.visual_pages != "none":  # pages may go to the visual leg: it must be usable
            self.settings.need("visual")
        specs = {leg: getattr(self.settings, leg) for leg in LEGS}
        if not self._rebuild and self._store is None:  # other models than the database's: said before downloads
            Store.check_models(self.db, specs, self.settings.storage_options or None)
        self.ensure_models()  # downloaded on first use, or every missing one named: before any file is read
        self._create = True  # the first add makes a missing database
        if self._rebuild:  # the models load first (a broken one fails here): only then can the old rows go
            for load in filter(None, map(self._loader, LEGS)):
                load()
            self._store = self._searcher = None
            cfg = self.settings.ingest
            Store.clear(self.db, self.settings.storage_options or None, lock_wait_s, cfg.writer_lease_s)
            self._rebuild = False
        # The models load at the first batch to embed: the workers plan the first documents meanwhile.
        ingestor = Ingestor(
            self.store,
            self.settings,
            self._loader("text"),
            self._loader("image"),
            self._loader("visual"),
            workers=workers,
            progress=progress,
            lock_wait_s=lock_wait_s,
            on_lock_wait=on_lock_wait,
            engine=engine,
            ray_address=address,
        )
        ingestor.pool = start_pool(self.settings, workers) if engine == "local" else None
        try:
            report = ingestor.run(list(paths), metadata, formats=families)
        finally:
            if ingestor.pool is not None:
                ingestor.pool.close()
        if self.settings.text is not None and "text" in self._single:  # loaded: the confidence's yardstick now,
            from docrag.indexes.baseline import null_vectors  # not at the first search (``pipeline.confidence``)

            null_vectors(self._single["text"])
        return report

    def remove(self, *targets: str | Path) -> int:
        """Remove documents by path (a file, or a folder prefix) or doc_id. Returns how many went."""
        from docrag.pipeline.remove import remove_documents

        return remove_documents(self.store, [str(t) for t in targets])

    # -- reading ---------------------------------------------------------------------------------------------
    @property
    def searcher(self) -> Searcher:
        """Fused search over this database with the registered legs (built once; models load when a leg first
        needs them)."""
        if self._searcher is None:
            from docrag.pipeline.legs import LegParts, build_legs
            from docrag.pipeline.search import Searcher

            parts = LegParts(
                self.store, self.settings.search, self._loader("text"), self._loader("image"), self._loader("visual")
            )
            self._searcher = Searcher(self.store, self.settings.search, build_legs(parts))
        return self._searcher

    def search(
        self,
        query: str | Image.Image,
        k: int = 10,
        where: Where = None,
        legs: Sequence[str] | None = None,
        fusion: str | None = None,
        *,
        min_score: float | None = None,
    ) -> Results:
        """The ``k`` best pages for a text (or image) query, fused over the legs, each explained
        (``hit.legs``; ``hit.regions()`` says where on the page, ``hit.image(regions=True)`` draws it) and
        carrying what a generate step quotes (``hit.text``, ``hit.chunk``, ``hit.metadata``).

        ``where``: SQL over the documents table (``"path LIKE '%2024%'"``), a filter on the metadata given to
        ``add`` (``{"project": "demo"}``; a list of values: any of them; values compare by their text), or a list
        of both. ``min_score``: keep only the hits whose ``confidence`` (0 to 1, the same scale for every query)
        is at least this; 0.5 is a reasonable start."""
        return self._renderable(self.searcher.search(query, k, where, legs, fusion, min_score))

    def search_many(
        self,
        queries: Sequence[str | Image.Image],
        k: int = 10,
        where: Where = None,
        legs: Sequence[str] | None = None,
        fusion: str | None = None,
        *,
        min_score: float | None = None,
    ) -> list[Results]:
        """``search`` for each query (one pass over the store)."""
        found = self.searcher.search_many(queries, k, where, legs, fusion, min_score)
        return [self._renderable(r) for r in found]

    def explain(self, query: str, doc_id: str, page: int, legs: Sequence[str] | None = None) -> Hit | None:
        """The hit that page ``page`` of document ``doc_id`` is for ``query`` (its per-leg scores, ranks within
        the document, and regions); None when no leg scored it. Only that document is searched."""
        hit = self.searcher.explain(query, doc_id, page, legs)
        return self._renderable([hit])[0] if hit is not None else None

    def _renderable(self, hits: list[Hit]) -> Results:
        for hit in hits:
            hit.render = functools.partial(self.page_image, hit)
        out = Results(hits)
        out.hidden = self.store.documents.hidden()
        out.thumbnails = self._page_thumbnail
        return out

    def _page_thumbnail(self, hit: Hit) -> Image.Image:
        """The picture of a hit's page for a table: its stored thumbnail, else the page rendered small."""
        try:
            return self.thumbnail(hit.doc_id, hit.page)
        except KeyError:
            return self.page_image(hit, dpi=20)

    def evaluate(
        self,
        queries: str | Path | list[Any],
        ks: Iterable[int] = (5, 10),
        legs: Sequence[str] | None = None,
        labels: str | Path | None = None,
        qrels: str | Path | None = None,
        fusion: str | None = None,
    ) -> dict[str, Any]:
        """nDCG@k, recall@k and MRR@10 of the fused ranking (``fusion``: rrf or weighted; default the settings')
        and of each leg alone (and routing accuracy with ``labels``). ``queries``: a JSON-lines file (dev-set or
        BEIR format, with ``qrels``) or Query objects."""
        from docrag.pipeline.eval import evaluate, load_queries

        qs = load_queries(queries, qrels) if isinstance(queries, (str, Path)) else list(queries)
        return evaluate(self.searcher, qs, ks, legs, labels, store=self.store, fusion=fusion)

    def page_image(self, hit: Hit, dpi: float = 100, regions: bool = False) -> Image.Image:
        """The hit's page rendered from its file, or the stored thumbnail when the file is gone or unreadable;
        ``regions=True`` draws the hit's answer regions on it."""
        image = self.render(hit.doc_id, hit.page, dpi, first=hit.file)
        if regions:
            from docrag.pipeline.regions import draw_regions

            image = draw_regions(image, hit.regions())
        return image

    def render(self, doc_id: str, page: int, dpi: float = 100, first: str | None = None) -> Image.Image:
        """Page ``page`` of a document, rendered from the first of its paths that reads (``first`` tried first),
        under the settings' limits, or its stored thumbnail; a KeyError when neither is there."""
        from docrag.pipeline.plan import render_page

        doc = self.store.documents.get(doc_id, ["paths"]) or {"paths": []}
        paths = list(dict.fromkeys([*([first] if first else []), *doc["paths"]]))
        image = render_page(paths, page, dpi, self.settings.limits, self.store.conversion_cache())
        return image if image is not None else self.thumbnail(doc_id, page)

    def find(self, name: str) -> dict[str, Any] | None:
        """The document named by doc_id, indexed path or file name (several with it: ValueError), else None."""
        docs, resolved = self.documents(), str(Path(name).resolve())
        named = [d for d in docs if name == d["doc_id"] or resolved in d["paths"]]
        named = named or [d for d in docs if any(Path(p).name == name for p in d["paths"])]
        if len(named) > 1:
            paths = ", ".join(sorted(p for d in named for p in d["paths"] if Path(p).name == name))
            raise ValueError(f"{name} names {len(named)} indexed files ({paths}): give its path or doc_id")
        return named[0] if named else None

    def documents(self) -> list[dict[str, Any]]:
        """Every document: doc_id, path (the first), paths (all with these bytes), status, metadata … as of now:
        what another process indexed since this index was opened is there (a long-lived reader sees it)."""
        self.store.refresh()
        rows = self.store.documents.rows()
        for r in rows:
            r["metadata"] = r["metadata"] or {}
        return sorted(rows, key=lambda r: r["path"])

    def stats(self) -> dict[str, Any]:
        store = self.store
        store.refresh()
        docs = store.documents.rows(columns=["status", "n_pages"])
        pages = store.pages.rows(columns=["route", "label"])
        count = lambda key: {v: sum(1 for p in pages if p[key] == v) for v in sorted({p[key] for p in pages})}  # noqa: E731
        visual = store.visual.count()
        return {
            "db": self.db,
            "profile": self.settings.profile,
            "documents": sum(d["status"] == "ready" for d in docs),
            "incomplete_documents": sum(d["status"] != "ready" for d in docs),
            "pages": len(pages),
            "routes": count("route"),
            "labels": count("label"),
            "chunks": store.chunks.count(),
            "images": store.images.count(),
            "visual_pages": visual,
            "visual_model": store.visual_spec.model if store.visual_spec else None,
            "text_model": store.text_spec.model if store.text_spec else None,
            "image_model": store.image_spec.model if store.image_spec else None,
            # What built the database, by leg: the vectors are these models' (a reindex with others is refused).
            "built_with": {
                leg: {"type": spec.type, "model": spec.model, "revision": spec.revision} if spec else None
                for leg, spec in (("visual", store.visual_spec), ("text", store.text_spec), ("image", store.image_spec))
            },
            "visual_index": store.visual_index.record(),
            "visual_search": store.visual.method(self.settings.search.visual_search) if visual else None,
        }

    def thumbnail(self, doc_id: str, page: int) -> Image.Image:
        from PIL import Image

        data = self.store.pages.thumbnail(doc_id, page)
        if data is None:
            raise KeyError(f"no thumbnail for {doc_id} page {page}")
        return Image.open(io.BytesIO(data))

    def check(self, repair: bool = False, lock_wait_s: float | None = None) -> dict[str, Any]:
        """Read every table and compare each ready document's rows with its counts; with ``repair`` (when something
        is wrong), restore unreadable tables, delete the documents whose rows do not match (the next run redoes
        them) and rebuild the visual codes, then check again. The model record is not needed (it may be unreadable)."""
        from docrag.indexes.codes_build import check_with_codes, repair_with_codes
        from docrag.indexes.database import Database

        if self._store is None:
            self._require()  # (a database this object made or wrote to is there)
        db = Database(self.db, self.settings.storage_options)
        result = check_with_codes(db)
        if repair and (not result["ok"] or result.get("visual_codes") in ("stale", "missing")):
            with db.writer_lock(lock_wait_s):
                db.writable = True
                result["repair"] = repair_with_codes(db)
            result["after"] = check_with_codes(db)
        return result


def open_index(
    db: str | Path,
    profile: str | None = None,
    config: str | Path | None = None,
    *,
    create: bool = False,
    rebuild: bool = False,
    **overrides: Any,
) -> Index:
    """Open the database at ``db`` with a profile (cpu, gpu, lite), a TOML config and overrides.

    Reading a database that is not there (a search, ``stats``, ``documents`` …) raises ``NoDatabaseError``
    ("no database at …"): a mistyped path is never an empty database. ``create=True`` makes a missing one now;
    ``add`` makes it with its first documents. ``rebuild``: start it over with these settings' models at the
    next ``add`` (its rows go then, once the models are here).

    ``db``: a folder, or an object storage URI (``s3://bucket/prefix``; endpoint and credentials from
    ``storage_options={...}`` or the environment, AWS_*). A database remembers its models: reopening it
    without a profile reuses them. The settings are resolved once (``docrag.config.resolve``).
    """
    from docrag.indexes.store import Store

    db = str(db)
    file = read_config(config)
    stored = Store.record(db, storage_options(file, overrides) or None)
    if rebuild:  # the database's profile still applies when none is named, but not its models
        stored = {"profile": stored["profile"]} if stored.get("profile") else {}
    settings = resolve(stored, profile, file, overrides, source=str(config or ""))
    index = Index(db, settings, rebuild=rebuild, create=create)
    if create:
        index._make()
    return index
