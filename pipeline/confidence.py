"""A hit's confidence: a number in [0, 1] that means the same for every query, so it can be thresholded.

The fused score only orders the pages of one query: reciprocal-rank fusion sums ``weight / (rrf_k + rank)``
over the legs (ranks only), and the weighted sum divides BM25 by this query's best BM25 score. A nonsense
query therefore gets a top hit that looks like any other. The confidence reads, for one page, two pieces of
evidence that do not depend on the other pages:

- ``terms``: the share of the query's content words that occur on the page, folded as the BM25 leg folds
  them (lower case, accents off, a light stemmer), with stop words and question words (what, which, how …)
  left out. None when the query has no content word.
- ``meaning``: the text leg's cosine for the page's best chunk, read against the same query's cosines with
  unrelated text (``indexes.baseline``: passages on everyday topics, embedded by the same model as documents):
  ``z = (cosine - mean) / std`` of those, mapped to [0, 1] by ``1 / (1 + exp(-(z - Z_MID) / Z_SCALE))``. A page
  the text leg did not return has no meaning evidence (0).

They are joined as two imperfect detectors (a noisy-or, each capped below 1): ``confidence = 1 - (1 -
MEANING_WEIGHT * meaning) * (1 - TERMS_WEIGHT * terms)``. A page whose query words are all there and whose
best chunk stands far above unrelated text is near 1; words alone or meaning alone stay below their caps.
The visual and image legs do not take part (their scores have no yardstick yet): a page found only by them
has the confidence its text earns. Image queries have none (None).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

import numpy as np

from .regions import term_key

__all__ = [
    "DEFAULT_MIN_SCORE",
    "MEANING_WEIGHT",
    "TERMS_WEIGHT",
    "confidence",
    "meaning",
    "query_terms",
    "term_coverage",
]

MEANING_WEIGHT = 0.8  # the most the meaning evidence alone gives
TERMS_WEIGHT = 0.6  # the most the words alone give
Z_MID = 6.0  # standard deviations above unrelated text at which the meaning evidence is 0.5
Z_SCALE = 1.0
MIN_STD = 0.02  # a floor on the spread of the unrelated-text cosines (a few passages can agree closely)
DEFAULT_MIN_SCORE = 0.5  # the threshold the README recommends

_SPLIT = re.compile(r"[\W_]+", re.UNICODE)
QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how does do did done can could would should shall may might must "
    "has have had am i me my we our you your he she him her its any some all about from than more most".split()
)


@functools.lru_cache(maxsize=1 << 16)
def _term(word: str) -> str:
    """``regions.term_key`` with a final e dropped, so that "table" and "tables" (stemmed "tabl") meet."""
    key = term_key(word)
    return key[:-1] if len(key) > 4 and key.endswith("e") else key


def query_terms(query: str) -> set[str]:
    """The query's content words, folded and stemmed (stop and question words out)."""
    return {key for part in _SPLIT.split(query) if part.lower() not in QUESTION_WORDS and (key := _term(part))}


def term_coverage(terms: set[str], text: str) -> float | None:
    """The share of ``terms`` (``query_terms``) that occur in ``text``; None when there are none."""
    if not terms:
        return None
    return len(terms & {_term(part) for part in set(_SPLIT.split(text.lower()))}) / len(terms)


def meaning(cosine: float | None, null: Sequence[float] | np.ndarray) -> float:
    """How far ``cosine`` stands above the query's cosines with unrelated text (``null``), in [0, 1]."""
    if cosine is None or len(null) == 0:
        return 0.0
    values = np.asarray(null, np.float64)
    z = (cosine - float(values.mean())) / max(float(values.std()), MIN_STD)
    return 1.0 / (1.0 + math.exp(-(z - Z_MID) / Z_SCALE))


def confidence(meaning_evidence: float, coverage: float | None) -> float:
    """The two pieces of evidence joined (a noisy-or, each capped by its weight)."""
    terms = coverage or 0.0
    return 1.0 - (1.0 - MEANING_WEIGHT * meaning_evidence) * (1.0 - TERMS_WEIGHT * terms)
