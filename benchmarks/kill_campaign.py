"""Kill campaign: SIGKILL `docrag index` at random moments, then check the database and that a rerun converges.

For each trial: a fresh database, `docrag index CORPUS` killed (process group, SIGKILL) after a random delay
within the time a clean build takes; then (1) the database opens (`docrag stats`), (2) no partial document
is visible (every ready document has exactly the rows it recorded, `docrag check`; search returns only ready
documents), (3) a rerun completes and gives the same rows and the same rankings as a clean build.

    python benchmarks/kill_campaign.py --corpus examples --kills 20 [--profile lite] [--workers 2] [--no-save]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import append_results

from docrag.indexes.store import Store

EXE = str(Path(sys.executable).parent / "docrag")

KEY_COLUMNS = {
    "documents": ["doc_id", "path", "paths", "status", "n_pages", "counts"],
    "pages": ["doc_id", "page", "route", "label", "text"],
    "chunks": ["doc_id", "page", "chunk", "text"],
    "images": ["doc_id", "page", "image"],
    "visual": ["doc_id", "page", "n_vectors"],
}


def table_rows(db: Path) -> dict[str, list[tuple]]:
    """Every table's rows as sorted tuples of their key columns (what a clean build must reproduce)."""
    import lancedb

    conn = lancedb.connect(str(db))
    listed = conn.list_tables()
    names = set(getattr(listed, "tables", listed))
    out = {}
    for name, cols in KEY_COLUMNS.items():
        if name in names:
            rows = conn.open_table(name).to_arrow().select(cols).to_pylist()
            out[name] = sorted(tuple(r[c] for c in cols) for r in rows)
    return out


def rankings(db: Path, queries: list[str], env: dict[str, str]) -> list[list[tuple[str, int]]]:
    qfile = db.parent / f"{db.name}-queries.jsonl"
    qfile.write_text("".join(json.dumps({"id": i, "text": q}) + "\n" for i, q in enumerate(queries)))
    res = subprocess.run(
        [EXE, "search", "--queries", str(qfile), "--db", str(db), "-k", "5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    return [[(Path(h["file"]).name, h["page"]) for h in json.loads(line)["hits"]] for line in res.stdout.splitlines()]


def queries_from(db: Path, n: int = 8) -> list[str]:
    """A few queries taken from the indexed text itself (a run of words from pages spread over the corpus)."""
    import lancedb

    pages = lancedb.connect(str(db)).open_table("pages").to_arrow().select(["text"]).to_pylist()
    texts = [p["text"].split() for p in pages if len(p["text"].split()) >= 12]
    step = max(1, len(texts) // n)
    return [" ".join(t[len(t) // 2 : len(t) // 2 + 6]) for t in texts[::step][:n]]


def index_cmd(corpus: Path, db: Path, profile: str, workers: int | None) -> list[str]:
    cmd = [EXE, "index", str(corpus), "--db", str(db), "--profile", profile, "--json"]
    return cmd + (["--workers", str(workers)] if workers is not None else [])


def trial(corpus: Path, db: Path, delay: float, args: argparse.Namespace, env: dict[str, str]) -> dict:
    proc = subprocess.Popen(
        index_cmd(corpus, db, args.profile, args.workers),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    time.sleep(delay)
    finished_first = proc.poll() is not None
    if not finished_first:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    out = {"delay": round(delay, 2), "killed": not finished_first}
    if not db.exists():
        out.update(opens=True, consistent=True, note="killed before the database existed")
    else:
        stats = subprocess.run([EXE, "stats", "--db", str(db), "--json"], capture_output=True, text=True, env=env)
        out["opens"] = stats.returncode == 0 or "no documents table" in stats.stderr
        check = subprocess.run([EXE, "check", "--db", str(db), "--json"], capture_output=True, text=True, env=env)
        out["consistent"] = check.returncode == 0 or not Store.exists(db)
        if stats.returncode == 0:
            out["ready_before_rerun"] = json.loads(stats.stdout)["documents"]
    rerun = subprocess.run(
        index_cmd(corpus, db, args.profile, args.workers), capture_output=True, text=True, env=env, timeout=3600
    )
    out["rerun_ok"] = rerun.returncode == 0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--profile", default="lite")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="docrag-kills-"))
    try:
        clean = work / "clean"
        t0 = time.perf_counter()
        subprocess.run(
            index_cmd(args.corpus, clean, args.profile, args.workers),
            check=True,
            env=env,
            capture_output=True,
            timeout=3600,
        )
        build_s = time.perf_counter() - t0
        want_rows = table_rows(clean)
        queries = queries_from(clean)
        want_rank = rankings(clean, queries, env)
        results = []
        for i in range(args.kills):
            db = work / f"db{i}"
            r = trial(args.corpus, db, rng.uniform(0.3, build_s), args, env)
            r["same_rows"] = table_rows(db) == want_rows
            r["same_rankings"] = rankings(db, queries, env) == want_rank
            results.append(r)
            print(json.dumps(r), flush=True)
            shutil.rmtree(db, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = len(results)
    count = lambda key: sum(bool(r.get(key)) for r in results)  # noqa: E731
    body = (
        f"`python benchmarks/kill_campaign.py --corpus {args.corpus} --kills {args.kills} --profile {args.profile}`"
        f" — a clean build takes {build_s:.1f} s; kills at uniform random moments within it.\n\n"
        "| trials | killed mid-run | with documents already ready | databases open | no partial document visible | "
        "rerun completes | same rows as clean | same rankings as clean |\n|---|---|---|---|---|---|---|---|\n"
        f"| {n} | {count('killed')} | {count('ready_before_rerun')} | {count('opens')}/{n} | "
        f"{count('consistent')}/{n} | {count('rerun_ok')}/{n} | {count('same_rows')}/{n} | "
        f"{count('same_rankings')}/{n} |\n"
    )
    append_results("Kill campaign (benchmarks/kill_campaign.py)", body, save=not args.no_save)


if __name__ == "__main__":
    main()
