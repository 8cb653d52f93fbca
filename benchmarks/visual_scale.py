"""The visual leg at scale: exact MaxSim against two-stage search with each first stage.

    python benchmarks/visual_scale.py --pages 100000 --base /tmp/vs_base --db /tmp/vs_db [--json] [--no-save]
        [--methods exact,centroids,pooled,lancedb,codes] [--queries 100] [--exact-queries 3] [--candidates 64]
        [--nprobe 32] [--estimate-depth 16] [--codes-depth 4] [--refine-final 32]
    python benchmarks/visual_scale.py --compression --pages 2000 --base /tmp/vs_base --db /tmp/vs_comp

The collection is ``visual_corpus.py``'s: trained MiniLM token vectors of real page text, projected to 128
dimensions, 700–1000 vectors a page (what that is a proxy for: see there). It is written through docrag's
``Store`` (built once, reused when ``--db`` already holds ``--pages`` pages) and searched through docrag's
visual leg (``pipeline.legs.VisualLeg``) with the query vectors fed in as the embedder's output.

Reported per method (``--json``: one object per method):
- recall_at_10: overlap of its top 10 with exact MaxSim's (exact: 1 by definition);
- p50_ms / p95_ms: one query at a time, after a cold open and a first query; exact is timed on
  ``--exact-queries`` queries (it reads every vector);
- open_s: a new process opening the database and answering its first query;
- rss_mb: that process's peak resident memory;
- first_stage_bytes_per_page / bytes_per_page: on disk, the first stage's tables alone, and everything the
  method reads (first stage + the visual table it reranks from);
- build_s: writing the visual rows (exact), plus pooling (every first stage) and training/indexing.

``codes``: search on the compact codes (``indexes/visual_codes.py``, ``indexes/codes_search.py``): each query
token probes its ``--nprobe`` nearest centroids' inverted lists of pooled vectors (token-level candidate
generation), the best ``--estimate-depth`` × candidates pages are scored on all their pooled vectors (int8), the
best ``--codes-depth`` × candidates of those from their 4-bit codes, the best ``--refine-final`` of those again
at 12 bits a dimension (0: none). LanceDB is never read. Its first stage bytes are the pack's pooled vectors
(twice: by page and in the inverted lists) and codebook, its bytes everything in the pack; the rerank codes
alone (ids + 4-bit residuals) are printed in the note. The other two-stage methods rerank from the stored
vectors, as before.

``--compression``: for float16 / int8 / binary storage and token pooling factors 1, 2, 3 (hierarchical,
Ward), the visual table's bytes per page and recall@10 of exact search on the stored vectors against exact
search on the float32 originals.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results
from visual_corpus import Base

METHODS = ("exact", "centroids", "pooled", "lancedb", "codes", "fast-plaid")
BATCH = 1000


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


_BASE: Base | None = None


def _init(base_dir: str) -> None:
    global _BASE
    _BASE = Base(Path(base_dir))


def _make(args: tuple[int, int, int]) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    from docrag.indexes.visual_index import kmeans_pool

    a, b, m = args
    assert _BASE is not None
    pages = [_BASE.page(i) for i in range(a, b)]
    t0 = time.perf_counter()
    pooled = [kmeans_pool(p, m) for p in pages]
    return pages, pooled, time.perf_counter() - t0


def _keys(i: int) -> tuple[str, int]:
    return f"doc{i // 20:06d}", i % 20 + 1  # 20 pages a document


def build(db: Path, base_dir: Path, n: int) -> dict[str, float]:
    """The collection in ``db`` (reused when it already holds ``n`` pages); times of each phase."""
    from docrag.indexes.schema import POOLED, VISUAL
    from docrag.indexes.store import Store

    timings_file = db / "build.json"
    if timings_file.exists():
        info = json.loads(timings_file.read_text())
        if info.get("pages") == n:
            return info
    store = Store(db, writable=True)
    if store.visual.count():
        raise SystemExit(f"{db} holds another collection; give a new --db")
    store.make_writable(visual_dim=128)
    t_visual = t_pool_cpu = 0.0
    t0 = time.perf_counter()
    jobs = [(a, min(a + BATCH, n), store.visual_index.first_stage_vectors) for a in range(0, n, BATCH)]
    with ProcessPoolExecutor(os.cpu_count(), initializer=_init, initargs=(str(base_dir),)) as pool:
        for (a, b, _), (pages, pooled, pool_s) in zip(jobs, pool.map(_make, jobs), strict=True):
            keys = [_keys(i) for i in range(a, b)]
            ids, nums = [k[0] for k in keys], [k[1] for k in keys]
            # What the store writes for visual pages (float16 storage, no token pooling), with the pooling done
            # by the worker processes so that both cores are used.
            t = time.perf_counter()
            rows = {"doc_id": ids, "page": nums, "n_vectors": [len(p) for p in pages], "multivector": pages}
            store.db.add(VISUAL, VISUAL.to_arrow(rows, store.dims))
            t_visual += time.perf_counter() - t
            rows = {"doc_id": ids, "page": nums, "pooled": pooled}
            store.db.add(POOLED, POOLED.to_arrow(rows, store.dims))
            t_pool_cpu += pool_s
            print(f"  {b}/{n} pages written ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    info = {
        "pages": n,
        "write_s": round(t_visual, 1),
        "pool_cpu_s": round(t_pool_cpu, 1),
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    timings_file.write_text(json.dumps(info))
    return info


def _drop_old_versions(store) -> None:
    """A codebook (re)training rewrites the pooled table; LanceDB keeps the old version for a week. The
    benchmark's database has no readers to protect: drop it, so that bytes per page count what is used."""
    import datetime as dt

    from docrag.indexes.schema import CODEBOOK, POOLED

    for schema in (POOLED, CODEBOOK):
        with store.db.changing(schema) as tbl:
            tbl.optimize(cleanup_older_than=dt.timedelta(0), delete_unverified=True)


