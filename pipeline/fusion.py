"""Fusing per-leg page rankings into one ranking that explains itself.

Legs score on different scales: MaxSim grows with the number of query tokens, cosine lives in [-1, 1],
BM25 is unbounded. Two methods:

- ``rrf`` (default): reciprocal-rank fusion, score = sum over legs of weight / (k + rank). Scale-free.
- ``weighted``: calibrated scores — MaxSim divided by the query's token count (a mean best-match cosine,
  in [-1, 1]), cosine as is, BM25 divided by the best BM25 score of this query (in [0, 1]) — summed with
  per-leg weights. A page missing from a leg gets nothing from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fused", "fuse", "rrf", "weighted"]

Key = tuple[str, int]  # (doc_id, page)


@dataclass(slots=True)
class Fused:
    doc_id: str
    page: int
    score: float
    legs: dict[str, dict[str, Any]] = field(default_factory=dict)  # leg -> {"score", "rank", "detail"}


def _collect(rankings: Mapping[str, Sequence[Any]]) -> dict[Key, Fused]:
    out: dict[Key, Fused] = {}
    for leg, cands in rankings.items():
        for rank, c in enumerate(cands, start=1):
            f = out.setdefault((c.doc_id, c.page), Fused(c.doc_id, c.page, 0.0))
            f.legs[leg] = {"score": float(c.score), "rank": rank, "detail": getattr(c, "detail", "")}
    return out


def rrf(rankings: Mapping[str, Sequence[Any]], weights: Mapping[str, float] | None = None, k: int = 60) -> list[Fused]:
    """Reciprocal-rank fusion of candidate lists (each best first)."""
    fused = _collect(rankings)
    for f in fused.values():
        f.score = sum((weights or {}).get(leg, 1.0) / (k + info["rank"]) for leg, info in f.legs.items())
    return sorted(fused.values(), key=lambda f: (-f.score, f.doc_id, f.page))


def calibrate(leg: str, score: float, best: float, n_query_tokens: int) -> float:
    if leg == "visual":
        return score / max(n_query_tokens, 1)
    if leg == "bm25":
        return score / best if best > 0 else 0.0
    return score


def weighted(
    rankings: Mapping[str, Sequence[Any]], weights: Mapping[str, float] | None = None, n_query_tokens: int = 1
) -> list[Fused]:
    """Weighted sum of calibrated leg scores."""
    fused = _collect(rankings)
    best = {leg: max((c.score for c in cands), default=0.0) for leg, cands in rankings.items()}
    for f in fused.values():
        f.score = sum(
            (weights or {}).get(leg, 1.0) * calibrate(leg, info["score"], best[leg], n_query_tokens)
            for leg, info in f.legs.items()
        )
        for leg, info in f.legs.items():
            info["calibrated"] = calibrate(leg, info["score"], best[leg], n_query_tokens)
    return sorted(fused.values(), key=lambda f: (-f.score, f.doc_id, f.page))


def fuse(
    rankings: Mapping[str, Sequence[Any]],
    method: str = "rrf",
    weights: Mapping[str, float] | None = None,
    rrf_k: int = 60,
    n_query_tokens: int = 1,
) -> list[Fused]:
    if method == "rrf":
        return rrf(rankings, weights, rrf_k)
    if method == "weighted":
        return weighted(rankings, weights, n_query_tokens)
    raise ValueError(f"unknown fusion {method!r}: use 'rrf' or 'weighted'")
