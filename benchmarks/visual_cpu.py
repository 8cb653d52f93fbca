"""CPU cost and agreement of the visual leg's inference paths: one JSON row per (backend, precision, edge).

    python benchmarks/visual_cpu.py [--pages 12] [--queries 24] [--edges 1024 512] [--precisions fp32 int8]
                                    [--model DIR --type colmodernvbert] [--json] [--no-save]

Each path embeds the same ``--pages`` page images and ``--queries`` queries in a process of its own (so its
peak RSS is its own) through docrag's ``MultiVectorEmbedder``; the baseline row is torch fp32 at the first edge,
from the same run. Per row: ``s_per_page`` (CPU seconds of the child per page, after a warm-up page),
``vectors_per_page``, ``cosine_mean`` (per-vector cosine against the baseline's vectors, where the edge gives the
same vectors), ``top10_agreement`` (how much of each query's MaxSim top 10 over the stored pages the baseline
shares; null with 10 pages or fewer), ``peak_rss_mb``.

Without ``--model``, ColModernVBERT's full-size layout with random weights is built (same compute as the
checkpoint, no hub); with ``--model DIR`` a user's real checkpoint is measured the same way. Random weights
are a stand-in for real ones: agreement figures that count come from ``--model`` and a few hundred pages.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results

QUERIES = [
    "which table reports recall at five",
    "quarterly revenue by region",
    "diagram of the system architecture",
    "the chart with the highest growth",
    "signature field of the form",
    "results on the validation set",
]

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
sys.path.insert(0, {bench!r})
from embed import _page_image
from docrag.indexes.models import ModelSpec
from docrag.indexes.multivector import MultiVectorEmbedder
torch.set_flush_denormal(True)
args = json.loads(sys.argv[1])
options = {{"precision": args["precision"], "max_edge": args["edge"]}}
emb = MultiVectorEmbedder(ModelSpec(type=args["type"], model=args["model"], batch_size=1, options=options))
emb.embed_images([_page_image(99).resize((620, 877))])  # warm-up
pages = [_page_image(i) for i in range(args["pages"])]
c0 = time.process_time()
vecs = emb.embed_images(pages)
cpu = time.process_time() - c0
queries = emb.embed_queries(args["queries"])
np.savez(args["out"], *[np.asarray(v, np.float32) for v in vecs], *[np.asarray(q, np.float32) for q in queries])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"s_per_page": cpu / len(pages), "peak_rss_mb": peak}}))
"""


def _maxsim(queries: list[np.ndarray], pages: list[np.ndarray]) -> np.ndarray:
    return np.array([[float((q @ p.T).max(axis=1).sum()) for p in pages] for q in queries])


def _run(args, model: str, family: str, precision: str, edge: int, tmp: Path) -> dict:
    out = tmp / f"{precision}_{edge}.npz"
    spec = {"type": family, "model": model, "precision": precision, "edge": edge, "pages": args.pages,
            "queries": (QUERIES * (args.queries // len(QUERIES) + 1))[: args.queries], "out": str(out)}  # fmt: skip
    code = CHILD.format(bench=str(Path(__file__).parent))
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{precision} @ {edge}: {proc.stderr.strip()[-800:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    arrays = np.load(out)
    data = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    pages, queries = data[: args.pages], data[args.pages :]
    return {"backend": "torch", "precision": precision, "edge": edge, **row, "pages": pages, "queries": queries}


def _agreement(base: dict, row: dict) -> tuple[float | None, float | None]:
    same = all(a.shape == b.shape for a, b in zip(base["pages"], row["pages"], strict=True))
    cosine = None
    if same:
        cos = [np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)) for a, b in
               zip(base["pages"], row["pages"], strict=True)]  # fmt: skip
        cosine = float(np.mean(np.concatenate(cos)))
    k = 10
    if len(base["pages"]) <= k:  # every page is in every top 10: nothing to agree on
        return cosine, None
    ref, got = _maxsim(base["queries"], base["pages"]), _maxsim(row["queries"], row["pages"])
    shared = [len(set(np.argsort(-r)[:k]) & set(np.argsort(-g)[:k])) / k for r, g in zip(ref, got, strict=True)]
    return cosine, float(np.mean(shared))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=12)
    ap.add_argument("--queries", type=int, default=24)
    ap.add_argument("--edges", type=int, nargs="+", default=[1024, 512])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "int8"], choices=["fp32", "int8"])
    ap.add_argument("--model", help="a real checkpoint directory (default: a full-size random ColModernVBERT)")
    ap.add_argument("--type", default="colmodernvbert", help="its docrag model type")
    ap.add_argument("--json", action="store_true", help="one JSON row per path on stdout")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model
        if model is None:
            from embed import build_colmodernvbert_full

            model = str(build_colmodernvbert_full(tmp / "colmodernvbert", args.edges[0]))
        rows = [_run(args, model, args.type, p, e, tmp) for e in args.edges for p in args.precisions]
    base = next(r for r in rows if r["precision"] == "fp32" and r["edge"] == args.edges[0]) if (
        "fp32" in args.precisions) else rows[0]  # fmt: skip
    out = []
    for r in rows:
        cosine, top10 = _agreement(base, r)
        out.append({
            "backend": r["backend"], "precision": r["precision"], "edge": r["edge"],
            "s_per_page": round(r["s_per_page"], 3), "vectors_per_page": int(np.median([len(p) for p in r["pages"]])),
            "cosine_mean": None if cosine is None else round(cosine, 5),
            "top10_agreement": None if top10 is None else round(top10, 4),
            "peak_rss_mb": round(r["peak_rss_mb"]), "x_baseline": round(base["s_per_page"] / r["s_per_page"], 2),
        })  # fmt: skip
        if args.json:
            print(json.dumps(out[-1]))
    lines = ["| backend | precision | edge | CPU s/page | × fewer than baseline | vectors/page | cosine | top-10 "
             "agreement | peak RSS MB |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for o in out:
        cosine = o["cosine_mean"] if o["cosine_mean"] is not None else "— (other vectors)"
        top10 = o["top10_agreement"] if o["top10_agreement"] is not None else "—"
        lines.append(f"| {o['backend']} | {o['precision']} | {o['edge']} | {o['s_per_page']} | {o['x_baseline']} | "
                     f"{o['vectors_per_page']} | {cosine} | {top10} | {o['peak_rss_mb']} |")  # fmt: skip
    what = f"`{args.model}` ({args.type})" if args.model else "ColModernVBERT's full-size layout, random weights"
    body = (f"{what}; {args.pages} pages, {args.queries} queries, batch 1, each path in its own process; baseline "
            f"torch fp32 at edge {args.edges[0]} (same run); top-10 agreement over the {args.pages} stored pages.\n\n"
            + "\n".join(lines))  # fmt: skip
    title = "Visual leg on a CPU: inference paths (benchmarks/visual_cpu.py)"
    with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):  # --json: stdout holds the rows
        append_results(title, body, save=not args.no_save)


if __name__ == "__main__":
    main()
