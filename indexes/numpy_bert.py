"""Query embeddings for sentence-transformers BERT checkpoints in plain numpy: a search starts in ~1 s.

Importing sentence-transformers (and with it torch and transformers' model code) takes 3–6 s on a 2-core
machine; a query is ~10 tokens through a 6–12 layer encoder, which numpy runs in milliseconds. This module
reads the same files sentence-transformers does — ``modules.json``, ``sentence_bert_config.json``,
``1_Pooling/config.json``, ``config.json``, ``tokenizer.json`` (Rust ``tokenizers``) and ``model.safetensors``
— and computes the same function for the layouts it recognises: a ``BertModel`` (absolute positions, GELU)
followed by mean or CLS pooling and optional normalisation. Anything else is refused by ``supports`` and
goes through sentence-transformers. ``tests/test_numpy_bert.py`` checks equality with sentence-transformers
on all-MiniLM-L6-v2 (mean pooling) and on a tiny checkpoint in snowflake-arctic-embed-m-v1.5's layout (CLS
pooling, a query prompt).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["NumpyBertEncoder"]

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT's "gelu"; erf from Abramowitz–Stegun 7.1.26 refined to float32 precision."""
    z = x / math.sqrt(2.0)
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.5 * a)
    # Numerical Recipes' erfc approximation (fractional error < 1.2e-7 everywhere).
    poly = -a * a - 1.26551223 + t * (
        1.00002368
        + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (
            -1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))  # fmt: skip
    erfc = t * np.exp(poly)
    erf = np.where(z >= 0, 1.0 - erfc, erfc - 1.0)
    return (0.5 * x * (1.0 + erf)).astype(x.dtype)


class NumpyBertEncoder:
    """``encode(texts)`` → (n, dim) float32, equal (to float32 rounding) to ``SentenceTransformer.encode``."""

    def __init__(self, path: str | Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = Path(path)
        if not self.supports(path):
            raise ValueError(f"{path}: not a sentence-transformers BERT checkpoint this encoder reproduces")
        cfg = _read(path / "config.json")
        st = _read(path / "sentence_bert_config.json")
        modules = _read(path / "modules.json")
        pooling = _read(path / next(m["path"] for m in modules if m["type"] == _POOLING) / "config.json")
        self.normalize = any(m["type"] == _NORMALIZE for m in modules)
        self.cls_pooling = bool(pooling.get("pooling_mode_cls_token"))
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.dim = int(cfg["hidden_size"])
        self.max_seq_length = int(st.get("max_seq_length") or cfg["max_position_embeddings"])
        raw = load_file(str(path / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in raw.items()}
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)

    @staticmethod
    def supports(path: str | Path) -> bool:
        """Whether ``path`` holds a layout this encoder computes exactly (else use sentence-transformers)."""
        path = Path(path)
        try:
            modules = _read(path / "modules.json")
            cfg = _read(path / "config.json")
            types = [m["type"] for m in modules]
            if types not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]) or modules[0]["path"]:
                return False
            pooling = _read(path / modules[1]["path"] / "config.json")
            modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
            st = _read(path / "sentence_bert_config.json")
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return False
        return (
            cfg.get("model_type") == "bert"
            and cfg.get("hidden_act") == "gelu"
            and cfg.get("position_embedding_type", "absolute") == "absolute"
            and modes in ({"pooling_mode_mean_tokens"}, {"pooling_mode_cls_token"})
            and pooling.get("include_prompt", True) is True  # a prompt's tokens are pooled like the rest
            and not st.get("do_lower_case")  # lower-casing, when wanted, lives in tokenizer.json's normaliser
            and (path / "model.safetensors").is_file()
            and (path / "tokenizer.json").is_file()
        )

    def _forward(self, ids: np.ndarray) -> np.ndarray:
        """Hidden states (seq, hidden) of one unpadded sequence."""
        w, n = self.w, len(ids)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        hd = self.dim // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(name: str, h: np.ndarray, p: str = p) -> np.ndarray:
                return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q, k, v = (
                lin(f"attention.self.{t}", x).reshape(n, self.heads, hd).transpose(1, 0, 2)
                for t in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)  # (heads, n, n)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            ctx = (scores / scores.sum(-1, keepdims=True)) @ v  # (heads, n, hd)
            attn = lin("attention.output.dense", ctx.transpose(1, 0, 2).reshape(n, self.dim))
            x = _layer_norm(
                x + attn, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps
            )
            h = lin("output.dense", _gelu(lin("intermediate.dense", x)))
            x = _layer_norm(x + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        return x

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, enc in enumerate(self.tokenizer.encode_batch(list(texts))):
            hidden = self._forward(np.asarray(enc.ids, dtype=np.int64))
            vec = hidden[0] if self.cls_pooling else hidden.mean(0)
            if self.normalize:
                vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
            out[i] = vec
        return out
