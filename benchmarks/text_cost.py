"""CPU cost of candidate embedders: full-size architectures, random weights, fp32, all cores (no hub, no tokenizer).

    python benchmarks/text_cost.py [--reps 3] [--batch 16] [--only minilm bge-small ...] [--quick] [--json]
                                   [--no-save] [--keep-denormals]

Every model is built from a config object of the published checkpoint's shape and fed random token ids (or
random pixels), so the compute is the real checkpoint's and nothing is downloaded. Per text model:
- seconds per document chunk: one batch of --batch chunks of 256 and of 512 tokens, no padding (SigLIP's text
  tower: 64 tokens, its limit, so 4 chunks per 256 tokens of text; the table reports those 4);
- seconds per query: one query of 16 tokens, batch 1, the interactive case (SigLIP pads every text to 64);
per image tower: seconds per image, batch 8. Pooling and L2 normalisation are inside the timed call.

Shapes (from the checkpoints' config.json, as remembered; vocabularies only change the embedding table):
- all-MiniLM-L6-v2: BERT 6 layers, 384 hidden, 12 heads, MLP 1536, vocab 30522, mean pooling (sentence-transformers
  truncates at 256 tokens; the 512 column is the architecture's limit, shown for comparison);
- bge-small-en-v1.5 = snowflake-arctic-embed-s: BERT 12 layers, 384 hidden, 12 heads, MLP 1536, CLS pooling;
- snowflake-arctic-embed-m-v1.5: BERT-base, 12 layers, 768 hidden, 12 heads, MLP 3072, CLS pooling;
- granite-embedding-small-english-r2: ModernBERT 12 layers, 384 hidden, MLP 1536 (GLU), vocab 50368, global
  attention every 3rd layer, 128-token local windows, CLS pooling. Assumed 12 heads of 32 (as in the R2 paper's
  table, from memory; 6 heads of 64 would do the same FLOPs). 47M parameters, as on the model card;
- Qwen3-Embedding-0.6B: Qwen3 28 layers, 1024 hidden, 16 query / 8 KV heads of 128, MLP 3072, vocab 151669,
  tied embeddings, causal, last-token pooling (its queries also carry an instruction prefix, ~20 tokens more;
  left out: every model gets the same 16 tokens);
- SigLIP 2 base/16-224: text and vision 12 layers, 768 hidden, 12 heads, MLP 3072, vocab 256000, 64 text
  positions, 224 px / 16 px patches (196 tokens), attention-pooling head;
- SigLIP 2 so400m/14-384: text and vision 27 layers, 1152 hidden, 16 heads, MLP 4304, vocab 256000, 64 text
  positions, 384 px / 14 px patches (729 tokens).

Repetitions are interleaved (each repetition runs every model, case by case) and medians reported, so other load
on the machine hits every model alike. A warm-up call per model and case (batch 2 for chunks) comes first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

from _common import append_results, machine

BERT = dict(vocab_size=30522, num_attention_heads=12, max_position_embeddings=512)
BASE = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
SO400M = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16)


def _bert(layers: int, hidden: int, mlp: int):
    from transformers import BertConfig, BertModel

    cfg = BertConfig(num_hidden_layers=layers, hidden_size=hidden, intermediate_size=mlp, **BERT)
    return BertModel(cfg, add_pooling_layer=False)


def _granite():
    from transformers import ModernBertConfig, ModernBertModel

    cfg = ModernBertConfig(
        vocab_size=50368, hidden_size=384, intermediate_size=1536, num_hidden_layers=12, num_attention_heads=12,
        global_attn_every_n_layers=3, local_attention=128, max_position_embeddings=8192,
    )  # fmt: skip
    return ModernBertModel(cfg)


def _qwen3():
    from transformers import Qwen3Config, Qwen3Model

    cfg = Qwen3Config(
        vocab_size=151669, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
        num_key_value_heads=8, head_dim=128, max_position_embeddings=32768, tie_word_embeddings=True, use_cache=False,
    )  # fmt: skip
    return Qwen3Model(cfg)


def _siglip(shape: dict, image_size: int, patch: int):
    from transformers import SiglipConfig, SiglipModel

    text = dict(vocab_size=256000, max_position_embeddings=64, projection_size=shape["hidden_size"], pad_token_id=0,
                bos_token_id=None, eos_token_id=1, **shape)  # fmt: skip
    vision = dict(image_size=image_size, patch_size=patch, **shape)
    return SiglipModel(SiglipConfig(text_config=text, vision_config=vision))


@dataclass
class Cand:
    key: str
    label: str
    build: Callable[[], Any] | str  # a str: the key of the candidate whose model this one shares (SigLIP towers)
    kind: str  # mean | cls | last | siglip-text | siglip-image
    seq_max: int = 512
    image: int = 0


CANDS = [
    Cand("minilm", "all-MiniLM-L6-v2 (BERT 6×384)", lambda: _bert(6, 384, 1536), "mean"),
    Cand("bge-small", "bge-small-en-v1.5 / arctic-embed-s (BERT 12×384)", lambda: _bert(12, 384, 1536), "cls"),
    Cand("arctic-m", "snowflake-arctic-embed-m-v1.5 (BERT 12×768)", lambda: _bert(12, 768, 3072), "cls"),
    Cand("granite-small", "granite-embedding-small-english-r2 (ModernBERT 12×384)", _granite, "cls"),
    Cand("qwen3-0.6b", "Qwen3-Embedding-0.6B (Qwen3 28×1024)", _qwen3, "last"),
    Cand("siglip2-base", "SigLIP 2 base/16-224 text 12×768", partial(_siglip, BASE, 224, 16), "siglip-text", 64),
    Cand("siglip2-so400m", "SigLIP 2 so400m/14-384 text 27×1152", partial(_siglip, SO400M, 384, 14), "siglip-text", 64),
    Cand("siglip2-base-img", "SigLIP 2 base/16-224 image (196 patches)", "siglip2-base", "siglip-image", 0, 224),
    Cand("siglip2-so400m-img", "SigLIP 2 so400m/14-384 image (729 patches)", "siglip2-so400m", "siglip-image", 0, 384),
]


def _tower(model, kind: str):
    if kind == "siglip-text":
        return model.text_model
    return model.vision_model if kind == "siglip-image" else model


def _params(module) -> tuple[float, float]:
    import torch

    total = sum(p.numel() for p in module.parameters())
    tables = sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Embedding))
    return total / 1e6, (total - tables) / 1e6


def _forward(tower, kind: str, x):
    import torch
    import torch.nn.functional as F

    if kind == "siglip-image":
        return F.normalize(tower(pixel_values=x).pooler_output, dim=-1)
    if kind == "siglip-text":
        return F.normalize(tower(input_ids=x).pooler_output, dim=-1)
    mask = torch.ones_like(x)
    h = tower(input_ids=x, attention_mask=mask).last_hidden_state
    if kind == "mean":
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    else:
        pooled = h[:, 0] if kind == "cls" else h[:, -1]
    return F.normalize(pooled, dim=-1)


def _input(c: Cand, tower, batch: int, seq: int, gen):
    import torch

    if c.kind == "siglip-image":
        return torch.randn(batch, 3, c.image, c.image, generator=gen)
    vocab = tower.config.vocab_size
    return torch.randint(3, vocab, (batch, seq), generator=gen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per model and case (median reported)")
    ap.add_argument("--batch", type=int, default=16, help="chunks per document batch")
    ap.add_argument("--image-batch", type=int, default=8)
    ap.add_argument("--query-calls", type=int, default=5, help="query calls per repetition (their mean is one rep)")
    ap.add_argument("--only", nargs="+", choices=[c.key for c in CANDS], help="models to run (MiniLM always runs)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 rep, 4 chunks, 2 images, 2 query calls")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object on stdout")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--keep-denormals", action="store_true", help="do not flush denormals (slower on random weights)")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.batch, args.image_batch, args.query_calls = 1, 4, 2, 2
    import torch

    # Random weights push some activations into denormals, which x86 computes far slower; trained weights do not.
    torch.set_flush_denormal(not args.keep_denormals)
    torch.set_num_threads(os.cpu_count() or 1)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    t_start, load_before = time.perf_counter(), os.getloadavg()[0]
    cands = [c for c in CANDS if not args.only or c.key in args.only or c.key == "minilm"]
    models: dict[str, Any] = {}
    towers: dict[str, tuple[Any, float, float]] = {}
    for c in cands:
        base = c.build if isinstance(c.build, str) else c.key
        if base not in models:
            torch.manual_seed(0)
            t0 = time.perf_counter()
            models[base] = next(x for x in CANDS if x.key == base).build().eval()
            log(f"built {base} in {time.perf_counter() - t0:.1f} s")
        tower = _tower(models[base], c.kind)
        towers[c.key] = (tower, *_params(tower))

    def cases(c: Cand) -> list[tuple[str, int, int]]:  # (case, seq, batch)
        if c.kind == "siglip-image":
            return [("image", 0, args.image_batch)]
        if c.seq_max < 256:  # SigLIP text: chunks and queries are all padded to its 64 positions
            return [("chunk", c.seq_max, args.batch), ("query", c.seq_max, 1)]
        return [("chunk", 256, args.batch), ("chunk", 512, args.batch), ("query", 16, 1)]

    plan = [(c, *case) for c in cands for case in cases(c)]
    plan.sort(key=lambda p: (["chunk", "query", "image"].index(p[1]), p[2]))  # a case's models run back to back
    gen = torch.Generator().manual_seed(0)
    times: dict[tuple[str, str, int], list[float]] = {(c.key, case, seq): [] for c, case, seq, _ in plan}
    with torch.inference_mode():
        for c, _, seq, batch in plan:
            tower = towers[c.key][0]
            _forward(tower, c.kind, _input(c, tower, min(batch, 2), seq, gen))
        for rep in range(args.reps):
            for c, case, seq, batch in plan:
                tower = towers[c.key][0]
                x = _input(c, tower, batch, seq, gen)
                calls = args.query_calls if case == "query" else 1
                t0 = time.perf_counter()
                for _ in range(calls):
                    _forward(tower, c.kind, x)
                per_item = (time.perf_counter() - t0) / calls / (1 if case == "query" else batch)
                times[(c.key, case, seq)].append(per_item)
                log(f"rep {rep + 1}/{args.reps} {c.key} {case} {seq or c.image}: {per_item:.4f} s per item")
    med = {k: statistics.median(v) for k, v in times.items()}

    def figure(c: Cand, case: str, seq: int) -> tuple[float, float]:
        """Median seconds per item (SigLIP text chunks: per 256 tokens of text, 4 chunks) and its ratio to MiniLM's
        (chunks: same length, SigLIP's against 256; queries: 16 tokens; images: a 256-token chunk)."""
        s = med[(c.key, case, seq)]
        if case == "chunk" and seq < 256:
            s *= 256 / seq
        ref_key = {"query": ("query", 16), "image": ("chunk", 256)}.get(case, ("chunk", max(seq, 256)))
        return s, s / med[("minilm", *ref_key)]

    def cell(c: Cand, case: str, seq: int) -> tuple[str, str]:
        if case == "chunk" and c.seq_max < 256:
            if seq > 256:
                return "—", "—"
            seq = c.seq_max
        s, r = figure(c, case, seq)
        if case == "chunk" and seq < 256:
            return f"{s:.3f} ({256 // seq}×{seq} tok)", f"{r:.1f}×"
        return (f"{s * 1000:.1f}" if case == "query" else f"{s:.3f}"), f"{r:.1f}×"

    rows = [
        "| model | params M (excl. embedding tables) | pooling | s/chunk, 256 tok | × MiniLM | s/chunk, 512 tok "
        "| × MiniLM | ms/query, 16 tok | × MiniLM |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in (c for c in cands if c.kind != "siglip-image"):
        _, total, body = towers[c.key]
        q_seq = min(c.seq_max, 16) if c.seq_max >= 256 else c.seq_max
        cells = [*cell(c, "chunk", 256), *cell(c, "chunk", 512)]
        q, qr = cell(c, "query", q_seq)
        pool = {"siglip-text": "attention head, 64 tok padded"}.get(c.kind, c.kind)
        rows.append(f"| {c.label} | {total:.0f} ({body:.0f}) | {pool} | {' | '.join(cells)} | {q} | {qr} |")
    img = [c for c in cands if c.kind == "siglip-image"]
    if img:
        rows += ["", f"| image tower | params M | s/image (batch {args.image_batch}) | = MiniLM 256-tok chunks |",
                 "|---|---|---|---|"]  # fmt: skip
        for c in img:
            s, r = figure(c, "image", 0)
            rows.append(f"| {c.label} | {towers[c.key][1]:.0f} | {s:.3f} | {r:.0f} |")
    wall = time.perf_counter() - t_start
    load_after = os.getloadavg()[0]
    cmd = " ".join(["python benchmarks/text_cost.py", *sys.argv[1:]])
    body = "\n".join(rows) + (
        f"\n\nRandom weights of the full-size architectures (same compute as the checkpoints), fp32, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, torch.inference_mode; random token ids, no padding "
        f"(SigLIP text: always 64 tokens). Chunks in batches of {args.batch}, images in batches of "
        f"{args.image_batch}, queries one at a time (mean of {args.query_calls} calls); median of {args.reps} "
        f"interleaved repetitions after a warm-up. × MiniLM: the same column's all-MiniLM-L6-v2 figure in this run "
        f"(for images: how many MiniLM 256-token chunks one image costs). Wall time {wall / 60:.1f} min. "
        f"Load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end"
        + (": other work shared the CPUs; ratios hold better than absolute times." if max(load_before, load_after)
           > (os.cpu_count() or 1) else ".") + f" `{cmd}`."
    )  # fmt: skip
    out = sys.stderr if args.json else sys.stdout
    with contextlib.redirect_stdout(out):
        append_results("Embedder CPU cost per chunk, query and image (benchmarks/text_cost.py)", body,
                       save=not args.no_save)  # fmt: skip
    if args.json:
        results = [
            {"model": c.key, "label": c.label, "case": case, "seq": seq, "batch": batch,
             "params_m": towers[c.key][1], "params_excl_embedding_tables_m": towers[c.key][2],
             "median_s_per_item": med[(c.key, case, seq)], "s_per_item": times[(c.key, case, seq)],
             "compared_s": figure(c, case, seq)[0], "ratio_vs_minilm": figure(c, case, seq)[1]}
            for c, case, seq, batch in plan
        ]  # fmt: skip
        info = {"machine": machine(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                "reps": args.reps, "wall_s": wall, "load_avg": [load_before, load_after]}  # fmt: skip
        print(json.dumps({**info, "results": results}, indent=1))


if __name__ == "__main__":
    main()
