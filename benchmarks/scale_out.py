"""Local engine vs Ray engine, the rate of each stage, and what N nodes × G GPUs would do (on paper).

1. **Engines.** `docrag index CORPUS --engine local|ray` as a user types it: a fresh process and a fresh
   database each run, the model load and (for Ray) starting a local Ray included — Ray's overhead is in the
   figure, not hidden. pages/s = pages / wall seconds of the command. Runs alternate (local, ray, local, …)
   so that a busy machine slows both alike.
2. **Stages**, each alone in this process over the same corpus: parse+route (the plan step without OCR),
   OCR (the plan step with it, minus the first, per OCR'd page), embed (``pipeline.rows.embed_plans`` over
   the plans, in batches of ``page_batch``) and write (``Store.write`` into a fresh store,
   then the ready flips). Rates are pages/s on one core (parse, OCR: one plan worker) or for the process.
3. **Extrapolation** from the stage rates: a cluster of N nodes with C cores and G GPUs each parses at
   N·C·parse rate, embeds at N·G·(GPU pages/s) — published rates, not measured here — and writes at the one
   driver's write rate; the slowest of the three is the bottleneck.

    python benchmarks/scale_out.py --corpus ../shared/data/devset/corpus [--profile lite] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import append_results

EXE = str(Path(sys.executable).parent / "docrag")
# Published single-GPU page-embedding rates (H100; field notes and the models' pages): ColQwen2.5 ≈ 43
# pages/s at 756 px; 250M-class models (colSmol, ColModernVBERT) 50–77.
GPU_VISUAL_PAGES_S = {"ColQwen2.5 (gpu profile)": 43.0, "250M-class (cpu profile)": 60.0}
CORES_PER_NODE = 32
GPUS_PER_NODE = (1, 8)
NODES = (1, 4, 16)


def engine_run(corpus: Path, engine: str, profile: str) -> tuple[float, dict]:
    db = Path(tempfile.mkdtemp(prefix="docrag-scale-")) / "db"
    try:
        t0 = time.perf_counter()
        res = subprocess.run(
            [EXE, "index", str(corpus), "--db", str(db), "--profile", profile, "--engine", engine, "--json"],
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise SystemExit(f"{engine} run failed: {res.stderr[-2000:]}")
        return wall, json.loads(res.stdout)
    finally:
        shutil.rmtree(db.parent, ignore_errors=True)


def stages(corpus: Path, profile: str) -> dict[str, dict[str, float]]:
    from docrag.config import load_settings
    from docrag.indexes.embedders import create_embedder
    from docrag.indexes.schema import empty_counts
    from docrag.indexes.store import Store
    from docrag.parsers import discover
    from docrag.pipeline.plan import PlanOptions
    from docrag.pipeline.rows import embed_plans
    from docrag.pipeline.workers import Job, PlanPool

    settings = load_settings(profile)
    files = [f.path for f in discover([corpus]) if f.supported and not f.problem]
    out: dict[str, dict[str, float]] = {}
    plans: list[tuple[str, object]] = []
    ocr_pages = 0
    for ocr in (False, True):
        ingest = settings.ingest.model_copy(update={"ocr": ocr})
        opts = PlanOptions.build(
            settings.router, ingest, settings.limits, visual=settings.visual is not None, figures=False
        )
        with PlanPool(1, settings.ingest) as pool:
            t0 = time.perf_counter()
            got = []
            for job, kind, data in pool.run([Job(i, str(p), opts) for i, p in enumerate(files)]):
                if kind == "pages":
                    got += [(str(job.id), p) for p in data]
                    pool.more(job)
            seconds = time.perf_counter() - t0
        out["plan+ocr" if ocr else "parse+route"] = {"pages": len(got), "seconds": seconds}
        if ocr:
            plans = got
            ocr_pages = sum(1 for _, p in got if p.route.ocr)
    extra = out["plan+ocr"]["seconds"] - out["parse+route"]["seconds"]
    out["ocr"] = {"pages": ocr_pages, "seconds": max(extra, 1e-9)}
    text = create_embedder(settings.text)
    embed_plans(plans[:2], text, None, None, settings.ingest)  # warm-up (first-call costs)
    t0 = time.perf_counter()
    batches = []
    step = max(1, settings.ingest.page_batch)
    for a in range(0, len(plans), step):
        batches.append(embed_plans(plans[a : a + step], text, None, None, settings.ingest))
    out["embed (text legs, CPU)"] = {"pages": len(plans), "seconds": time.perf_counter() - t0}
    db = Path(tempfile.mkdtemp(prefix="docrag-scale-w-")) / "db"
    try:
        store = Store(db, text_spec=settings.text, profile=profile, writable=True)
        store.make_writable(text_dim=text.dim)
        t0 = time.perf_counter()
        docs = sorted({d for d, _ in plans})
        for d in docs:
            store.documents.add(d, f"/{d}.pdf", 1, 0.0, 1, {})
        for rows in batches:
            store.write(rows.tables, rows.visual)
        for d in docs:
            store.documents.mark_ready(d, empty_counts())
        out["write (text rows)"] = {"pages": len(plans), "seconds": time.perf_counter() - t0}
        # The same pages as visual pages: a ColQwen-sized multivector each (random, 750 × 128 float16), with
        # the first stage's pooling that the store does at write time.
        import numpy as np

        from docrag.indexes.visual import PageVectors

        rng = np.random.default_rng(0)
        store.make_writable(visual_dim=128)
        t0 = time.perf_counter()
        for a in range(0, len(plans), step):
            part = plans[a : a + step]
            vecs = [rng.standard_normal((750, 128)).astype(np.float16) for _ in part]
            pages = PageVectors([d for d, _ in part], [p.number for _, p in part], vecs, [None] * len(part))
            store.write({}, pages)
        out["write (visual rows)"] = {"pages": len(plans), "seconds": time.perf_counter() - t0}
    finally:
        shutil.rmtree(db.parent, ignore_errors=True)
    for v in out.values():
        v["pages_s"] = v["pages"] / v["seconds"] if v["seconds"] > 0 else float("inf")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--profile", default="lite")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    if not args.corpus.is_dir():
        raise SystemExit(f"no such folder: {args.corpus}")

    runs: dict[str, list[tuple[float, dict]]] = {"local": [], "ray": []}
    for _ in range(args.repeat):
        for engine in runs:
            runs[engine].append(engine_run(args.corpus, engine, args.profile))
    best = {e: min(r, key=lambda x: x[0]) for e, r in runs.items()}
    rate = {e: b[1]["pages"] / b[0] for e, b in best.items()}
    st = stages(args.corpus, args.profile)

    lines = [
        f"`--corpus {args.corpus} --profile {args.profile} --repeat {args.repeat}`",
        "",
        "Engines: `docrag index` in a fresh process and database per run (model load, and starting a local Ray,",
        "included); best of the runs.",
        "",
        "| engine | pages | wall s (runs) | pages/s | vs local |",
        "|---|---|---|---|---|",
    ]
    for e, r in runs.items():
        walls = ", ".join(f"{w:.1f}" for w, _ in r)
        lines.append(f"| {e} | {best[e][1]['pages']} | {walls} | {rate[e]:.2f} | {rate[e] / rate['local']:.2f}× |")
    lines += [
        "",
        "Stages, each alone in one process (parse and OCR: one plan worker, so per core):",
        "",
        "| stage | pages | seconds | pages/s |",
        "|---|---|---|---|",
    ]
    for name, v in st.items():
        lines.append(f"| {name} | {v['pages']} | {v['seconds']:.2f} | {v['pages_s']:.1f} |")

    parse = st["parse+route"]["pages_s"]
    ocr_share = st["ocr"]["pages"] / max(1, st["plan+ocr"]["pages"])
    plan_per_core = st["plan+ocr"]["pages_s"]
    write = st["write (visual rows)"]["pages_s"]
    lines += [
        "",
        f"Extrapolation, on paper, from the rates above: a node has {CORES_PER_NODE} cores; planning (with OCR on "
        f"{ocr_share:.0%} of the pages, as in this corpus) runs at {plan_per_core:.1f} pages/s per core "
        f"(parse+route alone {parse:.1f}); visual pages embed at a published single-GPU rate; text pages embed "
        "on the GPU too, far faster than visual ones (left out); the one driver writes visual pages (750 "
        f"vectors each, pooled for the first stage as it writes) at {write:.0f} pages/s. Pages/s of the "
        "slowest stage, which is the bottleneck:",
        "",
    ]
    for model, gpu_rate in GPU_VISUAL_PAGES_S.items():
        lines += [
            f"*{model}: {gpu_rate:g} visual pages/s per GPU, every page visual (the worst case)*",
            "",
            "| nodes | GPUs per node | plan | embed | write | pages/s | bottleneck |",
            "|---|---|---|---|---|---|---|",
        ]
        for n in NODES:
            for g in GPUS_PER_NODE:
                plan_cap = n * CORES_PER_NODE * plan_per_core
                embed_cap = n * g * gpu_rate
                caps = {"plan (CPU)": plan_cap, "embed (GPU)": embed_cap, "write (driver)": write}
                neck = min(caps, key=caps.get)
                row = (n, g, f"{plan_cap:.0f}", f"{embed_cap:.0f}", f"{write:.0f}", f"{caps[neck]:.0f}", neck)
                lines.append("| " + " | ".join(map(str, row)) + " |")
        lines.append("")
    body = "\n".join(lines)
    if args.json:
        print(
            json.dumps(
                {
                    "engines": {
                        e: {"pages": best[e][1]["pages"], "wall_s": best[e][0], "pages_s": rate[e]} for e in runs
                    },
                    "stages": st,
                }
            )
        )
    append_results("Scale-out: local vs Ray engine, stage rates, extrapolation", body, save=not args.no_save)


if __name__ == "__main__":
    main()