def prepare(db: Path, method: str) -> float:
    """Train/index what the first stage needs (once; the time is recorded)."""
    from docrag.indexes.store import Store

    marker = db / f"prepared_{method}.json"
    if marker.exists():
        return json.loads(marker.read_text())["s"]
    if method == "codes":  # the codes derive from the centroid first stage: built (and timed) first
        s = prepare(db, "centroids")
        store = Store(db, writable=True)
        t = time.perf_counter()
        store.visual.update_codes()
        s = round(s + time.perf_counter() - t, 1)
        marker.write_text(json.dumps({"s": s}))
        return s
    store = Store(db, writable=True)
    t = time.perf_counter()
    store.visual.build_first_stage(method)
    s = round(time.perf_counter() - t, 1)
    _drop_old_versions(store)
    marker.write_text(json.dumps({"s": s}))
    return s


class _Vectors:
    """A stand-in visual embedder: the query texts are indexes into precomputed token vectors."""

    def __init__(self, queries: list[np.ndarray]) -> None:
        self.queries = queries

    def embed_queries(self, texts: list[str]) -> list[np.ndarray]:
        return [self.queries[int(t)] for t in texts]


def _leg(db: Path, queries: list[np.ndarray], method: str, candidates: int):
    from docrag.indexes.store import Store
    from docrag.indexes.visual_index import VisualIndexSpec
    from docrag.pipeline.legs import LegParts, QueryInput, VisualLeg
    from docrag.pipeline.options import SearchConfig

    stage = "centroids" if method in ("exact", "codes") else method
    store = Store(db, writable=False, visual_index=VisualIndexSpec(first_stage=stage))
    cfg = SearchConfig(
        visual_search="exact" if method == "exact" else "two-stage",
        visual_candidates=candidates,
        visual_rerank="auto" if method == "codes" else "exact",
    )
    emb = _Vectors(queries)
    leg = VisualLeg(LegParts(store, cfg, None, visual=lambda: emb))  # type: ignore[arg-type]

    def search(i: int) -> list[tuple[str, int]]:
        return [(c.doc_id, c.page) for c in leg.search(QueryInput(str(i)), 10, None).candidates]

    return store, search


def _fast_plaid(db: Path, queries: list[np.ndarray]):
    """fast-plaid (lightonai, PLAID in Rust) over the same pages, for comparison: its own index folder."""
    import torch
    from fast_plaid import search as fp_search

    torch.set_num_threads(os.cpu_count() or 1)
    index = fp_search.FastPlaid(index=str(db / "fast_plaid"), device="cpu")

    def search(i: int) -> list[tuple[str, int]]:
        q = torch.from_numpy(np.asarray(queries[i], np.float32))[None]
        (hits,) = index.search(queries_embeddings=q, top_k=10, show_progress=False)
        return [_keys(int(d)) for d, _ in hits]

    return index, search


