"""Fusing per-leg page rankings into one ranking that explains itself.

Each leg's ranking says which scale its scores are on (``Scale``): MaxSim grows with the number of query
tokens, cosine lives in [-1, 1], BM25 is unbounded. Two methods:

- ``rrf`` (default): reciprocal-rank fusion, score = sum over legs of weight / (k + rank). Scale-free.
- ``weighted``: calibrated scores — MaxSim divided by the query's token count (a mean best-match cosine,
  in [-1, 1]), cosine as is, BM25 divided by the best BM25 score of this query (in [0, 1]) — summed with
  per-leg weights. A page missing from a leg gets nothing from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Fused", "Ranking", "Scale", "calibrate", "fuse", "rrf", "weighted"]

Key = tuple[str, int]  # (doc_id, page)


class Scale(StrEnum):
    """What a leg's scores measure, for calibration."""

    maxsim = "maxsim"  # sum over query tokens of the best-match cosine: grows with the token count
    cosine = "cosine"  # in [-1, 1]
    bm25 = "bm25"  # unbounded, comparable within one query only


@dataclass(slots=True)
class Ranking:
    """One leg's candidates for one query (``Candidate``-like: doc_id, page, score, detail; best first)."""

    candidates: Sequence[Any]
    scale: Scale = Scale.cosine
    n_query_tokens: int = 1  # what MaxSim sums over


@dataclass(slots=True)
class Fused:
    doc_id: str
    page: int
    score: float
    legs: dict[str, dict[str, Any]] = field(default_factory=dict)  # leg -> {"score", "rank", "detail"}


def _collect(rankings: Mapping[str, Ranking]) -> dict[Key, Fused]:
    out: dict[Key, Fused] = {}
    for leg, ranking in rankings.items():
        for rank, c in enumerate(ranking.candidates, start=1):
            f = out.setdefault((c.doc_id, c.page), Fused(c.doc_id, c.page, 0.0))
            f.legs[leg] = {"score": float(c.score), "rank": rank, "detail": getattr(c, "detail", "")}
    return out


def rrf(rankings: Mapping[str, Ranking], weights: Mapping[str, float] | None = None, k: int = 60) -> list[Fused]:
    """Reciprocal-rank fusion of the legs' rankings (scales play no part)."""
    fused = _collect(rankings)
    for f in fused.values():
        f.score = sum((weights or {}).get(leg, 1.0) / (k + info["rank"]) for leg, info in f.legs.items())
    return sorted(fused.values(), key=lambda f: (-f.score, f.doc_id, f.page))


def calibrate(scale: Scale, score: float, best: float, n_query_tokens: int = 1) -> float:
    """A score on ``scale`` brought to about [-1, 1]; ``best`` is the best score of this leg for this query."""
    if scale == Scale.maxsim:
        return score / max(n_query_tokens, 1)
    if scale == Scale.bm25:
        return score / best if best > 0 else 0.0
    return score


def weighted(rankings: Mapping[str, Ranking], weights: Mapping[str, float] | None = None) -> list[Fused]:
    """Weighted sum of calibrated leg scores."""
    fused = _collect(rankings)
    best = {leg: max((c.score for c in r.candidates), default=0.0) for leg, r in rankings.items()}
    for f in fused.values():
        for leg, info in f.legs.items():
            r = rankings[leg]
            info["calibrated"] = calibrate(r.scale, info["score"], best[leg], r.n_query_tokens)
        f.score = sum((weights or {}).get(leg, 1.0) * info["calibrated"] for leg, info in f.legs.items())
    return sorted(fused.values(), key=lambda f: (-f.score, f.doc_id, f.page))


def fuse(
    rankings: Mapping[str, Ranking],
    method: str = "rrf",
    weights: Mapping[str, float] | None = None,
    rrf_k: int = 60,
) -> list[Fused]:
    """One ranking from the legs' (leg name -> ``Ranking``); ``weights`` by leg name (default 1)."""
    if method == "rrf":
        return rrf(rankings, weights, rrf_k)
    if method == "weighted":
        return weighted(rankings, weights)
    raise ValueError(f"unknown fusion {method!r}: use 'rrf' or 'weighted'")
