"""CPU cost and agreement of the visual leg's inference paths: one JSON row per (backend, precision, edge).

    python benchmarks/visual_cpu.py [--pages 12] [--queries 32] [--edges 2048 1024] [--baseline 2048]
                                    [--paths torch:fp32 torch:int8 openvino:int8 openvino:int8-static onnx:int8]
                                    [--model DIR --type colmodernvbert] [--json] [--no-save]

Each path embeds the same ``--pages`` synthetic pages (``docrag.indexes.calibration``: prose, tables, charts,
slides, forms, photos, scans; none of them the pages a static export calibrates on) and ``--queries`` queries in
a process of its own (so its peak RSS is its own) through docrag's ``MultiVectorEmbedder``, with
``visual.options`` ``backend``/``precision``/``max_edge``. The baseline is torch fp32 at the first edge, from the
same run. Per row:

- ``s_per_page``: CPU seconds of the child per page (both threads counted), after a warm-up page; an export
  into an empty cache happens at the warm-up and is not counted (``export_s``: load and first page with it);
- ``vectors_per_page`` (median);
- ``cosine_mean``: per-vector cosine against torch fp32 **at the same edge** (null where that row is absent);
- ``top10_agreement``: how much of each query's MaxSim top 10 over the stored pages the torch fp32 row of the
  same edge shares (null with 10 pages or fewer);
- ``peak_rss_mb``.

Without ``--model``, ColModernVBERT's full-size layout with random weights is built (same compute as the
checkpoint, no hub); with ``--model DIR`` a user's real checkpoint is measured the same way. Random weights
are a stand-in for real ones: agreement figures that count come from ``--model`` and a few hundred pages.
``--cache DIR`` keeps the exports (default: a temporary folder, so every export is timed once).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from docrag.indexes.calibration import synthetic_page, synthetic_pages
from docrag.indexes.models import ModelSpec
from docrag.indexes.multivector import MultiVectorEmbedder
torch.set_flush_denormal(True)
args = json.loads(sys.argv[1])
options = {"backend": args["backend"], "precision": args["precision"], "max_edge": args["edge"]}
t0 = time.perf_counter()
emb = MultiVectorEmbedder(ModelSpec(type=args["type"], model=args["model"], batch_size=1, options=options))
emb.embed_images([synthetic_page(999).resize((620, 877))])  # warm-up (and the export, into an empty cache)
load_s = time.perf_counter() - t0
pages = synthetic_pages(args["pages"], start=100)
c0 = time.process_time()
vecs = emb.embed_images(pages)
cpu = time.process_time() - c0
queries = emb.embed_queries(args["queries"])
np.savez(args["out"], *[np.asarray(v, np.float32) for v in vecs], *[np.asarray(q, np.float32) for q in queries])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"s_per_page": cpu / len(pages), "peak_rss_mb": peak, "load_s": load_s, "plan": emb.plan.describe()}))
"""

PATHS = ["torch:fp32", "torch:int8", "openvino:int8", "openvino:int8-static", "onnx:int8"]


def _queries(n: int) -> list[str]:
    from docrag.indexes.calibration import _WORDS

    rng = random.Random(7)
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 8))) for _ in range(n)]


def _maxsim(queries: list[np.ndarray], pages: list[np.ndarray]) -> np.ndarray:
    return np.array([[float((q @ p.T).max(axis=1).sum()) for p in pages] for q in queries])


