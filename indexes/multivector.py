"""Page images → multi-vector embeddings with colpali-engine's own model and processor classes.

A registry keyed by explicit model type (never a substring of the model name):

| type           | classes                                  | default checkpoint                | dim | torchvision |
|----------------|------------------------------------------|-----------------------------------|-----|-------------|
| colidefics3    | ColIdefics3 / ColIdefics3Processor       | vidore/colSmol-256M               | 128 | no          |
| colmodernvbert | ColModernVBert / ColModernVBertProcessor | ModernVBERT/colmodernvbert        | 128 | no          |
| colpali        | ColPali / ColPaliProcessor               | vidore/colpali-v1.3               | 128 | no          |
| colgemma3      | ColGemma3 / ColGemmaProcessor3           | Cognitive-Lab/ColNetraEmbed       | 128 | no          |
| colqwen2       | ColQwen2 / ColQwen2Processor             | vidore/colqwen2-v1.0              | 128 | yes         |
| colqwen2_5     | ColQwen2_5 / ColQwen2_5_Processor        | vidore/colqwen2.5-v0.2            | 128 | yes         |
| colqwen3       | ColQwen3 / ColQwen3Processor             | TomoroAI/tomoro-colqwen3-embed-4b | 320 | yes         |
| colqwen3_5     | ColQwen3_5 / ColQwen3_5Processor         | athrael-soju/colqwen3.5-4.5B-v3   | 320 | yes         |

Sizes: colSmol-256M and ColModernVBERT (~250M) run on a CPU; ColPali (3B), ColGemma3 (4B), ColQwen2/2.5 (2B/3B)
and ColQwen3/3.5 (4B+) want a GPU. ModernVBERT/colmodernvbert is a LoRA adapter on ModernVBERT/colmodernvbert-base.

"torchvision": every Qwen-VL processor carries a video processor, which transformers 5 only provides
with torchvision (its video base classes are placeholders without it), so these processors do not load.
``dim`` is the model's own output size (``model.dim``; ColQwen3.5 reads it from its config); the store holds
128-d vectors today.

Padded positions are dropped before anything is stored (they are zero, or NaN with random weights), and
the same model embeds queries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .colpali_compat import colpali_engine, require_torchvision
from .models import ModelSpec, checkout, load_for, pick_device, pick_dtype

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DEFAULT_SPECS", "FAMILIES", "MultiVectorEmbedder"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Family:
    model_class: str
    processor_class: str
    needs_torchvision: bool
    # Idefics3-style tiling: ``options.max_edge`` sets the image processor's longest edge.
    tiles: bool = False


FAMILIES: dict[str, Family] = {
    "colidefics3": Family("ColIdefics3", "ColIdefics3Processor", needs_torchvision=False, tiles=True),
    "colmodernvbert": Family("ColModernVBert", "ColModernVBertProcessor", needs_torchvision=False, tiles=True),
    "colpali": Family("ColPali", "ColPaliProcessor", needs_torchvision=False),
    "colgemma3": Family("ColGemma3", "ColGemmaProcessor3", needs_torchvision=False),
    "colqwen2": Family("ColQwen2", "ColQwen2Processor", needs_torchvision=True),
    "colqwen2_5": Family("ColQwen2_5", "ColQwen2_5_Processor", needs_torchvision=True),
    "colqwen3": Family("ColQwen3", "ColQwen3Processor", needs_torchvision=True),
    "colqwen3_5": Family("ColQwen3_5", "ColQwen3_5Processor", needs_torchvision=True),
}

# Revisions: the colSmol pin is the commit used in public code we could read; the others are not pinned
# yet because no machine here reaches the hub to read their hashes (pin them in your config).
DEFAULT_SPECS: dict[str, ModelSpec] = {
    "colidefics3": ModelSpec(
        type="colidefics3", model="vidore/colSmol-256M", revision="a59110fdf114638b8018e6c9a018907e12f14855"
    ),
    "colqwen2_5": ModelSpec(type="colqwen2_5", model="vidore/colqwen2.5-v0.2", batch_size=8),
    "colpali": ModelSpec(type="colpali", model="vidore/colpali-v1.3"),
    "colqwen2": ModelSpec(type="colqwen2", model="vidore/colqwen2-v1.0", batch_size=8),
    # The checkpoints colpali-engine 0.3.18 lists for its newer classes (README model table; ColModernVBert: its
    # own tests). ModernVBERT/colmodernvbert is a LoRA adapter: loading it also reads its base model
    # (ModernVBERT/colmodernvbert-base, through peft), which must be cached too for offline use.
    "colmodernvbert": ModelSpec(type="colmodernvbert", model="ModernVBERT/colmodernvbert"),
    "colgemma3": ModelSpec(type="colgemma3", model="Cognitive-Lab/ColNetraEmbed", batch_size=8),
    "colqwen3": ModelSpec(type="colqwen3", model="TomoroAI/tomoro-colqwen3-embed-4b", batch_size=8),
    "colqwen3_5": ModelSpec(type="colqwen3_5", model="athrael-soju/colqwen3.5-4.5B-v3", batch_size=8),
}


def _family(spec: ModelSpec) -> Family:
    try:
        return FAMILIES[spec.type]
    except KeyError:
        raise ValueError(f"unknown multi-vector model type {spec.type!r}; known: {', '.join(FAMILIES)}") from None


def _drop_unloaded_lm_head(model: Any) -> None:
    """Retrievers never use the language-model head; checkpoints leave it out, which can leave it on the meta
    device (nothing to move). Replace such heads with an identity so the model can be placed on a device."""
    import torch

    meta = {name.rsplit(".", 1)[0] for name, p in model.named_parameters() if p.is_meta}
    for module_name in meta:
        if not module_name.endswith("lm_head"):
            raise RuntimeError(f"checkpoint is missing weights for {module_name!r}: is it the right model type?")
        parent_name, _, attr = module_name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, torch.nn.Identity())
        log.info("left out the unused %s (not in the checkpoint)", module_name)


class MultiVectorEmbedder:
    """ColPali-family late-interaction embedder: one vector per image patch (and per query token).

    ``dim`` is the model's output size: 128 for most families, 320 for ColQwen3 (and ColQwen3.5 checkpoints).
    """

    dim = 128

    def __init__(self, spec: ModelSpec) -> None:
        import torch

        fam = _family(spec)
        if fam.needs_torchvision:
            require_torchvision(f"model type {spec.type!r} ({fam.processor_class})")
        models = colpali_engine()
        model_cls, proc_cls = getattr(models, fam.model_class), getattr(models, fam.processor_class)
        self.spec = spec
        self.device = pick_device(spec.device)
        self.dtype = pick_dtype(spec.dtype, self.device)
        with checkout(spec, "visual") as target:  # a PEFT adapter comes with its declared base
            self.processor = load_for(spec, proc_cls.from_pretrained, path=target)
            self.model = load_for(spec, model_cls.from_pretrained, path=target, dtype=self.dtype)
        _drop_unloaded_lm_head(self.model)
        self.model = self.model.to(self.device).eval()
        self.dim = int(getattr(self.model, "dim", self.dim))
        max_edge = spec.options.get("max_edge")
        if max_edge and fam.tiles:
            self.processor.image_processor.size = {"longest_edge": int(max_edge)}
        self.pool_factor = int(spec.options.get("pool_factor", 1))
        self._torch = torch

    # -- embedding ---------------------------------------------------------------------------------------
    def _forward(self, batch: Any) -> list[np.ndarray]:
        torch = self._torch
        # "labels" (PaliGemma's processor adds them) would only make the model compute a language-model loss.
        batch = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in batch.items() if k != "labels"}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            emb = self.model(**batch)  # (batch, seq_len, dim), zero (or NaN) at padded positions
        mask = batch["attention_mask"].bool()  # (batch, seq_len)
        out = []
        for e, m in zip(emb, mask, strict=True):
            kept = e[m].float()  # (n_real, dim): padded positions dropped
            finite = torch.isfinite(kept).all(dim=-1)
            if not bool(finite.all()):
                log.warning("dropping %d non-finite vectors", int((~finite).sum()))
                kept = kept[finite]
            out.append(kept.cpu().numpy())
        return out

    def embed_images(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        """One (n_patches, dim) float32 array per image, padding removed (and token-pooled if configured)."""
        out: list[np.ndarray] = []
        bs = self.spec.batch_size
        for i in range(0, len(images), bs):
            batch = self.processor.process_images([im.convert("RGB") for im in images[i : i + bs]])
            out.extend(self._forward(batch))
        if self.pool_factor > 1:
            out = self.pool(out, self.pool_factor)
        return out

    def embed_queries(self, queries: Sequence[str]) -> list[np.ndarray]:
        """One (n_tokens, dim) float32 array per query, through the same model (query augmentation included).

        Queries go one per forward pass: with PaliGemma's prefix attention a padded batch changes the real
        tokens' vectors (measured: up to 0.13 per component on the tiny model), and a query is cheap.
        """
        return [self._forward(self.processor.process_queries([q]))[0] for q in queries]

    @staticmethod
    def pool(embeddings: list[np.ndarray], pool_factor: int) -> list[np.ndarray]:
        """colpali-engine's hierarchical token pooling: about n / pool_factor vectors per page, re-normalised."""
        import torch

        colpali_engine()
        from colpali_engine.compression.token_pooling import HierarchicalTokenPooler

        pooled = HierarchicalTokenPooler().pool_embeddings(
            [torch.from_numpy(e) for e in embeddings], pool_factor=pool_factor
        )
        out = []
        for p in pooled:
            p = p.float()
            out.append((p / p.norm(dim=-1, keepdim=True).clamp_min(1e-12)).numpy())
        return out
