"""Retrieval quality and indexing cost of the `lite` profile, against BM25 alone, in one process.

    python benchmarks/retrieval.py --corpus DEVSET/corpus --queries DEVSET/queries.jsonl
                                   [--labels DEVSET/page_labels.tsv] [--big-pages 300] [--ablate] [--no-save]

1. Indexes the corpus with the `lite` profile (timed), then evaluates on the same index: BM25 alone over
   page text (text layer + OCR), the text leg alone, and the fused ranking with both fusion methods.
   With ``--ablate``, re-indexes the corpus once per text-preparation step turned off (caption headers on
   chunks, dehyphenation) and reports the text leg and the fused ranking without it.
2. Builds a PDF of ``--big-pages`` pages by cycling the corpus's pages and indexes it in a fresh process
   (lite profile), reporting pages/s and peak RSS, against the peak RSS of a process that only loads the
   lite model and embeds one string (the model's own footprint).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results


def _child_peak(code: str) -> tuple[float, dict]:
    """Run ``code`` in a fresh Python; returns (its peak RSS in MiB, the JSON it printed last)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, max over all children so far
    if peak <= before:
        print("warning: an earlier child had a higher peak; the RSS figure is an upper bound", file=sys.stderr)
    return peak / 1024, json.loads(proc.stdout.strip().splitlines()[-1])


def build_big_pdf(corpus: Path, n_pages: int, out: Path) -> Path:
    import pypdfium2 as pdfium

    sources = [pdfium.PdfDocument(p) for p in sorted(corpus.glob("*.pdf"))]
    refs = [(doc, i) for doc in sources for i in range(len(doc))]
    big = pdfium.PdfDocument.new()
    for k in range(n_pages):
        doc, i = refs[k % len(refs)]
        big.import_pages(doc, [i])
    big.save(out)
    for d in sources:
        d.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--queries", required=True, type=Path)
    ap.add_argument("--labels", type=Path)
    ap.add_argument("--big-pages", type=int, default=300)
    ap.add_argument("--ablate", action="store_true", help="also index without each text-preparation step")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    import docrag
    from docrag.pipeline.eval import load_queries

    tmp = Path(tempfile.mkdtemp())
    try:
        index = docrag.open(tmp / "lite.db", profile="lite")
        t0 = time.perf_counter()
        report = index.add([args.corpus])
        index_s = time.perf_counter() - t0
        queries = load_queries(args.queries)
        runs = {}
        for fusion in ("weighted", "rrf"):
            index.settings.search.fusion = fusion
            runs[fusion] = index.evaluate(queries, (5, 10), labels=args.labels)
        res = runs["weighted"]
        rows = [
            "| ranking | nDCG@5 | recall@5 | MRR@10 | "
            + " | ".join(f"nDCG@5 {k}" for k in res["fused"]["by_kind"])
            + " |"
        ]
        rows.append("|---" * (4 + len(res["fused"]["by_kind"])) + "|")

        def row(name: str, r: dict) -> str:
            o = r["overall"]
            kinds = " | ".join(f"{v['ndcg@5']:.3f}" for v in r["by_kind"].values())
            return f"| {name} | {o['ndcg@5']:.3f} | {o['recall@5']:.3f} | {o['mrr@10']:.3f} | {kinds} |"

        rows.append(row("BM25 only (page text: text layer + OCR)", res["legs"]["bm25"]))
        rows.append(row("text leg only (all-MiniLM-L6-v2 chunks)", res["legs"]["text"]))
        rows.append(row("fused, weighted (lite default)", runs["weighted"]["fused"]))
        rows.append(row("fused, rrf", runs["rrf"]["fused"]))
        if args.ablate:
            steps = (("caption headers", {"caption_context": False}), ("dehyphenation", {"dehyphenate": False}))
            for name, off in steps:
                ablated = docrag.open(tmp / f"no-{next(iter(off))}.db", profile="lite", ingest=off)
                ablated.add([args.corpus])
                r = ablated.evaluate(queries, (5, 10))
                rows.append(row(f"text leg only, without {name}", r["legs"]["text"]))
                rows.append(row(f"fused, weighted, without {name}", r["fused"]))
        gain = runs["weighted"]["fused"]["overall"]["ndcg@5"] - res["legs"]["bm25"]["overall"]["ndcg@5"]
        body = [
            f"Corpus `{args.corpus}` ({report.pages} pages, {report.indexed} documents), {len(queries)} queries "
            f"`{args.queries.name}`.",
            "",
            f"Indexing with `lite` (unstructured elements, OCR of scanned pages at 300 dpi, MiniLM): {index_s:.1f} s, "
            f"{report.pages / index_s:.2f} pages/s.",
            "",
            *rows,
            "",
            f"Fused (weighted) − BM25 only: {gain:+.3f} nDCG@5.",
        ]
        if "routing" in res:
            body.append(f"Routing on the indexed pages: {res['routing']}.")

        if args.big_pages:
            big = build_big_pdf(args.corpus, args.big_pages, tmp / "big.pdf")
            base_mib, _ = _child_peak(
                "import json, docrag\n"
                f"i = docrag.open({str(tmp / 'm.db')!r}, profile='lite')\n"
                "i.text_embedder.embed_documents(['warm up'])\n"
                "print(json.dumps({}))\n"
            )
            peak_mib, big_report = _child_peak(
                "import json, time, docrag\n"
                f"i = docrag.open({str(tmp / 'big.db')!r}, profile='lite')\n"
                "t = time.perf_counter()\n"
                f"r = i.add([{str(big)!r}])\n"
                "d = r.to_dict(); d['wall'] = time.perf_counter() - t\n"
                "print(json.dumps(d))\n"
            )
            body += [
                "",
                f"{args.big_pages}-page PDF (the corpus's pages cycled), `lite` profile, fresh process: "
                f"{big_report['pages']} pages in {big_report['wall']:.1f} s "
                f"({big_report['pages'] / big_report['wall']:.2f} pages/s); peak RSS {peak_mib:.0f} MiB "
                f"against {base_mib:.0f} MiB for the model alone "
                f"→ **{peak_mib - base_mib:.0f} MiB above the model's footprint**.",
            ]
        text = "\n".join(body)
        append_results("Retrieval quality, lite profile vs BM25 (benchmarks/retrieval.py)", text, save=not args.no_save)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
