"""Load on ``docrag serve``: N concurrent clients against 127.0.0.1 for T seconds, alone and with an indexer writing.

    python benchmarks/serve.py --db DB [--clients 8] [--seconds 60] [--with-indexer FOLDER] [--queries Q.jsonl]
                               [--no-save]

Starts ``docrag serve --db DB`` as its own process on a free port, then runs the clients (each: GET /search with
the next query, k=10, as fast as answers come) for T seconds; with ``--with-indexer``, runs the same again while
``docrag index FOLDER --db DB`` writes to the database. Meanwhile a watcher reads /documents and, for every
document listed, the pages /search returns within it; a *partial document* is one seen with fewer pages than it
has at the end. Prints QPS, p50/p95 latency, errors and partial documents per phase, and appends them to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results

QUERIES = (
    "What does the maximum test statistic measure?",
    "how to draw a figure with xfig",
    "conditional inference trees",
    "table of results",
    "model-based recursive partitioning",
    "zoo regular time series",
    "the raft on the river",
    "permutation test p-value",
)
EXE = str(Path(sys.executable).parent / "docrag")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_queries(path: Path | None) -> list[str]:
    if path is None:
        return list(QUERIES)
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def clients(url: str, queries: list[str], n: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            j = i
            while time.monotonic() < stop:
                q = queries[j % len(queries)]
                j += 1
                t0 = time.perf_counter()
                try:
                    r = c.get("/search", params={"query": q, "k": 10})
                    ok = r.status_code == 200 and isinstance(r.json().get("hits"), list)
                    why = f"HTTP {r.status_code}"
                except Exception as exc:  # a refused or dropped connection counts as an error
                    ok, why = False, type(exc).__name__
                dt = time.perf_counter() - t0
                with lock:
                    (latencies.append(dt) if ok else errors.append(why))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=20) if len(ms) >= 2 else ms * 19 or [float("nan")] * 19
    return {
        "requests": len(ms),
        "qps": len(ms) / wall,
        "p50": statistics.median(ms) if ms else float("nan"),
        "p95": q[18],
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
    }


class Watcher:
    """Reads /documents and each listed document's pages through /search until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[tuple[str, frozenset[int]]] = []
        self.errors = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def pages(self, c, doc_id: str, n_pages: int) -> frozenset[int]:
        where = "doc_id = '" + doc_id.replace("'", "''") + "'"
        r = c.get("/search", params={"query": "the", "k": min(100, max(1, n_pages)), "where": where})
        r.raise_for_status()
        return frozenset(h["page"] for h in r.json()["hits"])

    def run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=120) as c:
            while not self._stop.is_set():
                try:
                    for d in c.get("/documents").json()["documents"]:
                        self.seen.append((d["doc_id"], self.pages(c, d["doc_id"], d["n_pages"])))
                except Exception:
                    self.errors += 1

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> int:
        """Partial documents seen: a document seen with fewer pages than it has now."""
        import httpx

        self._stop.set()
        self.thread.join()
        with httpx.Client(base_url=self.url, timeout=120) as c:
            final = {
                d["doc_id"]: self.pages(c, d["doc_id"], d["n_pages"]) for d in c.get("/documents").json()["documents"]
            }
        return len({doc for doc, pages in self.seen if pages != final.get(doc, pages)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="a docrag database (its own models are used)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--with-indexer", type=Path, help="a folder `docrag index` adds to the database meanwhile")
    ap.add_argument("--queries", type=Path, help="JSON lines with a text field (default: built-in questions)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    import httpx

    queries = read_queries(args.queries)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    cmd = [EXE, "serve", "--db", args.db, "--port", str(port), "--max-concurrent", str(args.clients * 2 + 2)]
    server = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server did not start: {server.stderr.read() if server.stderr else ''}")
            time.sleep(0.2)
        httpx.get(url + "/search", params={"query": queries[0]}, timeout=120)  # the query model loads once
        rows = []
        watcher = Watcher(url)
        watcher.start()
        alone = clients(url, queries, args.clients, args.seconds)
        rows.append(("alone", alone, watcher.stop(), None))
        if args.with_indexer:
            watcher = Watcher(url)
            watcher.start()
            t0 = time.perf_counter()
            indexer = subprocess.Popen(
                [EXE, "index", str(args.with_indexer), "--db", args.db],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            loaded = clients(url, queries, args.clients, args.seconds)
            _, err = indexer.communicate()
            took = time.perf_counter() - t0
            if indexer.returncode != 0:
                print(f"indexer exited {indexer.returncode}: {err.strip()[-500:]}", file=sys.stderr)
            rows.append(("with indexer", loaded, watcher.stop(), (indexer.returncode, took)))
    finally:
        server.terminate()
        server.wait(30)

    lines = [
        f"`docrag serve` on 127.0.0.1 (its own process), {args.clients} clients × {args.seconds:g} s, GET /search "
        f"k=10 over {len(queries)} queries; database {args.db}"
        + (f"; indexer: `docrag index {args.with_indexer}` into the same database" if args.with_indexer else ""),
        "",
        "| phase | requests | QPS | p50 ms | p95 ms | errors | partial documents seen |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r, partial, _ in rows:
        lines.append(
            f"| {name} | {r['requests']} | {r['qps']:.1f} | {r['p50']:.0f} | {r['p95']:.0f} | "
            f"{r['errors']}{' (' + ', '.join(r['error_kinds']) + ')' if r['errors'] else ''} | {partial} |"
        )
    for name, _, _, idx in rows:
        if idx is not None:
            lines.append(f"\n{name}: the indexer exited {idx[0]} after {idx[1]:.0f} s (from the phase's start).")
    append_results("Serve under load (benchmarks/serve.py)", "\n".join(lines), save=not args.no_save)


if __name__ == "__main__":
    main()
