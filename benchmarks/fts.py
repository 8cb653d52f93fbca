"""Keeping the BM25 index current as a database grows run by run: rebuild every run vs docrag's policy.

    python benchmarks/fts.py [--pages 20000] [--run-pages 500] [--batch 8] [--no-save]

A ``pages`` table of synthetic page text (about 350 words a page, Zipf-like vocabulary) grows by
``--run-pages`` pages per indexing run, written ``--batch`` pages at a time as ingestion writes them. After
each run the BM25 index is brought up to date, under two policies on two copies:

- rebuild: ``create_index(replace=True)`` every run (what docrag did before);
- docrag: ``Store.maintain`` — create once; leave a run's rows to LanceDB's flat scan of unindexed
  rows; ``optimize`` (fold in, compact) once unindexed rows or small fragments pass a threshold.

Reported: total and worst per-run upkeep, BM25 query time at the end (median of 20 queries; one of them
checks the last run's pages are found) and the fragment count left.

Then the same for a vector table: ``--pages`` chunks (384-d) written 24 at a time, searched by the text leg
(top 50, median of 10) before and after ``optimize``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results


def _texts(rng: np.random.Generator, n: int, vocab: np.ndarray, p: np.ndarray) -> list[str]:
    return [" ".join(rng.choice(vocab, size=350, p=p)) for _ in range(n)]


# Columns of a plain text page besides doc_id, page and text (what the router would have said of it).
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=20000)
    ap.add_argument("--run-pages", type=int, default=500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    from lancedb.index import FTS

    from docrag.indexes.schema import CHUNKS, PAGES
    from docrag.testing.rows import new_store, write_chunks, write_pages

    vocab = np.array([f"w{i}" for i in range(30000)])
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    n_runs = args.pages // args.run_pages
    runs = [_texts(np.random.default_rng(r), args.run_pages, vocab, p) for r in range(n_runs)]
    runs[-1][0] += " zanzibarite"
    rows = [
        "| policy | upkeep, total s | upkeep, worst run s | BM25 query at the end, ms | fragments at the end |",
        "|---|---|---|---|---|",
    ]
    tmp = Path(tempfile.mkdtemp())
    try:
        for policy in ("rebuild every run", "docrag (flat scan, optimize past thresholds)"):
            store = new_store(tmp / policy.split()[0], text_dim=4)
            upkeep = []
            for r, texts in enumerate(runs):
                for start in range(0, len(texts), args.batch):
                    batch = texts[start : start + args.batch]
                    write_pages(store, f"doc{r}", batch, page=list(range(start + 1, start + 1 + len(batch))))
                t = time.perf_counter()
                if policy.startswith("rebuild"):
                    store.db.table(PAGES).create_index("text", config=FTS(), replace=True)
                else:
                    store.maintain()
                upkeep.append(time.perf_counter() - t)
            hits = store.pages.search_bm25("zanzibarite")
            assert hits and hits[0].doc_id == f"doc{n_runs - 1}", policy
            lat = []
            for q in range(20):
                t = time.perf_counter()
                store.pages.search_bm25(f"w{q * 7} w{q * 13 + 100} w{q + 2000}", k=10)
                lat.append(time.perf_counter() - t)
            frags = store.db.table(PAGES).stats()["fragment_stats"]["num_fragments"]
            rows.append(
                f"| {policy} | {sum(upkeep):.1f} | {max(upkeep):.2f} | {1000 * float(np.median(lat)):.1f} | {frags} |"
            )
            print(rows[-1], flush=True)
        store = new_store(tmp / "chunks", text_dim=384)
        rng = np.random.default_rng(1)
        for start in range(0, args.pages, 24):
            v = rng.standard_normal((24, 384)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            write_chunks(store, f"d{start // 240}", list(range(1, 25)), [0] * 24, ["chunk text"] * 24, v)
        chunk_rows = ["| chunks table | fragments | text-leg search, ms |", "|---|---|---|"]
        for state in ("as written", "after optimize"):
            if state == "after optimize":
                t = time.perf_counter()
                store.db.table(CHUNKS).optimize()
                state += f" ({time.perf_counter() - t:.1f} s)"
            q = rng.standard_normal(384).astype(np.float32)
            lat = []
            for _ in range(10):
                t = time.perf_counter()
                store.chunks.search(q, k=50)
                lat.append(time.perf_counter() - t)
            frags = store.db.table(CHUNKS).stats()["fragment_stats"]["num_fragments"]
            chunk_rows.append(f"| {state} | {frags} | {1000 * float(np.median(lat)):.1f} |")
            print(chunk_rows[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    body = "\n".join(
        [
            f"{args.pages:,} pages of synthetic text (350 words each) indexed in {n_runs} runs of {args.run_pages} "
            f"pages, written {args.batch} pages at a time; BM25 index brought up to date after every run.",
            "",
            *rows,
            "",
            f"{args.pages:,} text chunk vectors written 24 at a time:",
            "",
            *chunk_rows,
        ]
    )
    append_results("BM25 index upkeep as a database grows (benchmarks/fts.py)", body, save=not args.no_save)


if __name__ == "__main__":
    main()
