"""Everything the parsers and the router say about every page of some folders, as JSON lines: a fingerprint to
compare before and after a change that must not alter them (a refactor of ``parsers/``).

    python benchmarks/parser_golden.py DIR [DIR ...] --out before.jsonl
    python benchmarks/parser_golden.py DIR [DIR ...] --out after.jsonl --compare before.jsonl
    python benchmarks/parser_golden.py benchmarks/router_set/cache/docs \
        --labels benchmarks/router_set/labels.tsv --out router_set.jsonl

Per page: the signals (as stored), the text, spans, words, figures, layout regions, diagnostics and the route
(label, confidence, reasons) with the default router settings. ``--compare`` prints the pages that differ and
exits 1 when any does.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

from docrag.parsers import DocumentError, discover, open_document
from docrag.pipeline.options import RouterConfig
from docrag.pipeline.router import route_page


def page_record(path: Path, page: object, cfg: RouterConfig) -> dict:
    route = route_page(page, cfg)
    return {
        "file": path.name,
        "page": page.number,
        "size": [page.width_pt, page.height_pt],
        "signals": page.signals.to_dict(),
        "text": page.text,
        "spans": [[s.text, list(s.bbox)] for s in page.spans],
        "words": [[w.text, list(w.bbox)] for w in page.words],
        "figures": [[list(f.bbox), f.width_px, f.height_px, f.kind] for f in page.figures],
        "regions": [[r.kind, list(r.bbox), r.n_items] for r in page.regions],
        "diagnostics": list(page.diagnostics),
        "route": [route.route, route.label, route.confidence, list(route.reasons)],
    }


def dump(dirs: list[str], only: dict[str, set[int]] | None = None) -> list[str]:
    cfg = RouterConfig()
    lines = []
    files = sorted({f.path.resolve() for f in discover(dirs) if f.supported and not f.problem})
    for path in files:
        if only is not None and path.stem not in only:
            continue
        try:
            with open_document(path) as doc:
                for i in range(1, doc.n_pages + 1):
                    if only is not None and i not in only[path.stem]:
                        continue
                    lines.append(json.dumps(page_record(path, doc.page(i), cfg), sort_keys=True, ensure_ascii=False))
        except DocumentError as exc:
            lines.append(json.dumps({"file": path.name, "error": exc.reason}, sort_keys=True))
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--compare", type=Path)
    ap.add_argument("--labels", type=Path, help="A labels TSV (id, page): only these pages of the files named ID.pdf.")
    args = ap.parse_args()
    only = None
    if args.labels:
        only = {}
        with args.labels.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                only.setdefault(row["id"], set()).add(int(row["page"]))
    lines = dump(args.dirs, only)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()[:16]
    print(f"{len(lines)} pages -> {args.out} (sha256 {digest})")
    if args.compare is None:
        return 0
    before = args.compare.read_text(encoding="utf-8").split("\n")[:-1]  # not splitlines(): text may hold U+0085
    if before == lines:
        print(f"identical to {args.compare}")
        return 0
    diff = [(a, b) for a, b in zip(before, lines, strict=False) if a != b]
    print(f"{len(diff)} page(s) differ from {args.compare}; {len(before)} pages before, {len(lines)} now")
    for a, b in diff[:10]:
        x, y = json.loads(a), json.loads(b)
        keys = [k for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
        print(f"  {x.get('file')} page {x.get('page')}: {', '.join(keys)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
