"""Router accuracy against hand labels, confusion matrix, and parse+route time per page.

    python benchmarks/router.py --labels DEVSET/page_labels.tsv --corpus DEVSET/corpus [--no-save]

Parse+route covers the text layer, page objects and signals (no OCR, no rendering, no models).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results

from docrag.parsers import open_document
from docrag.pipeline.router import LABELS, route_page


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", required=True, type=Path)
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats (the median of per-page medians)")
    ap.add_argument("--no-save", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args()

    with args.labels.open(encoding="utf-8") as fh:
        gold = {(r["file"], int(r["page"])): r["label"] for r in csv.DictReader(fh, delimiter="\t")}
    files = sorted({f for f, _ in gold})
    times: dict[tuple[str, int], list[float]] = {}
    predicted: dict[tuple[str, int], tuple[str, str, float, list[str]]] = {}
    for rep in range(args.repeat):
        for f in files:
            with open_document(args.corpus / f) as doc:
                for n in range(1, doc.n_pages + 1):
                    t0 = time.perf_counter()
                    r = route_page(doc.page(n))
                    times.setdefault((f, n), []).append((time.perf_counter() - t0) * 1000)
                    if rep == 0:
                        predicted[(f, n)] = (r.route, r.label, r.confidence, r.reasons)

    keys = sorted(gold)
    to_route = {"scanned": "visual", "layout": "visual", "text": "text"}
    route_ok = sum(to_route[gold[k]] == predicted[k][0] for k in keys)
    label_ok = sum(gold[k] == predicted[k][1] for k in keys)
    confusion = Counter((gold[k], predicted[k][1]) for k in keys)
    per_page = [statistics.median(v) for v in times.values()]
    lines = [
        f"Corpus: `{args.corpus}` ({len(keys)} pages, {len(files)} files), labels `{args.labels.name}`.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| visual-vs-text accuracy | {route_ok / len(keys):.3f} ({route_ok}/{len(keys)}) |",
        f"| 3-class label accuracy | {label_ok / len(keys):.3f} ({label_ok}/{len(keys)}) |",
        f"| parse+route ms/page, median | {statistics.median(per_page):.1f} |",
        f"| parse+route ms/page, p90 | {sorted(per_page)[int(0.9 * (len(per_page) - 1))]:.1f} |",
        f"| parse+route ms/page, max | {max(per_page):.1f} |",
        "",
        "Confusion (rows: hand label, columns: router label):",
        "",
        "| gold \\ pred | " + " | ".join(LABELS) + " |",
        "|---|" + "---|" * len(LABELS),
    ]
    for g in LABELS:
        lines.append(f"| {g} | " + " | ".join(str(confusion[(g, p)]) for p in LABELS) + " |")
    wrong = [k for k in keys if gold[k] != predicted[k][1]]
    if wrong:
        lines += ["", "Pages labelled differently:", ""]
        for k in wrong:
            _route, label, conf, reasons = predicted[k]
            lines.append(f"- {k[0]} p{k[1]}: gold {gold[k]}, router {label} ({conf:.2f}): {'; '.join(reasons)}")
    body = "\n".join(lines)
    append_results("Router accuracy and parse+route time (benchmarks/router.py)", body, save=not args.no_save)


if __name__ == "__main__":
    main()
