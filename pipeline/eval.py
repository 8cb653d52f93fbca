"""Retrieval evaluation: nDCG@k, recall@k, MRR@10 — fused and per leg — and routing accuracy.

Queries (JSON lines, the dev-set format)::

    {"id": "q1", "text": "...", "kind": "table", "relevant": [{"file": "a.pdf", "page": 3}]}

or BEIR/ViDoRe style: queries ``{"_id": ..., "text": ...}`` plus a qrels TSV ``query-id  corpus-id  score``
whose corpus-id is ``<file>#<page>`` (also ``<file>:<page>`` or ``<file>_p<page>``). Files are matched by
base name. Relevance is binary (score > 0).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docrag.indexes.store import Store

    from .search import Searcher

__all__ = ["Query", "evaluate", "load_queries", "mrr", "ndcg", "read_queries", "recall"]

Key = tuple[str, int]  # (file base name, page)


@dataclass(slots=True)
class Query:
    id: str
    text: str
    kind: str = "all"
    relevant: set[Key] = field(default_factory=set)


def ndcg(ranked: Sequence[Key], relevant: set[Key], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, key in enumerate(ranked[:k]) if key in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def recall(ranked: Sequence[Key], relevant: set[Key], k: int) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def mrr(ranked: Sequence[Key], relevant: set[Key], k: int = 10) -> float:
    for i, key in enumerate(ranked[:k]):
        if key in relevant:
            return 1.0 / (i + 1)
    return 0.0


_CORPUS_ID = re.compile(r"^(?P<file>.+?)(?:#|:|_p)(?P<page>\d+)$")


def read_queries(path: str | Path) -> list[dict[str, Any]]:
    """JSON lines of queries, each checked: a ``text`` string is required (``id``/``_id``, ``kind``,
    ``relevant`` optional). A bad line raises ValueError naming the file, the line and the expected keys."""
    path = Path(path)
    out: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                keys = ", ".join(sorted(obj)) if isinstance(obj, dict) else type(obj).__name__
                raise ValueError(
                    f'{path}:{n}: a query needs a "text" string (keys: id or _id, text, kind, relevant); '
                    f"this line has {keys or 'no keys'}"
                )
            if not obj["text"].strip():
                raise ValueError(f"{path}:{n}: the query text is empty")
            obj.setdefault("id", obj.get("_id", n))
            obj["_line"] = n
            out.append(obj)
    return out


def load_queries(path: str | Path, qrels: str | Path | None = None) -> list[Query]:
    """Queries from the dev-set JSON lines, or BEIR-style queries plus a qrels TSV."""
    path = Path(path)
    queries: list[Query] = []
    for obj in read_queries(path):
        try:
            rel = {(Path(r["file"]).name, int(r["page"])) for r in obj.get("relevant", [])}
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f'{path}:{obj["_line"]}: "relevant" must be a list of {{"file": name, "page": number}}'
            ) from None
        queries.append(Query(str(obj["id"]), obj["text"], obj.get("kind", "all"), rel))
    if qrels is not None:
        by_id = {q.id: q for q in queries}
        with Path(qrels).open(encoding="utf-8") as fh:
            for n, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
                if len(row) < 3 or row[0] in ("query-id", "query_id"):
                    continue
                try:
                    if float(row[2]) <= 0:
                        continue
                except ValueError:
                    raise ValueError(f"{qrels}:{n}: the score {row[2]!r} is not a number") from None
                m = _CORPUS_ID.match(row[1])
                if m is None or row[0] not in by_id:
                    continue
                by_id[row[0]].relevant.add((Path(m["file"]).name, int(m["page"])))
    if not queries:
        raise ValueError(f'{path}: no queries (one JSON object a line: {{"id", "text", "relevant"}})')
    missing = [q.id for q in queries if not q.relevant]
    if missing:
        raise ValueError(f"{path}: queries without relevant pages: {', '.join(missing[:5])}")
    return queries


def _summarise(per_query: list[dict[str, float]], ks: Sequence[int]) -> dict[str, float]:
    names = [f"ndcg@{k}" for k in ks] + [f"recall@{k}" for k in ks] + ["mrr@10"]
    return {n: round(sum(q[n] for q in per_query) / len(per_query), 4) for n in names} | {"n": len(per_query)}


def _score_run(queries: list[Query], rankings: list[list[Key]], ks: Sequence[int]) -> dict[str, Any]:
    per_query = []
    for q, ranked in zip(queries, rankings, strict=True):
        row = {f"ndcg@{k}": ndcg(ranked, q.relevant, k) for k in ks}
        row |= {f"recall@{k}": recall(ranked, q.relevant, k) for k in ks}
        row["mrr@10"] = mrr(ranked, q.relevant, 10)
        per_query.append(row)
    out = {"overall": _summarise(per_query, ks), "by_kind": {}}
    for kind in sorted({q.kind for q in queries}):
        rows = [r for q, r in zip(queries, per_query, strict=True) if q.kind == kind]
        out["by_kind"][kind] = _summarise(rows, ks)
    return out


TO_ROUTE = {"scanned": "visual", "layout": "visual", "text": "text"}  # a hand label -> the route it implies


def routing_accuracy(store: Store, labels_tsv: str | Path) -> dict[str, Any]:
    """The router's labels against hand labels (``file``, ``page``, ``label`` columns; files by base name):
    accuracy of the label and of the route it implies, and the confusion matrix (hand label -> router label ->
    pages)."""
    with Path(labels_tsv).open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = {"file", "page", "label"} - set(reader.fieldnames or [])
        if missing:
            cols = ", ".join(sorted(missing))
            raise ValueError(f"{labels_tsv}: needs the columns file, page, label (missing {cols})")
        gold = {}
        for line, r in enumerate(reader, start=2):
            if r["label"] not in TO_ROUTE or not str(r["page"]).strip().isdigit():
                raise ValueError(
                    f"{labels_tsv}:{line}: needs a page number and a label among {', '.join(TO_ROUTE)} "
                    f"(this row: page {r['page']!r}, label {r['label']!r})"
                )
            gold[(r["file"], int(r["page"]))] = r["label"]
    docs = {d["doc_id"]: Path(d["path"]).name for d in store.documents.rows(columns=["doc_id", "path"])}
    pages = store.pages.rows(columns=["doc_id", "page", "label"])
    to_route = TO_ROUTE
    pairs = [
        (gold[(docs[p["doc_id"]], p["page"])], p["label"]) for p in pages if (docs.get(p["doc_id"]), p["page"]) in gold
    ]
    if not pairs:
        return {"pages": 0}
    confusion: dict[str, dict[str, int]] = {}  # hand label -> router label -> pages
    for g, p in pairs:
        confusion.setdefault(g, {}).setdefault(p, 0)
        confusion[g][p] += 1
    return {
        "pages": len(pairs),
        "label_accuracy": round(sum(g == p for g, p in pairs) / len(pairs), 4),
        "route_accuracy": round(sum(to_route.get(g) == to_route.get(p) for g, p in pairs) / len(pairs), 4),
        "confusion": confusion,
    }


def evaluate(
    searcher: Searcher,
    queries: list[Query],
    ks: Iterable[int] = (5, 10),
    legs: Sequence[str] | None = None,
    labels: str | Path | None = None,
    store: Store | None = None,
    fusion: str | None = None,
) -> dict[str, Any]:
    """Metrics for the fused ranking (``fusion``: the settings' method when None) and for each of the
    searcher's legs that has something stored, alone (ablation; only those of ``legs`` when given); with
    ``labels``, the routing accuracy of the pages in ``store``."""
    if not queries:
        raise ValueError("no queries to evaluate: give at least one, with its relevant pages")
    ks = sorted(set(ks))
    depth = max(*ks, 10)
    texts = [q.text for q in queries]

    def run(leg_set: Sequence[str] | None) -> list[list[Key]]:
        results = searcher.search_many(texts, k=depth, legs=leg_set, fusion=fusion)
        return [[(Path(h.file).name, h.page) for h in hits] for hits in results]

    out: dict[str, Any] = {"queries": len(queries), "k": ks, "fused": _score_run(queries, run(legs), ks), "legs": {}}
    for leg in searcher.legs:
        if (not legs or leg.name in legs) and leg.available():
            out["legs"][leg.name] = _score_run(queries, run([leg.name]), ks)
    if labels is not None:
        if store is None:
            raise ValueError("routing accuracy (labels) needs the store")
        out["routing"] = routing_accuracy(store, labels)
    out["fusion"] = fusion or searcher.settings.fusion
    return out