def _run(args, model: str, path: str, edge: int, tmp: Path, cache: Path) -> dict:
    backend, precision = path.split(":")
    out = tmp / f"{backend}_{precision}_{edge}.npz"
    spec = {"type": args.type, "model": model, "backend": backend, "precision": precision, "edge": edge,
            "pages": args.pages, "queries": _queries(args.queries), "out": str(out)}  # fmt: skip
    env = {**os.environ, "DOCRAG_CACHE_DIR": str(cache)}
    from docrag.indexes.accel import RUNTIMES

    exported = backend != "torch" and not any((cache / "exports").glob(f"*/{RUNTIMES[backend].files[precision]}"))
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{path} @ {edge}: {proc.stderr.strip()[-1500:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    arrays = np.load(out)
    data = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    return {"backend": backend, "precision": precision, "edge": edge, **row, "export_s": row["load_s"] if exported
            else None, "pages": data[: args.pages], "queries": data[args.pages :]}  # fmt: skip


def _agreement(base: dict | None, row: dict) -> tuple[float | None, float | None]:
    if base is None:
        return None, None
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
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--edges", type=int, nargs="+", default=[2048, 1024])
    ap.add_argument("--paths", nargs="+", default=PATHS, help="backend:precision, e.g. openvino:int8")
    ap.add_argument("--baseline", type=int, help="edge of the torch fp32 baseline row (default: the first edge); "
                    "one more row when it is not among --edges")  # fmt: skip
    ap.add_argument("--model", help="a real checkpoint directory (default: a full-size random ColModernVBERT)")
    ap.add_argument("--type", default="colmodernvbert", help="its docrag model type")
    ap.add_argument("--cache", help="keep exported graphs here (default: a temporary folder)")
    ap.add_argument("--json", action="store_true", help="one JSON row per path on stdout")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = Path(args.cache) if args.cache else tmp / "cache"
        model = args.model
        if model is None:
            from embed import build_colmodernvbert_full

            model = str(build_colmodernvbert_full(tmp / "colmodernvbert", args.edges[0]))
        base_edge = args.baseline or args.edges[0]
        rows = [] if base_edge in args.edges else [_run(args, model, "torch:fp32", base_edge, tmp, cache)]
        rows += [_run(args, model, p, e, tmp, cache) for e in args.edges for p in args.paths]
    baseline = next((r for r in rows if (r["backend"], r["precision"], r["edge"]) == ("torch", "fp32", base_edge)),
                    rows[0])  # fmt: skip
    out = []
    for r in rows:
        same_edge = next((b for b in rows if (b["backend"], b["precision"], b["edge"]) == ("torch", "fp32", r["edge"])),
                         None)  # fmt: skip
        cosine, top10 = _agreement(same_edge, r)
        out.append({
            "backend": r["backend"], "precision": r["precision"], "edge": r["edge"],
            "s_per_page": round(r["s_per_page"], 3), "vectors_per_page": int(np.median([len(p) for p in r["pages"]])),
            "cosine_mean": None if cosine is None else round(cosine, 5),
            "top10_agreement": None if top10 is None else round(top10, 4),
            "peak_rss_mb": round(r["peak_rss_mb"]), "x_baseline": round(baseline["s_per_page"] / r["s_per_page"], 2),
            "export_s": None if r["export_s"] is None else round(r["export_s"], 1), "ran_as": r["plan"],
        })  # fmt: skip
        if args.json:
            print(json.dumps(out[-1]))
    lines = ["| backend | precision | edge | CPU s/page | × fewer than baseline | vectors/page | cosine | top-10 "
             "agreement | peak RSS MB | first load with export, s |", "|---" * 10 + "|"]  # fmt: skip
    for o in out:
        dash = "—"
        lines.append(f"| {o['backend']} | {o['precision']} | {o['edge']} | {o['s_per_page']} | {o['x_baseline']} | "
                     f"{o['vectors_per_page']} | {o['cosine_mean'] or dash} | {o['top10_agreement'] or dash} | "
                     f"{o['peak_rss_mb']} | {o['export_s'] or dash} |")  # fmt: skip
    what = f"`{args.model}` ({args.type})" if args.model else "ColModernVBERT's full-size layout, random weights"
    body = (f"{what}; {args.pages} synthetic pages (7 kinds), {args.queries} queries, batch 1, each path in its own "
            f"process; baseline torch fp32 at edge {baseline['edge']} (same run); cosine and top-10 agreement "
            f"against torch fp32 at the same edge, over the {args.pages} stored pages.\n\n"
            f"`python benchmarks/visual_cpu.py --pages {args.pages} --edges {' '.join(map(str, args.edges))} "
            f"--paths {' '.join(args.paths)}{f' --baseline {args.baseline}' if args.baseline else ''}`\n\n"
            + "\n".join(lines))  # fmt: skip
    title = "Visual leg on a CPU: inference paths (benchmarks/visual_cpu.py)"
    with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):  # --json: stdout holds the rows
        append_results(title, body, save=not args.no_save)


if __name__ == "__main__":
    main()