def build_fast_plaid(db: Path, base_dir: Path, n: int) -> float:
    """fast-plaid's index of the same ``n`` pages (create on the first batch, update with the rest)."""
    import torch
    from fast_plaid import search as fp_search

    marker = db / "prepared_fast-plaid.json"
    if marker.exists():
        return json.loads(marker.read_text())["s"]
    torch.set_num_threads(os.cpu_count() or 1)
    base = Base(base_dir)
    index = fp_search.FastPlaid(index=str(db / "fast_plaid"), device="cpu")
    t0 = time.perf_counter()
    step = 10_000
    for a in range(0, n, step):
        docs = [torch.from_numpy(base.page(i).astype(np.float32)) for i in range(a, min(a + step, n))]
        if a == 0:
            index.create(documents_embeddings=docs)
        else:
            index.update(documents_embeddings=docs)
        print(f"  fast-plaid: {min(a + step, n)}/{n} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    s = round(time.perf_counter() - t0, 1)
    marker.write_text(json.dumps({"s": s}))
    return s


def child(
    db: Path, base_dir: Path, method: str, n_queries: int, candidates: int, depths: tuple[int, int, int, int]
) -> None:
    """One method in a fresh process: cold open + first query, then timed queries; JSON on stdout."""
    queries = Base(base_dir).queries[:n_queries]
    t0 = time.perf_counter()
    if method == "fast-plaid":
        _, search = _fast_plaid(db, queries)
    else:
        if method == "codes":
            from docrag.indexes import codes_search

            codes_search.NPROBE, codes_search.ESTIMATE_DEPTH, codes_search.CODES_DEPTH = depths[:3]
            codes_search.REFINE_FINAL = depths[3]
        store, search = _leg(db, queries, method, candidates)
    results = [search(0)]
    open_s = time.perf_counter() - t0
    if method == "codes" and (store.visual.codes() is None or store.db.connected):
        raise SystemExit("codes: the codes are not current, or the search read LanceDB (a stale pack?)")
    times = []
    for i in range(1, len(queries)):
        t = time.perf_counter()
        results.append(search(i))
        times.append((time.perf_counter() - t) * 1000)
    # Peak RSS of this process: VmHWM (ru_maxrss would carry the parent's peak across fork + exec).
    status = Path("/proc/self/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")) / 1024
    print(json.dumps({"open_s": open_s, "times_ms": times, "rss_mb": rss, "results": results}))


