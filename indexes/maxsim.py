"""Exact late-interaction (MaxSim) scoring as pure functions, numpy and torch.

score(q, d) = sum over query tokens i of max over document vectors j of <q_i, d_j>

Documents have different numbers of vectors. Padding must never win a max: padded positions are masked
with -inf before the max (colpali-engine's ``score_multi_vector`` zero-pads instead, so a short document
can outscore a better one whose true per-token maxima are negative — see tests/test_maxsim.py). Padded
*query* tokens contribute nothing to the sum.

Memory stays bounded: documents are scored in blocks of at most ``block_vectors`` vectors, so the
similarity matrix held at once is (query tokens x block_vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "DevicePacked",
    "PackedDocs",
    "maxsim_naive",
    "maxsim_numpy",
    "maxsim_packed",
    "maxsim_padded_torch",
    "maxsim_scores",
    "maxsim_torch",
    "pad",
    "resolve_backend",
]

DEFAULT_BLOCK_VECTORS = 1 << 18  # 262,144 document vectors per block: 32 query tokens x that = 32 MiB fp32
SIMS_MAX_VALUES = 1 << 26  # the similarity block never exceeds 256 MiB (batches of many queries)


def maxsim_naive(query: np.ndarray, doc: np.ndarray) -> float:
    """The definition, as a Python loop (the reference the fast paths are tested against)."""
    total = 0.0
    for q in query:
        best = -np.inf
        for d in doc:
            best = max(best, float(np.dot(q, d)))
        total += best
    return total


def _blocks(lengths: np.ndarray, block_vectors: int) -> list[tuple[int, int]]:
    """Split documents [0, n) into consecutive ranges holding at most ``block_vectors`` vectors each."""
    out, start, acc = [], 0, 0
    for i, n in enumerate(lengths):
        if acc and acc + n > block_vectors:
            out.append((start, i))
            start, acc = i, 0
        acc += int(n)
    if start < len(lengths):
        out.append((start, len(lengths)))
    return out


FLOAT32_CACHE_BYTES = 4 << 30  # above this, packed vectors stay float16 and are upcast one block at a time


class PackedDocs:
    """Documents' vectors packed once into one (total_vectors, dim) matrix plus offsets.

    Packing costs one copy; every query after that scores with a matmul and a segmented max. The matrix is
    float32 (fastest) while it fits in ``max_float32_bytes``; larger collections keep float16 (as stored,
    half the memory) and each query upcasts one block at a time (measured ~4x slower per query).
    """

    def __init__(self, docs: Sequence[np.ndarray], max_float32_bytes: int = FLOAT32_CACHE_BYTES) -> None:
        lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
        if len(docs) and (lengths == 0).any():
            raise ValueError(f"document {int(np.argmin(lengths))} has no vectors")
        self.lengths = lengths
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)  # (n_docs + 1,)
        dim = docs[0].shape[1] if len(docs) else 0
        total = int(self.offsets[-1])
        dtype = np.float32 if total * dim * 4 <= max_float32_bytes else np.float16
        self.matrix = np.empty((total, dim), dtype=dtype)  # (total_vectors, dim)
        for i, d in enumerate(docs):
            self.matrix[self.offsets[i] : self.offsets[i + 1]] = d

    def __len__(self) -> int:
        return len(self.lengths)


def maxsim_packed(queries: Sequence[np.ndarray], packed: PackedDocs, block_vectors: int = DEFAULT_BLOCK_VECTORS):
    """Scores (n_queries, n_docs) against packed documents, in blocks of whole documents."""
    if not len(queries) or not len(packed):
        raise ValueError(f"need at least one query and one document (got {len(queries)} and {len(packed)})")
    q_all = np.concatenate([np.asarray(q, dtype=np.float32) for q in queries])  # (sum_q, dim)
    q_starts = np.cumsum([0, *(len(q) for q in queries)])[:-1]
    out = np.empty((len(queries), len(packed)), dtype=np.float32)
    block_vectors = max(4096, min(block_vectors, SIMS_MAX_VALUES // max(len(q_all), 1)))  # many queries: smaller
    for a, b in _blocks(packed.lengths, block_vectors):
        lo, hi = packed.offsets[a], packed.offsets[b]
        block = packed.matrix[lo:hi]
        if block.dtype != np.float32:
            block = block.astype(np.float32)  # float16 storage: upcast this block only
        sims = q_all @ block.T  # (sum_q, block_vectors)
        best = np.maximum.reduceat(sims, packed.offsets[a:b] - lo, axis=1)  # (sum_q, b - a): max per doc
        out[:, a:b] = np.add.reduceat(best, q_starts, axis=0)  # (n_queries, b - a): sum per query
    return out


def maxsim_numpy(
    queries: Sequence[np.ndarray],
    docs: Sequence[np.ndarray],
    block_vectors: int = DEFAULT_BLOCK_VECTORS,
) -> np.ndarray:
    """Scores (n_queries, n_docs) for variable-length queries and documents, in float32.

    No padding at all: documents are packed into one (vectors, dim) matrix, and the per-document max is a
    segmented reduction (``np.maximum.reduceat``) over its rows.
    """
    if not len(queries) or not len(docs):
        raise ValueError(f"need at least one query and one document (got {len(queries)} and {len(docs)})")
    return maxsim_packed(queries, PackedDocs(docs), block_vectors)


def pad(arrays: Sequence[Any], dim: int | None = None) -> tuple[Any, Any]:
    """Stack variable-length (n_i, dim) torch tensors into (batch, max_n, dim) plus a (batch, max_n) bool mask."""
    import torch

    n_max = max(int(a.shape[0]) for a in arrays)
    d = dim or int(arrays[0].shape[1])
    out = torch.zeros((len(arrays), n_max, d), dtype=arrays[0].dtype, device=arrays[0].device)
    mask = torch.zeros((len(arrays), n_max), dtype=torch.bool, device=arrays[0].device)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0]] = a
        mask[i, : a.shape[0]] = True
    return out, mask


def maxsim_padded_torch(q: Any, q_mask: Any, d: Any, d_mask: Any) -> Any:
    """Scores (n_q, n_d) from padded tensors: q (n_q, Lq, dim), d (n_d, Ld, dim), masks True = real vector."""
    import torch

    sims = torch.einsum("qid,njd->qnij", q, d)  # (n_q, n_d, Lq, Ld)
    sims = sims.masked_fill(~d_mask[None, :, None, :], float("-inf"))  # padded doc vectors never win
    best = sims.amax(dim=-1)  # (n_q, n_d, Lq)
    best = best.masked_fill(~q_mask[:, None, :], 0.0)  # padded query tokens add nothing
    return best.sum(dim=-1).float()  # (n_q, n_d)


def maxsim_torch(
    queries: Sequence[Any],
    docs: Sequence[Any],
    block_vectors: int = DEFAULT_BLOCK_VECTORS,
    device: str | None = None,
    dtype: Any = None,
) -> np.ndarray:
    """Torch path (GPU when asked): blocks of documents are padded, masked with -inf, scored; returns numpy."""
    import torch

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dt = dtype or (torch.float16 if dev.type == "cuda" else torch.float32)

    def as_tensor(a: Any) -> Any:
        t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
        return t.to(device=dev, dtype=dt)

    if not len(queries) or not len(docs):
        raise ValueError(f"need at least one query and one document (got {len(queries)} and {len(docs)})")
    q, q_mask = pad([as_tensor(x) for x in queries])
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    out = np.empty((len(queries), len(docs)), dtype=np.float32)
    with torch.inference_mode():
        for a, b in _blocks(lengths, block_vectors):
            d, d_mask = pad([as_tensor(x) for x in docs[a:b]])
            out[:, a:b] = maxsim_padded_torch(q, q_mask, d, d_mask).cpu().numpy()
    return out


class DevicePacked:
    """Documents resident on a torch device (a GPU), padded to one (n_docs, max_len, dim) tensor.

    Padded positions are masked with -inf before the max. Scoring is one matmul per chunk of pages,
    (queries x tokens, dim) @ (dim, pages x max_len), an amax over each page's vectors and a sum over each
    query's tokens; the similarity chunk is kept under ``chunk_bytes``. Built once per collection version,
    so a query moves only its own vectors to the device.
    """

    def __init__(self, docs: Sequence[Any], device: str | None = None, dtype: Any = None, chunk_bytes: int = 1 << 30):
        import torch

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or (torch.float16 if self.device.type == "cuda" else torch.float32)
        lengths = [len(d) for d in docs]
        if not lengths or min(lengths) == 0:
            raise ValueError("need at least one document, each with vectors")
        self.n, self.max_len, self.dim = len(docs), max(lengths), int(docs[0].shape[1])
        self.docs = torch.zeros((self.n, self.max_len, self.dim), dtype=self.dtype, device=self.device)
        for i, d in enumerate(docs):
            t = d if isinstance(d, torch.Tensor) else torch.from_numpy(np.asarray(d))
            self.docs[i, : lengths[i]] = t.to(device=self.device, dtype=self.dtype)
        self.pad = self._pad_mask(lengths)
        self.chunk_bytes = chunk_bytes

    def _pad_mask(self, lengths: Sequence[int]) -> Any:
        """(n, max_len) True at padding; None when every page has max_len vectors (no mask pass needed)."""
        import torch

        if min(lengths) == self.max_len:
            return None
        pos = torch.arange(self.max_len, device=self.device)
        return pos[None, :] >= torch.as_tensor(list(lengths), device=self.device)[:, None]

    @classmethod
    def from_padded(cls, docs: Any, lengths: Sequence[int], chunk_bytes: int = 1 << 30) -> DevicePacked:
        """Wrap an already padded (n_docs, max_len, dim) device tensor (no copy)."""

        self = cls.__new__(cls)
        self.docs, self.device, self.dtype = docs, docs.device, docs.dtype
        self.n, self.max_len, self.dim = (int(x) for x in docs.shape)
        self.pad = self._pad_mask(lengths)
        self.chunk_bytes = chunk_bytes
        return self

    def __len__(self) -> int:
        return self.n

    def scores(self, queries: Sequence[Any]) -> np.ndarray:
        """(n_queries, n_docs) float32 scores, exact MaxSim."""
        return self.scores_tensor(queries).cpu().numpy()

    def scores_tensor(self, queries: Sequence[Any]) -> Any:
        """The same, as a float32 tensor left on the device."""
        import torch

        with torch.inference_mode():
            qs = [torch.as_tensor(np.asarray(q) if not isinstance(q, torch.Tensor) else q) for q in queries]
            q, q_mask = pad([t.to(device=self.device, dtype=self.dtype) for t in qs])  # (nq, T, dim), (nq, T)
            nq, n_tok = q.shape[0], q.shape[1]
            q2 = q.reshape(nq * n_tok, self.dim)
            per_page = nq * n_tok * self.max_len * q.element_size()
            step = max(1, min(self.n, self.chunk_bytes // per_page))
            out = torch.empty((nq, self.n), dtype=torch.float32, device=self.device)
            for s in range(0, self.n, step):
                d = self.docs[s : s + step]
                sims = (q2 @ d.reshape(-1, self.dim).T).view(nq, n_tok, d.shape[0], self.max_len)
                if self.pad is not None:
                    sims = sims.masked_fill(self.pad[None, None, s : s + step], float("-inf"))
                best = sims.amax(dim=-1).masked_fill(~q_mask[:, :, None], 0.0)  # (nq, T, chunk)
                out[:, s : s + d.shape[0]] = best.float().sum(dim=1)
            return out


def resolve_backend(backend: str = "auto") -> str:
    """ "numpy" or "torch" ("auto": torch when a CUDA GPU is present). A machine without an NVIDIA device
    node answers without importing torch (an import of 2 s here, more than a two-stage query)."""
    if backend != "auto":
        return backend
    import glob
    import sys

    if "torch" not in sys.modules and not glob.glob("/dev/nvidia[0-9]*"):
        return "numpy"
    try:
        import torch

        return "torch" if torch.cuda.is_available() else "numpy"
    except ImportError:
        return "numpy"


def maxsim_scores(
    queries: Sequence[Any],
    docs: Sequence[Any] | PackedDocs,
    backend: str = "auto",
    block_vectors: int = DEFAULT_BLOCK_VECTORS,
) -> np.ndarray:
    """Scores (n_queries, n_docs). backend: "numpy", "torch", or "auto" (torch on a GPU, else numpy)."""
    if isinstance(docs, DevicePacked):
        return docs.scores(queries)  # already on its device
    backend = resolve_backend(backend)
    if backend == "numpy":
        if isinstance(docs, PackedDocs):
            return maxsim_packed([np.asarray(q) for q in queries], docs, block_vectors)
        return maxsim_numpy([np.asarray(q) for q in queries], [np.asarray(d) for d in docs], block_vectors)
    if backend == "torch":
        if isinstance(docs, PackedDocs):
            docs = [docs.matrix[docs.offsets[i] : docs.offsets[i + 1]] for i in range(len(docs))]
        return maxsim_torch(queries, docs, block_vectors)
    raise ValueError(f"unknown MaxSim backend {backend!r}: use 'numpy', 'torch' or 'auto'")
