"""Router accuracy against hand labels: leave-one-document-out on the router set, the dev set, parse+route time.

    python benchmarks/router.py [--set benchmarks/router_set] [--dev DEVSET] [--fit] [--no-save]

- ``--set``: the labelled router set (``labels.tsv`` and ``cache/docs``, see ``router_set/fetch.py``). The
  learned decision is scored by leave-one-document-out: for every document, a model fitted on all the
  others routes its pages. Accuracy is reported overall, per gold label, per kind (``labels.tsv``'s: photo,
  near-empty, rotated, scan, chart...) and per source, beside the hand-set rules (``decision = "rules"``) in the
  same run. Documents missing from the cache are left out and named.
- ``--dev``: a folder with ``page_labels.tsv`` and ``corpus/`` (the dev set), routed by the model fitted on
  the whole router set (none of its pages were seen).
- ``--fit``: write that model to ``pipeline/router_model.json``.
- The ambiguity band (``ambiguous_below``): how many text pages would also get visual vectors with
  ``visual_pages = ambiguous-both``, and how many visual pages that rescues.

Parse+route covers the text layer, page objects and signals (no OCR, no rendering, no models).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
from _common import append_results

from docrag.parsers import open_document
from docrag.pipeline.options import RouterConfig
from docrag.pipeline.router import LABELS, route_signals, rule_log_odds
from docrag.pipeline.router_features import FEATURES, feature_vector
from docrag.pipeline.router_model import DEFAULT_MODEL, LearnedDecision, fit_on_rule, fit_trees, load_model

TO_ROUTE = {"scanned": "visual", "layout": "visual", "text": "text"}
# (tree depth, boosting rounds, weight of the region rule's log-odds as the starting point; 0: trees alone),
# chosen by leave-one-document-out
GRID = ((1, 50, 0.0), (1, 30, 0.5), (1, 50, 0.5), (1, 50, 1.0))
NEUTRAL = LearnedDecision([f.name for f in FEATURES], 0.0, [])


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def parse_pages(items: list[tuple[str, Path, int]], repeat: int) -> tuple[dict, dict]:
    """Signals and parse+route times (ms, median over repeats) of (key, file, page) items."""
    signals, times = {}, defaultdict(list)
    by_file = defaultdict(list)
    for key, path, n in items:
        by_file[path].append((key, n))
    cfg = RouterConfig()
    try:
        model = load_model()
    except ValueError:  # the first fit, or a model of other features: the same work with neutral trees
        model = NEUTRAL
    for rep in range(repeat):
        for path, pages in by_file.items():
            with open_document(path) as doc:
                for key, n in pages:
                    t0 = time.perf_counter()
                    page = doc.page(n)
                    route_signals(page.file, n, page.signals, cfg, model=model)
                    times[key].append((time.perf_counter() - t0) * 1000)
                    if rep == 0:
                        signals[key] = page.signals
    return signals, {k: statistics.median(v) for k, v in times.items()}


def learned_keys(signals: dict, keys: list) -> list:
    """Pages the learned model decides (not scans, forms, text-less drawings or image files)."""
    cfg = RouterConfig()
    out = []
    for k in keys:
        r = route_signals("", 1, signals[k], cfg, model=NEUTRAL)
        if any(x.startswith("P(layout)") for x in r.reasons):
            out.append(k)
    return out


def fit(signals: dict, gold: dict, keys: list, config: tuple[int, int, float]):
    x = np.asarray([feature_vector(signals[k]) for k in keys])
    y = np.asarray([gold[k] != "text" for k in keys])
    depth, rounds, scale = config
    if not scale:
        return fit_trees(x, y, depth=depth, rounds=rounds, min_leaf=20)
    rule = [rule_log_odds(signals[k], RouterConfig())[0] for k in keys]
    return fit_on_rule(x, y, rule, scale, depth=depth, rounds=rounds, min_leaf=20)


def lodo(signals: dict, gold: dict, group: dict, keys: list, config: tuple[int, int, float]) -> dict:
    """Held-out route, label and confidence of every page: each document routed by a model fitted without it."""
    train_keys = learned_keys(signals, keys)
    out = {}
    cfg = RouterConfig()
    for g in sorted({group[k] for k in keys}):
        model = fit(signals, gold, [k for k in train_keys if group[k] != g], config)
        for k in keys:
            if group[k] == g:
                out[k] = route_signals("", 1, signals[k], cfg, model=model)
    return out


def accuracy(pred: dict, gold: dict, keys: list) -> tuple[int, int]:
    return sum(TO_ROUTE[gold[k]] == TO_ROUTE[pred[k].label] for k in keys), len(keys)


def fmt(ok: int, n: int) -> str:
    return f"{ok / n:.3f} ({ok}/{n})" if n else "–"


def band(pred: dict, gold: dict, keys: list, below: float) -> tuple[int, int, int]:
    """(text pages that would also get visual vectors, visual pages rescued, visual pages)"""
    extra = [k for k in keys if pred[k].label == "text" and pred[k].confidence < below]
    rescued = sum(TO_ROUTE[gold[k]] == "visual" for k in extra)
    return len(extra), rescued, sum(TO_ROUTE[gold[k]] == "visual" for k in keys)


def _cfg(c: tuple[int, int, float]) -> str:
    return f"depth {c[0]}/{c[1]} rounds/rule x{c[2]}"


def items_path(items: list) -> list:
    return [(k, (path, n)) for k, path, n in items]


def write_gallery(out: Path, wrong, held, gold, kind, note, source, confusion, where) -> None:
    """Thumbnails and reasons of the held-out mistakes, and the confusion matrix, for the router notebook."""
    import pypdfium2 as pdfium

    thumbs = out / "thumbs"
    thumbs.mkdir(parents=True, exist_ok=True)
    for old in thumbs.glob("*.jpg"):
        old.unlink()
    rows = []
    for k in wrong:
        path, n = where[k]
        name = f"{k[0].replace('/', '_')}-p{k[1]}.jpg"
        doc = pdfium.PdfDocument(str(path))
        try:
            page = doc[n - 1]
            w, h = page.get_size()
            img = page.render(scale=min(180 / max(w, h), 2.0)).to_pil().convert("RGB")
        finally:
            doc.close()
        img.save(thumbs / name, "JPEG", quality=70)
        r = held[k]
        rows.append(
            {
                "id": k[0],
                "page": k[1],
                "source": source[k],
                "kind": kind[k],
                "note": note[k],
                "gold": gold[k],
                "label": r.label,
                "confidence": round(r.confidence, 3),
                "reasons": r.reasons,
                "thumbnail": f"thumbs/{name}",
            }
        )
    (out / "mistakes.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    matrix = {g: {p: confusion[(g, p)] for p in LABELS} for g in LABELS}
    (out / "confusion.json").write_text(json.dumps(matrix, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).parent
    ap.add_argument("--set", type=Path, default=here / "router_set", help="router set folder")
    ap.add_argument("--dev", type=Path, default=None, help="dev set folder (page_labels.tsv, corpus/)")
    ap.add_argument("--fit", action="store_true", help="write the model fitted on the whole set (see --out)")
    ap.add_argument("--out", type=Path, default=DEFAULT_MODEL, help="where --fit writes (default: the shipped model)")
    ap.add_argument("--depth", type=int, default=None, help="fix the tree depth (default: the best of GRID)")
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats (the median of per-page medians)")
    ap.add_argument(
        "--gallery",
        type=Path,
        default=None,
        help="write the held-out mistakes (mistakes.json, thumbnails) and the confusion matrix here "
        "(benchmarks/router_set/results is what the router notebook shows)",
    )
    ap.add_argument("--no-save", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args()

    labels = read_tsv(args.set / "labels.tsv")
    docs = {r["id"]: r for r in read_tsv(args.set / "documents.tsv")}
    derived = {r["id"]: r["from"].split() for r in read_tsv(args.set / "derived.tsv")}
    gold, kind, note, group, source, items = {}, {}, {}, {}, {}, []
    for r in labels:
        k = (r["id"], int(r["page"]))
        gold[k], kind[k], note[k] = r["label"], r["kind"], r["note"]
        # A derived page is held out with the document it was made from (a rotated or turned copy is the same page).
        origin = derived.get(r["id"])
        same = origin and r["id"] in ("derived_rotated", "derived_turned")
        group[k] = origin[k[1] - 1].rsplit(":", 1)[0] if same else r["id"]
        src = docs[r["id"]]["source"] if r["id"] in docs else "derived"
        source[k] = src.split("@")[0].split("==")[0].split("=")[0]
        items.append((k, args.set / "cache" / "docs" / f"{r['id']}.pdf", k[1]))
    if args.dev:  # the dev set joins as one more source: held out per document like the others
        for r in read_tsv(args.dev / "page_labels.tsv"):
            k = (f"dev/{r['file']}", int(r["page"]))
            gold[k], kind[k], note[k], group[k], source[k] = r["label"], "devset", r.get("note", ""), k[0], "devset"
            items.append((k, args.dev / "corpus" / r["file"], k[1]))
    # Documents not in the cache (a source that could not be fetched, a tool missing for a derived one) are left
    # out, and said so: the numbers are then over the pages that are there.
    missing = sorted({k[0] for k, path, _ in items if not path.exists()})
    items = [it for it in items if it[1].exists()]
    keys = sorted(k for k, _, _ in items)
    signals, times = parse_pages(items, args.repeat)

    rules = {k: route_signals("", 1, signals[k], RouterConfig(decision="rules")) for k in keys}
    grid = {}
    for config in [c for c in GRID if args.depth in (None, c[0])]:
        grid[config] = lodo(signals, gold, group, keys, config)
    best = max(grid, key=lambda v: (accuracy(grid[v], gold, keys)[0], v))
    held = grid[best]
    train = learned_keys(signals, keys)
    final = fit(signals, gold, train, best)
    n_docs = len({k[0] for k in keys})
    n_set = sum(source[k] != "devset" for k in keys)
    left_out = len(gold) - len(keys)

    lines = [
        f"Router set: `{args.set}` ({n_set} pages; labels by eye, `labels.tsv`)"
        + (f" and dev set `{args.dev}` ({len(keys) - n_set} pages)" if args.dev else "")
        + f": {len(keys)} pages of {n_docs} documents. "
        f"The learned decision is fitted on {len(train)} pages (the others are scans, forms and text-less "
        "drawings, decided by rules) with "
        f"{len(FEATURES)} features: boosted trees of depth {best[0]}, {best[1]} rounds, starting from "
        f"{best[2]} x the region rule's log-odds (best of {', '.join(_cfg(c) for c in grid)} by "
        "leave-one-document-out)."
        + (
            f" Left out: {left_out} labelled pages of {len(missing)} documents not in the cache "
            f"({', '.join(missing)}; see `router_set/fetch.py`)."
            if missing
            else ""
        ),
        "",
        "| decision | visual-vs-text accuracy, leave-one-document-out | 3-class label accuracy |",
        "|---|---|---|",
        f"| learned (this run) | {fmt(*accuracy(held, gold, keys))} | "
        f"{fmt(sum(gold[k] == held[k].label for k in keys), len(keys))} |",
        f"| rules (hand-set thresholds) | {fmt(*accuracy(rules, gold, keys))} | "
        f"{fmt(sum(gold[k] == rules[k].label for k in keys), len(keys))} |",
    ]
    if len(grid) > 1:
        lines += [
            "",
            "Grid (LODO visual-vs-text accuracy): "
            + ", ".join(f"{_cfg(v)}: {accuracy(p, gold, keys)[0] / len(keys):.3f}" for v, p in grid.items()),
        ]
    for title, attr in (("gold label", gold), ("kind", kind), ("source", source)):
        lines += [
            "",
            f"Per {title} (leave-one-document-out):",
            "",
            f"| {title} | pages | learned | rules |",
            "|---|---|---|---|",
        ]
        for value in sorted(set(attr.values())):
            ks = [k for k in keys if attr[k] == value]
            lines.append(
                f"| {value} | {len(ks)} | {fmt(*accuracy(held, gold, ks))} | {fmt(*accuracy(rules, gold, ks))} |"
            )
    confusion = Counter((gold[k], held[k].label) for k in keys)
    lines += [
        "",
        "Confusion, leave-one-document-out (rows: hand label, columns: router label):",
        "",
        "| gold \\ pred | " + " | ".join(LABELS) + " |",
        "|---|" + "---|" * len(LABELS),
    ]
    for g in LABELS:
        lines.append(f"| {g} | " + " | ".join(str(confusion[(g, p)]) for p in LABELS) + " |")
    below = RouterConfig().ambiguous_below
    extra, rescued, n_visual = band(held, gold, keys, below)
    auto_visual = sum(TO_ROUTE[held[k].label] == "visual" for k in keys)
    missed = sum(TO_ROUTE[gold[k]] == "visual" and TO_ROUTE[held[k].label] == "text" for k in keys)
    lines += [
        "",
        f"Ambiguity band (`visual_pages = ambiguous-both`, confidence < {below}): {extra} text-routed pages "
        f"also get visual vectors ({auto_visual} → {auto_visual + extra} visual pages, "
        f"+{100 * extra / max(auto_visual, 1):.0f}%); {rescued} of the {missed} visual pages routed to text are "
        f"among them (visual recall {(n_visual - missed) / n_visual:.3f} → "
        f"{(n_visual - missed + rescued) / n_visual:.3f}).",
    ]
    per_page = list(times.values())
    lines += [
        "",
        "| parse+route ms/page | value |",
        "|---|---|",
        f"| median | {statistics.median(per_page):.1f} |",
        f"| p90 | {sorted(per_page)[int(0.9 * (len(per_page) - 1))]:.1f} |",
        f"| max | {max(per_page):.1f} |",
    ]
    wrong = [k for k in keys if TO_ROUTE[gold[k]] != TO_ROUTE[held[k].label]]
    if wrong:
        lines += ["", "Held-out mistakes (visual vs text):", ""]
        for k in wrong:
            r = held[k]
            lines.append(
                f"- {k[0]} p{k[1]} ({kind[k]}: {note[k]}): gold {gold[k]}, router {r.label} "
                f"({r.confidence:.2f}): {'; '.join(r.reasons[:2])}"
            )
    if args.gallery:
        write_gallery(args.gallery, wrong, held, gold, kind, note, source, confusion, dict(items_path(items)))

    if args.dev:
        # The dev set as it was before: routed by a model fitted on the router set alone (no dev page seen).
        dk = [k for k in keys if source[k] == "devset"]
        alone = fit(signals, gold, [k for k in train if source[k] != "devset"], best)
        dev_learned = {k: route_signals("", 1, signals[k], RouterConfig(), model=alone) for k in dk}
        lines += [
            "",
            f"Dev set alone ({len(dk)} pages), routed by a model fitted on the router set only (no dev page seen):",
            "",
            "| decision | visual-vs-text | 3-class |",
            "|---|---|---|",
            f"| learned, router set only | {fmt(*accuracy(dev_learned, gold, dk))} | "
            f"{fmt(sum(gold[k] == dev_learned[k].label for k in dk), len(dk))} |",
            f"| rules | {fmt(*accuracy(rules, gold, dk))} | "
            f"{fmt(sum(gold[k] == rules[k].label for k in dk), len(dk))} |",
        ]

    if args.fit:
        data = {
            "about": "docrag router: boosted trees for P(layout) over page signals (docrag.pipeline.router_model)",
            "trained_on": f"benchmarks/router_set{' and the dev set' if args.dev else ''}: {len(train)} pages of "
            f"{len({k[0] for k in train})} documents",
            "depth": best[0],
            "rounds": best[1],
            "min_leaf": 20,
            "leave_one_document_out_accuracy": round(accuracy(held, gold, keys)[0] / len(keys), 4),
            **final.to_dict(),
        }
        args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        shown = args.out.relative_to(here.parent) if args.out.is_relative_to(here.parent) else args.out
        lines += ["", f"Wrote `{shown}`."]
    append_results(
        "Router accuracy and parse+route time (benchmarks/router.py)", "\n".join(lines), save=not args.no_save
    )


if __name__ == "__main__":
    main()
