"""What a text model scores for unrelated text: the yardstick of a hit's confidence (``pipeline.confidence``).

``NULL_PASSAGES`` are short passages on everyday topics far from one another. A text model embeds them as
documents, and a query's cosines with them say what an unrelated passage scores for that query with that
model: its own level (models differ: MiniLM's cosines for unrelated text sit near 0, arctic's higher) against
which a page's cosine is read. The vectors are computed once per model and kept in ``$DOCRAG_CACHE_DIR``
(``accel.cache_dir``, as ``.npy``, no pickle); an embedder without a spec (a test's fake) only in memory, with it.
A cache that cannot be written (a read-only home) is not an error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import weakref
from typing import Any

import numpy as np

__all__ = ["NULL_PASSAGES", "null_vectors"]

log = logging.getLogger(__name__)

NULL_PASSAGES: tuple[str, ...] = (
    "Knead the dough for ten minutes, then leave it covered in a warm place until it has doubled in size.",
    "The striker curled the free kick over the wall and into the top corner in the last minute of the match.",
    "Water the tomato plants in the early morning and pinch out the side shoots as they appear.",
    "The ferry to the island leaves twice a day in summer and once a day from October to April.",
    "She tuned the violin, rested the bow on the strings and began the slow movement of the sonata.",
    "Our cat sleeps on the windowsill all afternoon and wakes up only when she hears the food bowl.",
    "The hotel room had a small balcony overlooking the harbour, and breakfast was served until ten.",
    "He sanded the old chair, filled the cracks with wood glue and gave it two coats of varnish.",
    "Rain is expected over the weekend, with strong winds along the coast and snow on high ground.",
    "The children built a sandcastle with towers and a moat, and the tide washed it away by evening.",
    "Add the onions to the pan and fry them gently until they are soft and golden, stirring often.",
    "The museum's new wing shows paintings of rural life from the eighteenth and nineteenth centuries.",
    "Runners should drink water regularly and slow down on the hills during the first half of the race.",
    "The library is closed on public holidays; books can be returned through the slot by the door.",
    "A flock of geese flew low over the frozen lake, calling to one another in the grey morning light.",
    "The novel follows two sisters who inherit a bakery and quarrel over whether to sell it.",
)

_MEMO: dict[str | None, np.ndarray] = {}
_BY_OBJECT: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()


def _key(embedder: Any) -> str | None:
    spec = getattr(embedder, "spec", None)
    if spec is None or not hasattr(spec, "fingerprint"):
        return None
    text = repr(spec.fingerprint()) + "\n" + "\n".join(NULL_PASSAGES)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def null_vectors(embedder: Any) -> np.ndarray:
    """``NULL_PASSAGES`` embedded as documents by ``embedder`` (``(n, dim)``, L2-normalised): from memory, from
    the cache, or computed (in numpy for the BERT checkpoints whose queries are; other models load their
    weights for it, once per model and machine)."""
    key = _key(embedder)
    if key in _MEMO:
        return _MEMO[key]
    if key is None and embedder in _BY_OBJECT:
        return _BY_OBJECT[embedder]
    path = None
    if key is not None:
        from .accel import cache_dir

        path = cache_dir() / "baselines" / f"{key}.npy"
        try:
            _MEMO[key] = np.load(path, allow_pickle=False)
            return _MEMO[key]
        except (OSError, ValueError):
            pass
    embed = getattr(embedder, "embed_short_documents", None) or embedder.embed_documents  # numpy where it can
    vectors = np.asarray(embed(list(NULL_PASSAGES)), np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)  # (n, dim)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{key}.{os.getpid()}.tmp.npy")
            np.save(tmp, vectors, allow_pickle=False)
            tmp.replace(path)
        except OSError as exc:
            log.info("baseline vectors not cached (%s): computed again next time", exc)
    if key is not None:
        _MEMO[key] = vectors
    else:
        _BY_OBJECT[embedder] = vectors
    return vectors
