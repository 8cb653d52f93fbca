"""What an indexing run did (``pipeline.ingest``): the report the CLI prints and ``--json`` writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["IngestReport"]


@dataclass(slots=True)
class IngestReport:
    indexed: int = 0
    skipped: int = 0  # unchanged documents
    duplicates: int = 0  # paths whose bytes are already indexed (recorded as another path of that document)
    removed: int = 0  # documents deleted: content changed, or no path left
    failed: list[dict[str, str]] = field(default_factory=list)
    pages: int = 0
    routes: dict[str, int] = field(default_factory=lambda: {"visual": 0, "text": 0})
    seconds: float = 0.0
    pending: int = 0  # documents not indexed because the run stopped (interrupted, storage failed)
    not_documents: list[str] = field(default_factory=list)  # files in folders of no format read (``families``)
    families: list[str] = field(default_factory=list)  # the format families this run read (``--formats``)
    warnings: list[dict[str, str]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)  # the database itself, met in a folder being indexed
    unsearchable: list[dict[str, Any]] = field(default_factory=list)  # indexed pages that no leg can find

    def to_dict(self) -> dict[str, Any]:
        return {
            "indexed": self.indexed,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "removed": self.removed,
            "failed": list(self.failed),
            "unsearchable": list(self.unsearchable),
            "pending": self.pending,
            "pages": self.pages,
            "routes": dict(self.routes),
            "seconds": round(self.seconds, 3),
            "not_documents": list(self.not_documents),
            "formats": list(self.families),
            "warnings": list(self.warnings),
            "excluded": list(self.excluded),
        }
