"""Rendering speed: pypdfium2 against pdf2image (poppler's pdftoppm), page by page, same pages and dpi.

    python benchmarks/render.py --corpus DEVSET/corpus [--dpi 100 150] [--no-save]

Both go through docrag's one rendering function (``render_pdf_page``, backend pdfium | poppler).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results

from docrag.parsers.pdf import render_pdf_page


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--dpi", type=float, nargs="+", default=[100.0, 150.0])
    ap.add_argument("--max-pages", type=int, default=40, help="pages sampled (first pages of each file)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    import pypdfium2 as pdfium

    files = sorted(args.corpus.glob("*.pdf"))
    per_file = max(1, args.max_pages // max(len(files), 1))
    rows = [
        "| dpi | backend | pages | ms/page median | ms/page mean | ratio to pdfium (median) |",
        "|---|---|---|---|---|---|",
    ]
    for dpi in args.dpi:
        times: dict[str, list[float]] = {"pdfium": [], "poppler": []}
        for f in files:
            pdf = pdfium.PdfDocument(f)
            for i in range(min(per_file, len(pdf))):
                page = pdf[i]
                for backend in ("pdfium", "poppler"):
                    t0 = time.perf_counter()
                    render_pdf_page(page, dpi, 50_000_000, backend=backend, path=f, number=i + 1)
                    times[backend].append((time.perf_counter() - t0) * 1000)
                page.close()
            pdf.close()
        base = statistics.median(times["pdfium"])
        for backend, ts in times.items():
            med = statistics.median(ts)
            rows.append(
                f"| {dpi:.0f} | {backend} | {len(ts)} | {med:.1f} | {statistics.mean(ts):.1f} | {med / base:.2f} |"
            )
    body = (
        f"Corpus `{args.corpus}`, up to {per_file} pages per file, one page per call for both backends "
        "(pdf2image's whole-file conversion keeps every page in RAM; it is not used).\n\n"
        + "\n".join(rows)
        + "\n\nChoice: pypdfium2 renders (and streams text and page objects) — poppler stays available as "
        "`render_pdf_page(..., backend='poppler')`."
    )
    append_results("Rendering: pypdfium2 vs pdf2image/poppler (benchmarks/render.py)", body, save=not args.no_save)


if __name__ == "__main__":
    main()
