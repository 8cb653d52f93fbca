"""The store: one docrag database (``indexes.database``) and its table groups, behind one small facade.

- ``store.documents`` (``indexes.documents``): documents, their paths and status;
- ``store.pages`` (``indexes.pages``): pages, their words and thumbnails, and the BM25 leg;
- ``store.chunks``, ``store.images`` (``indexes.vectors``): the text and image legs;
- ``store.visual`` (``indexes.visual``): the visual leg and its first stage.

The model record lives in the ``meta`` table, written once: the model specs the vectors came from, their sizes,
how visual vectors are stored (``VisualIndexSpec``), the profile and the schema version. The store is handed
resolved specs (``docrag.config.resolve``); one that differs from the record in what makes vectors comparable
raises ``ModelMismatchError`` rather than mixing incomparable vectors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .codes_build import check_with_codes, drop_pack, repair_with_codes
from .database import (
    SCHEMA_VERSION,
    Candidate,
    Database,
    LockTimeout,
    ModelMismatchError,
    NoDatabaseError,
    StoreError,
    is_uri,
    sql_in,
    sql_str,
)
from .documents import DocumentsTable
from .locks import LOCK_FILE
from .models import ModelSpec
from .pages import PagesTable
from .record import OBSOLETE_KEYS
from .schema import CHUNKS, COUNTED, IMAGES, META, PAGES, POOLED, SCHEMAS, Dims, RowSchema
from .vectors import ChunksTable, ImagesTable
from .visual import PageVectors, VisualTables
from .visual_codes import codes_root, record_from_pack
from .visual_index import VisualIndexSpec

__all__ = [
    "Candidate",
    "LockTimeout",
    "ModelMismatchError",
    "NoDatabaseError",
    "PageVectors",
    "Store",
    "StoreError",
    "conversion_cache",
    "is_uri",
    "sql_in",
    "sql_str",
]

log = logging.getLogger(__name__)


def _spec(stored: Any) -> ModelSpec | None:
    return ModelSpec.model_validate(stored) if stored else None


def _named(spec: ModelSpec) -> str:
    return f"{spec.type}:{spec.model}" + (f"@{spec.revision[:12]}" if spec.revision else "")


def check_spec(uri: str, leg: str, given: ModelSpec | None, stored: ModelSpec | None) -> ModelSpec | None:
    """The spec to run with: ``given`` when it makes vectors comparable with the ``stored`` one (run-time
    fields such as the device may differ), ``stored`` when none is given; else ``ModelMismatchError``."""
    if stored is None or given is None:
        return given or stored
    if given.fingerprint() != stored.fingerprint():
        what = f"{uri} was built with the {leg} model {_named(stored)}, not {_named(given)}"
        raise ModelMismatchError(
            f"{what}: open it without a profile or other models to use its own, or rebuild it with these "
            "(docrag.open(..., rebuild=True), or `docrag index … --rebuild`)",
            what=what,
            rebuildable=True,
        )
    return given


def check_visual_index(
    uri: str, given: VisualIndexSpec | None, stored: VisualIndexSpec | None, vectors: bool = True
) -> VisualIndexSpec:
    """How visual vectors are stored is fixed once the database has them: the stored spec, with the given first
    stage (a search-time choice). Asking for other storage or pooling than the stored (other than the
    defaults) is refused. A database without visual vectors (``vectors`` False) takes the given spec."""
    if stored is None or (given is not None and not vectors):
        return given or stored or VisualIndexSpec()
    fixed = {"first_stage"}
    if given is not None and given.model_dump(exclude=fixed) not in (
        stored.model_dump(exclude=fixed),
        VisualIndexSpec().model_dump(exclude=fixed),
    ):
        raise ModelMismatchError(
            f"{uri} stores visual vectors as {stored.record()}; it cannot be searched or extended as "
            f"{given.record()}. Use another --db, or re-index this one from scratch."
        )
    return stored.model_copy(update={"first_stage": given.first_stage}) if given is not None else stored


def conversion_cache() -> Path:
    """Where PDFs converted from Office files are kept by content hash (``parsers.office``): the user's docrag
    cache (``$DOCRAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/docrag``, else ``~/.cache/docrag``), ``converted/``.
    Shared by every database of this user and by ``docrag route``: the same bytes are converted once (and a
    database on object storage needs a local folder anyway). ``rm -r`` it to reclaim the space."""
    from .accel import cache_dir

    return cache_dir() / "converted"


class Store:
    """One docrag database (a local directory, or any URI LanceDB accepts, e.g. s3://)."""

    def __init__(
        self,
        uri: str | Path,
        visual_spec: ModelSpec | None = None,
        text_spec: ModelSpec | None = None,
        image_spec: ModelSpec | None = None,
        *,
        profile: str | None = None,
        writable: bool = False,
        visual_index: VisualIndexSpec | None = None,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        self.db = Database(uri, storage_options)
        self.uri = self.db.uri
        # A local database with current visual codes: its record as they copied it, so that a search answered
        # from the codes never imports lancedb (``indexes.visual_codes``).
        record = (None if writable else record_from_pack(self.uri)) or self.db.meta()
        if record and record.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(
                f"{self.uri} was written by another version of docrag (rows of schema "
                f"{record.get('schema_version', 0)}, this one reads {SCHEMA_VERSION}): index the documents again "
                "into a new --db"
            )
        self._upgrade = record.pop("migrated_from", None) is not None  # written as this schema at the next write
        self._record = record
        self.visual_spec = check_spec(self.uri, "visual", visual_spec, _spec(record.get("visual_spec")))
        self.text_spec = check_spec(self.uri, "text", text_spec, _spec(record.get("text_spec")))
        self.image_spec = check_spec(self.uri, "image", image_spec, _spec(record.get("image_spec")))
        stored_index = record.get("visual_index")
        vectors = bool(record.get("visual_dim"))
        self.visual_index = check_visual_index(
            self.uri, visual_index, VisualIndexSpec.model_validate(stored_index) if stored_index else None, vectors
        )
        # The first stage searched is a search-time choice; the record keeps the one the database was made with
        # (a database without visual vectors records the spec its first ones will have).
        self._made_with = stored_index if stored_index and vectors else self.visual_index.record()
        self.profile = record.get("profile") or profile
        self.dims = Dims(
            record.get("text_dim"), record.get("image_dim"), record.get("visual_dim"), self.visual_index.storage
        )
        self.documents = DocumentsTable(self.db)
        self.pages = PagesTable(self.db)
        self.chunks = ChunksTable(self.db, lambda: self.dims.text)
        self.images = ImagesTable(self.db, lambda: self.dims.image)
        self.visual = VisualTables(
            self.db, lambda: self.dims, self.visual_index, int(record.get("codebook_vectors") or 0)
        )
        if writable:
            self.make_writable()

    # -- what is there ------------------------------------------------------------------------------------------
    @staticmethod
    def exists(uri: str | Path, storage_options: dict[str, str] | None = None) -> bool:
        """Whether a docrag database is at ``uri`` (a StoreError when the storage cannot be listed)."""
        return Database.exists(uri, storage_options)

    @staticmethod
    def absent(uri: str | Path, storage_options: dict[str, str] | None = None) -> str | None:
        """Why there is no docrag database at ``uri`` ("no database at …"), or None when there is one. Nothing is
        created; a StoreError when the storage cannot be listed."""
        if Database.exists(uri, storage_options):
            return None
        if is_uri(uri):
            return f"no docrag database at {uri} (no documents table there)"
        path = Path(uri)
        if not path.exists():
            return f"no database at {uri}"
        if not path.is_dir():
            return f"{uri} is a file, not a docrag database"
        if not any(path.iterdir()):
            return f"no database at {uri} (an empty folder)"
        return f"{uri} is not a docrag database (no documents table in it)"

    @staticmethod
    def record(uri: str | Path, storage_options: dict[str, str] | None = None) -> dict[str, Any]:
        """What the database at ``uri`` says about itself (model specs, sizes, profile); {} when there is none."""
        return Database.read_meta(uri, storage_options)

    @staticmethod
    def check_models(
        uri: str | Path, specs: Mapping[str, ModelSpec | None], storage_options: dict[str, str] | None = None
    ) -> None:
        """``ModelMismatchError`` when the database at ``uri`` was built with other models than ``specs`` ({leg:
        spec}): said before any checkpoint is fetched, and without opening (or making) the database."""
        record = Database.read_meta(uri, storage_options)
        for leg, spec in specs.items():
            check_spec(str(uri), leg, spec, _spec(record.get(f"{leg}_spec")))

    @staticmethod
    def clear(
        uri: str | Path,
        storage_options: dict[str, str] | None = None,
        wait_s: float | None = None,
        lease_s: float | None = None,
    ) -> int:
        """Start the database at ``uri`` over, for a rebuild with other models: every table dropped, under the
        writer lock. Returns how many tables were dropped (the record not counted); 0 when there is none."""
        if not Database.exists(uri, storage_options):
            return 0
        db = Database(uri, storage_options)
        db.writable = True
        with db.writer_lock(wait_s, None, lease_s):
            drop_pack(db.uri)
            return db.clear()

    def own_paths(self) -> list[Path]:
        """The database's own folders and files on the local disk (LanceDB's folder per table, the writer lock):
        what a walk of the documents' folders leaves out when the database lies in one. [] on object storage."""
        if is_uri(self.uri):
            return []
        root = Path(self.uri)
        return [*sorted(root.glob("*.lance")), root / LOCK_FILE, codes_root(self.uri)]

    def conversion_cache(self) -> Path:
        """Where this database's Office files are kept as PDFs: ``conversion_cache()``."""
        return conversion_cache()

    @property
    def writable(self) -> bool:
        return self.db.writable

    def refresh(self) -> None:
        """See what other processes wrote since (a query calls this once, at its start)."""
        self.db.refresh()

    # -- the record and the tables ------------------------------------------------------------------------------
    def _wanted_record(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "profile": self.profile,
            "text_dim": self.dims.text,
            "image_dim": self.dims.image,
            "visual_dim": self.dims.visual,
            "visual_index": self._made_with,
            "text_spec": self.text_spec.model_dump() if self.text_spec else None,
            "image_spec": self.image_spec.model_dump() if self.image_spec else None,
            "visual_spec": self.visual_spec.model_dump() if self.visual_spec else None,
        }

    def make_writable(
        self, text_dim: int | None = None, image_dim: int | None = None, visual_dim: int | None = None
    ) -> None:
        """Open for writing: create the missing tables and write the record where anything is missing or changed
        (a database opened this way and left unchanged is not written). A vector size not known yet (a new
        database whose models have not loaded) leaves its tables to a later call."""
        given = {"text": text_dim, "image": image_dim, "visual": visual_dim}
        learned = set()
        for leg, dim in given.items():
            have = getattr(self.dims, leg)
            if dim and have and dim != have:
                raise ModelMismatchError(f"{self.uri}: {leg} vectors are {have}-d here, not {dim}-d")
            if dim and not have:
                learned.add(leg)
        self.dims = Dims(
            self.dims.text or text_dim, self.dims.image or image_dim, self.dims.visual or visual_dim, self.dims.storage
        )
        self.db.writable = True
        for schema in SCHEMAS:
            if schema is not META and schema.ready(self.dims) and not self.db.has(schema):
                self.db.create(schema, self.dims)
        for schema in (CHUNKS, IMAGES):
            if schema.needs in learned:  # a size known only now: does a table made earlier fit it?
                self._fit_width(schema)
        self.documents.upgrade()  # a table written by schema 1 or 2 gets the metadata_pairs column
        wanted = self._wanted_record()
        changed = {k: v for k, v in wanted.items() if json.dumps(self._record.get(k)) != json.dumps(v)}
        if self._upgrade:  # a record read through ``migrate``: written whole, as this schema, the old keys gone
            changed = wanted
            self.db.delete(META, sql_in("key", OBSOLETE_KEYS))
            self._upgrade = False
        if changed:
            self.db.set_meta(changed)
            self._record |= changed

    def _fit_width(self, schema: RowSchema) -> None:
        """A table made for vectors of another size (schema 1 made the images table with the text model's size
        even without an image model) is made again while it is empty; with rows, it is a ``ModelMismatchError``."""
        want = getattr(self.dims, schema.needs or "")
        if not want or not self.db.has(schema):
            return
        width = self.db.table(schema).schema.field("vector").type.list_size
        if width == want:
            return
        if self.db.count(schema):
            raise ModelMismatchError(f"{self.uri}: {schema.name} vectors are {width}-d here, not {want}-d")
        self.db.create(schema, self.dims, overwrite=True)

    @contextmanager
    def writer_lock(
        self,
        wait_s: float | None = None,
        on_wait: Callable[[str], None] | None = None,
        lease_s: float | None = None,
    ) -> Iterator[None]:
        """One writer at a time (``Database.writer_lock``)."""
        with self.db.writer_lock(wait_s, on_wait, lease_s):
            yield

    # -- writing ------------------------------------------------------------------------------------------------
    def write(self, tables: Mapping[RowSchema, Any], visual: PageVectors | None = None) -> None:
        """Write embedded rows: page vectors, then chunks and images (Arrow tables of their rows), then the pages
        last (a page row means its vectors are in)."""
        if visual is not None and len(visual):
            if self.dims.visual is None:
                self.make_writable(visual_dim=int(visual.vectors[0].shape[1]))  # a new database learns its size
            self.visual.add(visual)
        for schema, group in ((CHUNKS, self.chunks), (IMAGES, self.images), (PAGES, self.pages)):
            data = tables.get(schema)
            if data is not None and data.num_rows:
                group.add(data)

    def delete_documents(self, doc_ids: Iterable[str]) -> None:
        """Every row of these documents (the ``documents`` row last)."""
        self.db.delete_documents(doc_ids)

    def keep_written_pages(self, doc_id: str) -> tuple[set[int], dict[str, int], dict[str, int]]:
        """A document a stopped run left unfinished, to resume: the pages whose page row is in stay (a page row is
        written after its vectors, chunks and images), the rows of its other pages go. Returns the pages kept,
        the rows per counted table, and the pages per route."""
        cond = f"doc_id = {sql_str(doc_id)}"
        kept = self.db.rows(PAGES, cond, ["page", "route"])
        pages = {int(r["page"]) for r in kept}
        rest = cond + (f" AND page NOT IN ({', '.join(map(str, sorted(pages)))})" if pages else "")
        for schema in (*COUNTED, POOLED):
            if schema is not PAGES:
                self.db.delete(schema, rest)
        counts = {schema.name: self.db.scan(schema, ["page"], cond).num_rows for schema in COUNTED}
        routes: dict[str, int] = {}
        for r in kept:
            routes[r["route"]] = routes.get(r["route"], 0) + 1
        return pages, counts, routes

    def maintain(self, force: bool = False) -> None:
        """After a run that wrote or deleted rows: keep the BM25 index and the first stage current and compact
        fragmented tables, in proportion to the change (``PagesTable.maintain``, ``maintain_table``)."""
        self.pages.maintain(force)
        self.chunks.maintain(force)
        self.images.maintain(force)
        self.visual.maintain(force)

    def check(self) -> dict[str, Any]:
        return check_with_codes(self.db)

    def repair(self) -> dict[str, Any]:
        return repair_with_codes(self.db)