def truth(db: Path, base_dir: Path, n_queries: int) -> list[list[tuple[str, int]]]:
    """Exact MaxSim top 10 of every query (one streamed pass over the collection; cached in ``db``)."""
    from docrag.indexes.store import Store

    path = db / f"truth_{n_queries}.json"
    if path.exists():
        return [[tuple(k) for k in row] for row in json.loads(path.read_text())]
    store = Store(db, writable=False)
    queries = Base(base_dir).queries[:n_queries]
    t = time.perf_counter()
    rows = [[(c.doc_id, c.page) for c in r] for r in store.visual.search(queries, 10, method="exact")]
    print(f"  exact top 10 of {len(queries)} queries in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    path.write_text(json.dumps(rows))
    return rows


def run_child(
    db: Path, base: Path, method: str, n_queries: int, candidates: int, python: str, depths: tuple[int, int, int, int]
) -> dict:
    cmd = [
        python,
        __file__,
        "--child",
        method,
        "--db",
        str(db),
        "--base",
        str(base),
        "--queries",
        str(n_queries),
        "--candidates",
        str(candidates),
        "--nprobe",
        str(depths[0]),
        "--estimate-depth",
        str(depths[1]),
        "--codes-depth",
        str(depths[2]),
        "--refine-final",
        str(depths[3]),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{method} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale(args: argparse.Namespace) -> list[dict]:
    db, base, n = args.db, args.base, args.pages
    info = build(db, base, n)
    print(f"collection: {info}", file=sys.stderr)
    from docrag.indexes.schema import CODEBOOK, POOLED, VISUAL
    from docrag.indexes.store import Store

    gold = truth(db, base, args.queries)
    store = Store(db)
    disk_visual = store.db.disk_bytes(VISUAL)
    first_stage = {
        "exact": 0,
        "centroids": store.db.disk_bytes(POOLED) + store.db.disk_bytes(CODEBOOK),
        "pooled": store.db.disk_bytes(POOLED),
        "lancedb": store.db.disk_bytes(POOLED),
    }
    rows = []
    for method in args.methods:
        python = sys.executable
        if method == "fast-plaid":
            if not args.fast_plaid_python:
                raise SystemExit("fast-plaid needs --fast-plaid-python (a venv with fast-plaid and its torch)")
            python = args.fast_plaid_python
            cmd = [
                python,
                __file__,
                "--child",
                "build-fast-plaid",
                "--db",
                str(db),
                "--base",
                str(base),
                "--pages",
                str(n),
            ]
            if subprocess.run(cmd, check=False).returncode:
                raise SystemExit("fast-plaid build failed")
            extra = json.loads((db / "prepared_fast-plaid.json").read_text())["s"]
            first_stage[method] = _dir_bytes(db / "fast_plaid")
        elif method != "exact":
            extra = prepare(db, method)
        else:
            extra = 0.0
        if method not in ("exact", "fast-plaid"):
            book = store.db.disk_bytes(CODEBOOK) if method == "centroids" else 0
            first_stage[method] = store.db.disk_bytes(POOLED) + book
        nq = args.exact_queries + 1 if method == "exact" else args.queries
        if method == "codes":
            first_stage[method], codes_bytes, rerank_bytes = _pack_bytes(db)
        res = run_child(
            db,
            base,
            method,
            nq,
            args.candidates,
            python,
            (args.nprobe, args.estimate_depth, args.codes_depth, args.refine_final),
        )
        recall = [len(set(map(tuple, r)) & set(g)) / max(len(g), 1) for r, g in zip(res["results"], gold, strict=False)]
        questions = recall[: args.questions]  # the dev set's questions come first; page sentences after
        pooled_s = info["write_s"] + info["pool_cpu_s"] + extra
        build_s = {"exact": info["write_s"], "fast-plaid": extra}.get(method, pooled_s)
        label = {
            "exact": "exact",
            "fast-plaid": "fast-plaid (its own index)",
            "codes": f"tokens+codes (nprobe {args.nprobe}, {args.estimate_depth}x, {args.codes_depth}x"
            + (f", {args.refine_final} at 12 bits)" if args.refine_final else ")"),
        }.get(method, f"two-stage/{method}")
        rows.append(
            {
                "method": label,
                "pages": n,
                "recall_at_10": round(float(np.mean(recall)), 4),
                "recall_questions": round(float(np.mean(questions)), 4) if questions else None,
                "p50_ms": round(statistics.median(res["times_ms"]), 1),
                "p95_ms": round(float(np.percentile(res["times_ms"], 95)), 1),
                "open_s": round(res["open_s"], 2),
                "rss_mb": round(res["rss_mb"]),
                "first_stage_bytes_per_page": round(first_stage[method] / n),
                "bytes_per_page": round(
                    (codes_bytes if method == "codes" else first_stage[method] + disk_visual * (method != "fast-plaid"))
                    / n
                ),
                "build_s": round(build_s, 1),
            }
        )
        if method == "codes":
            args.notes.append(f"Rerank codes (ids + 4-bit residuals): {round(rerank_bytes / n)} bytes per page.")
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def _pack_bytes(db: Path) -> tuple[int, int, int]:
    """The current codes pack's bytes: its first stage (pooled vectors by page and in lists, codebook), all of it (the
    generation and the segments it reads), and the rerank codes alone (ids + 4-bit residuals)."""
    from docrag.indexes.visual_codes import codes_root

    root = codes_root(str(db))
    folder = root / (root / "CURRENT").read_text().strip()
    segments = [root / s for s in json.loads((folder / "pack.json").read_text())["segments"]]
    size: dict[str, int] = {}
    for path in [p for d in (folder, *segments) for p in d.iterdir()]:
        size[path.name] = size.get(path.name, 0) + path.stat().st_size
    first = sum(v for k, v in size.items() if k.startswith(("pooled", "lists.", "codebook")))
    return first, sum(size.values()), size.get("codes.bin", 0)


def compression(args: argparse.Namespace) -> list[dict]:
    from docrag.indexes.maxsim import maxsim_numpy
    from docrag.indexes.schema import VISUAL
    from docrag.indexes.store import Store
    from docrag.indexes.visual_index import VisualIndexSpec
    from docrag.testing.rows import write_visual

    base = Base(args.base)
    pages = [base.page(i).astype(np.float32) for i in range(args.pages)]
    queries = base.queries[: args.queries]
    exact = maxsim_numpy(queries, pages)
    gold = [set(np.argsort(-row, kind="stable")[:10].tolist()) for row in exact]
    keys = [_keys(i) for i in range(args.pages)]
    where = {k: i for i, k in enumerate(keys)}
    rows = []
    for factor in (1, 2, 3):
        for storage in ("float16", "int8", "binary"):
            db = args.db / f"{storage}_pool{factor}"
            store = Store(db, visual_index=VisualIndexSpec(storage=storage, pool_factor=factor), writable=True)
            t = time.perf_counter()
            if not store.visual.count():
                for a in range(0, len(pages), 250):
                    chunk = keys[a : a + 250]
                    write_visual(store, [k[0] for k in chunk], [k[1] for k in chunk], pages[a : a + 250])
            build_s = time.perf_counter() - t
            got = store.visual.search(queries, 10, method="exact")
            recall = [len({where[(c.doc_id, c.page)] for c in r} & g) / 10 for r, g in zip(got, gold, strict=True)]
            rows.append(
                {
                    "storage": storage,
                    "pool_factor": factor,
                    "pages": args.pages,
                    "bytes_per_page": round(store.db.table(VISUAL).stats()["total_bytes"] / args.pages),
                    "recall_at_10": round(float(np.mean(recall)), 4),
                    "build_s": round(build_s, 1),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def _table(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--base", type=Path, required=True, help="visual_corpus.py's output folder")
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--methods", type=lambda s: [m for m in s.split(",") if m], default=list(METHODS))
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--exact-queries", type=int, default=3)
    ap.add_argument("--candidates", type=int, default=96)
    from docrag.indexes import codes_search as cs

    ap.add_argument("--nprobe", type=int, default=cs.NPROBE, help="codes: centroids a query token probes")
    ap.add_argument(
        "--estimate-depth", type=int, default=cs.ESTIMATE_DEPTH, help="codes: pages the estimate keeps, per candidate"
    )
    ap.add_argument(
        "--codes-depth", type=int, default=cs.CODES_DEPTH, help="codes: pages scored from the codes, per candidate"
    )
    ap.add_argument(
        "--refine-final", type=int, default=cs.REFINE_FINAL, help="codes: best pages scored again at 12 bits (0: none)"
    )
    ap.add_argument("--questions", type=int, default=34, help="how many leading queries are questions (dev set)")
    ap.add_argument("--compression", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--fast-plaid-python", default=None, help="the Python of a venv with fast-plaid installed")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        ap.error(f"unknown method(s) {', '.join(unknown)}: choose from {', '.join(METHODS)}")
    if not (args.base / "tokens.npy").exists():
        ap.error(f"{args.base} has no tokens.npy: build it with benchmarks/visual_corpus.py --out {args.base} ...")
    if args.child == "build-fast-plaid":
        build_fast_plaid(args.db, args.base, args.pages)
        return
    if args.child:
        child(
            args.db,
            args.base,
            args.child,
            args.queries,
            args.candidates,
            (args.nprobe, args.estimate_depth, args.codes_depth, args.refine_final),
        )
        return
    args.notes = []
    rows = compression(args) if args.compression else scale(args)
    if args.json:
        for r in rows:
            print(json.dumps(r))
    title = "Visual storage compression" if args.compression else f"Visual leg at scale: {args.pages} pages"
    note = (
        "Collection: benchmarks/visual_corpus.py (MiniLM token vectors of real page text, 128-d, 700–1000 a "
        f"page). Queries: {args.queries}. Candidates reranked exactly: {args.candidates}."
        + "".join(" " + n for n in args.notes)
    )
    append_results(title, f"`{' '.join(sys.argv[1:])}`\n\n{note}\n\n{_table(rows)}", save=not args.no_save)


if __name__ == "__main__":
    main()
