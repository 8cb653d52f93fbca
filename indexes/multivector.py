"""Page images → multi-vector embeddings with colpali-engine's own model and processor classes.

A registry keyed by explicit model type (never a substring of the model name):

| type           | classes                                  | a checkpoint                      | dim | torchvision |
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
``dim`` is the model's own output size (``model.dim``; ColQwen3.5 reads it from its config); a database takes
the size of its first vectors. The checkpoints a profile uses, pinned, are in ``docrag.config.PROFILES``.

Padded positions are dropped before anything is stored (they are zero, or NaN with random weights), and
the same model embeds queries.

Patch layout: ``embed_pages`` also says where on the page each vector of a page's multivector looks
(``PatchGrid``: a run of image-token vectors, row-major over a grid that covers a box of the page), read
from the processor's own token sequence — Idefics3-style tiles (``<row_r_col_c>`` before each tile's run,
``<global-img>`` before the whole-page thumbnail), Qwen-VL's ``image_grid_thw`` (after the spatial merge),
and a square grid for single-run families (PaliGemma, Gemma 3). Every processor here resizes the whole page
into its grid (stretching, never cropping or padding), so a grid cell is a fixed fraction of the page
whatever its size. Vectors that are not image patches (the prompt's text tokens) have no place. A
sequence this cannot read (or pooled vectors) has no layout, never a guessed one.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import accel
from .colpali_compat import colpali_engine, require_torchvision
from .models import ModelSpec, checkout, load_for, pick_device, pick_dtype

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["FAMILIES", "MultiVectorEmbedder", "PatchGrid", "patch_layout"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Family:
    model_class: str
    processor_class: str
    needs_torchvision: bool
    # Idefics3-style tiling: ``options.max_edge`` sets the image processor's longest edge; the vision tower
    # (SigLIP on 512-px tiles) is the one ``accel`` exports for ``options.backend = "openvino" | "onnx"``.
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


@dataclass(frozen=True, slots=True)
class PatchGrid:
    """Vectors ``start`` … ``start + rows * cols - 1`` of a page's multivector: a row-major grid of image
    patches covering ``box`` of the page (x0, y0, x1, y1 as fractions of its width and height, top-left
    origin)."""

    start: int
    rows: int
    cols: int
    box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)

    @property
    def size(self) -> int:
        return self.rows * self.cols

    def cell(self, k: int) -> tuple[float, float, float, float]:
        """The page box of patch ``k`` of this grid (0 ≤ k < size)."""
        r, c = divmod(k, self.cols)
        x0, y0, x1, y1 = self.box
        w, h = (x1 - x0) / self.cols, (y1 - y0) / self.rows
        return (x0 + c * w, y0 + r * h, x0 + (c + 1) * w, y0 + (r + 1) * h)

    def to_list(self) -> list[float]:
        return [self.start, self.rows, self.cols, *(round(v, 6) for v in self.box)]

    @classmethod
    def from_list(cls, values: Sequence[float]) -> PatchGrid:
        start, rows, cols, *box = values
        return cls(int(start), int(rows), int(cols), tuple(float(v) for v in box))  # type: ignore[arg-type]


_TILE = re.compile(r"<row_(\d+)_col_(\d+)>")


def patch_layout(
    tokens: Sequence[str], image_token: str, grid: tuple[int, int] | None = None
) -> list[PatchGrid] | None:
    """Where the image-token vectors of one page's token sequence (``tokens``: the kept positions, in order)
    lie on the page; None when the sequence is not one this can read.

    ``grid``: (rows, cols) of the page's patches when the processor says so (Qwen-VL, after merging);
    otherwise a run must be square. Idefics3-style tiles are placed by the ``<row_r_col_c>`` token before
    their run (the tiles split the resized page evenly); a ``<global-img>`` run covers the whole page."""
    runs: list[tuple[int, int, str]] = []  # start, length, the token before the run
    i, n = 0, len(tokens)
    while i < n:
        if tokens[i] != image_token:
            i += 1
            continue
        j = i
        while j < n and tokens[j] == image_token:
            j += 1
        runs.append((i, j - i, tokens[i - 1] if i else ""))
        i = j
    if not runs:
        return None
    tiles = [(s, length, _TILE.fullmatch(before)) for s, length, before in runs]
    if any(m for *_, m in tiles):
        n_rows = max(int(m.group(1)) for *_, m in tiles if m)
        n_cols = max(int(m.group(2)) for *_, m in tiles if m)
        out = []
        for (start, length, before), (_, _, m) in zip(runs, tiles, strict=True):
            side = math.isqrt(length)
            if side * side != length:
                return None
            if m:
                r, c = int(m.group(1)) - 1, int(m.group(2)) - 1
                box = (c / n_cols, r / n_rows, (c + 1) / n_cols, (r + 1) / n_rows)
            elif before == "<global-img>":
                box = (0.0, 0.0, 1.0, 1.0)
            else:
                return None
            out.append(PatchGrid(start, side, side, box))
        return out
    if len(runs) != 1:
        return None
    start, length, _ = runs[0]
    if grid is not None:
        rows, cols = grid
    else:
        rows = cols = math.isqrt(length)
    if rows * cols != length:
        return None
    return [PatchGrid(start, rows, cols)]


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


# fp32; int8: weights int8, activations quantised at run time (torch: every Linear, per batch; openvino: the
# vision tower's MLP blocks, per group of 32);
# int8-static: weights and activations int8 with scales calibrated once on synthetic pages (openvino, onnx).
PRECISIONS = ("fp32", "int8", "int8-static")


def quantize_int8(model: Any) -> Any:
    """``model`` with its Linear layers in dynamic int8 (torch's ``quantize_dynamic``): on the CPU measured here,
    1.7× fewer CPU seconds per ColModernVBERT page at a per-vector cosine of 0.9993 against fp32
    (benchmarks/RESULTS.md, issue 24)."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch marks its eager quantisation API for a later move to torchao
        warnings.simplefilter("ignore")
        # In place: the fp32 weights are not kept beside the int8 ones.
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


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
        self.precision = str(spec.options.get("precision", "fp32"))
        if self.precision not in PRECISIONS:
            raise ValueError(f"visual.options.precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        max_edge = spec.options.get("max_edge")
        if max_edge and fam.tiles:
            self.processor.image_processor.size = {"longest_edge": int(max_edge)}
        backend = str(spec.options.get("backend", "torch"))
        self.plan = accel.plan(spec.type, backend, self.precision, self.device, fam.tiles)
        if self.plan.note:
            log.info("visual model: %s", self.plan.describe())
        # The exported tower is loaded (and exported, the first time) when a page is first embedded: a search,
        # which only embeds queries, never pays for it.
        self._pending_export = self.plan.backend != "torch"
        if self.device == "cpu" and self.plan.backend == "torch" and self.plan.precision != "fp32":
            self.model = quantize_int8(self.model)
        # With an exported tower, what stays in torch (the text encoder, the connector) stays fp32: torch's int8
        # there saved 0.5 of 15 CPU s per page and took the page's cosine from 0.99991 to 0.99955.
        elif self.precision != "fp32" and self.device != "cpu":  # int8 kernels are CPU kernels
            log.info(
                "visual.options.precision %s is a CPU path: %s runs in %s", self.precision, self.device, self.dtype
            )
            self.precision = str(self.dtype).removeprefix("torch.")
        self.dim = int(getattr(self.model, "dim", self.dim))
        self.pool_factor = int(spec.options.get("pool_factor", 1))
        self._torch = torch

    def load_exported(self) -> None:
        """Put the exported vision tower in place (exporting it into the cache the first time); on a failure (a
        full disk, an unsupported CPU) torch runs instead, with a warning. Idempotent; ``embed_pages`` calls it."""
        if not self._pending_export:
            return
        self._pending_export = False
        threads = int(self.spec.options.get("threads", 0))
        try:
            accel.swap_vision_tower(
                self.model, self.spec, self.plan.backend, self.plan.precision, threads, self._calibration_tiles
            )
        except Exception as exc:
            text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            precision = "int8" if self.precision != "fp32" else "fp32"
            self.plan = accel.Plan("torch", precision, f"{self.plan.backend} failed ({text}); torch instead")
            log.warning("visual model: %s", self.plan.describe())
            if precision == "int8":
                self.model = quantize_int8(self.model)

    def _calibration_tiles(self, pages: int = 7, most: int = 24) -> np.ndarray:
        """Tiles of synthetic pages (one of each kind) through this model's processor: what a static int8 export
        calibrates its activation scales on."""
        from .calibration import synthetic_pages

        tiles = []
        for page in synthetic_pages(pages):
            pixels = self.processor.process_images([page])["pixel_values"].float().numpy()
            tiles.extend(t for t in pixels.reshape(-1, *pixels.shape[-3:]) if t.any())  # padding tiles are zero
        pick = np.linspace(0, len(tiles) - 1, min(most, len(tiles))).round().astype(int)
        return np.stack([tiles[i] for i in sorted(set(pick))])

    # -- embedding ---------------------------------------------------------------------------------------
    @property
    def _image_token(self) -> str | None:
        proc = self.processor
        token = getattr(proc, "image_token", None)
        if isinstance(token, str):
            return token
        token_id = getattr(proc, "image_token_id", None)
        return proc.tokenizer.convert_ids_to_tokens(int(token_id)) if token_id is not None else None

    def _layouts(self, batch: Any, mask: Any) -> list[list[PatchGrid] | None]:
        """Each page's patch layout, from the processor's tokens (before the vectors are filtered)."""
        image_token = self._image_token
        if image_token is None or "input_ids" not in batch:
            return [None] * len(mask)
        grids: list[tuple[int, int] | None] = [None] * len(mask)
        thw = batch.get("image_grid_thw")
        if thw is not None:  # Qwen-VL: one image per page, merged by merge_size in both directions
            merge = int(getattr(self.processor.image_processor, "merge_size", 1) or 1)
            grids = [(int(h) // merge, int(w) // merge) for _, h, w in thw.tolist()]
        out = []
        for ids, m, grid in zip(batch["input_ids"], mask, grids, strict=True):
            tokens = self.processor.tokenizer.convert_ids_to_tokens(ids[m].tolist())
            out.append(patch_layout(tokens, image_token, grid))
        return out

    def _forward(self, batch: Any, layouts: bool = False) -> list[Any]:
        torch = self._torch
        # "labels" (PaliGemma's processor adds them) would only make the model compute a language-model loss.
        batch = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in batch.items() if k != "labels"}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            emb = self.model(**batch)  # (batch, seq_len, dim), zero (or NaN) at padded positions
        mask = batch["attention_mask"].bool()  # (batch, seq_len)
        grids = self._layouts(batch, mask.cpu()) if layouts else [None] * len(mask)
        out: list[Any] = []
        for e, m, grid in zip(emb, mask, grids, strict=True):
            kept = e[m].float()  # (n_real, dim): padded positions dropped
            finite = torch.isfinite(kept).all(dim=-1)
            if not bool(finite.all()):
                log.warning("dropping %d non-finite vectors", int((~finite).sum()))
                kept, grid = kept[finite], None  # positions moved: no layout
            out.append((kept.cpu().numpy(), grid) if layouts else kept.cpu().numpy())
        return out

    def embed_pages(self, images: Sequence[Image.Image]) -> list[tuple[np.ndarray, list[PatchGrid] | None]]:
        """Like ``embed_images``, with each page's patch layout (None after token pooling, or for a token
        sequence the layout reader does not know)."""
        self.load_exported()
        out: list[tuple[np.ndarray, list[PatchGrid] | None]] = []
        bs = self.spec.batch_size
        for i in range(0, len(images), bs):
            batch = self.processor.process_images([im.convert("RGB") for im in images[i : i + bs]])
            out.extend(self._forward(batch, layouts=True))
        if self.pool_factor > 1:
            return [(v, None) for v in self.pool([v for v, _ in out], self.pool_factor)]
        return out

    def embed_images(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        """One (n_patches, dim) float32 array per image, padding removed (and token-pooled if configured)."""
        return [v for v, _ in self.embed_pages(images)]

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
