"""What answer regions cost: at indexing (word boxes, chunk placement, bytes stored) and at query time.

    python benchmarks/regions.py --corpus ../shared/data/devset/corpus \
        [--queries ../shared/data/devset/queries.jsonl] [--no-save]

Indexing side, per PDF page, against the same run's baseline:
- parsing a page (``doc.page``, which now includes the words) vs the share of it spent in ``parsers.pdf_text._words``;
- placing each of the page's elements among its words (``chunk_boxes``, what ingest does per chunk) vs
  parsing the page;
- bytes of the stored ``words`` JSON vs the page's text and its thumbnail (the rest of a page row).

Query side (with ``--queries``): the corpus indexed with the ``lite`` profile, then for each query the search
(k=5) vs ``hit.regions()`` for its 5 hits (text and bm25 legs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results


def _indexing(corpus: Path) -> tuple[str, dict[str, float]]:
    import docrag.parsers.pdf_text as pdf_text
    from docrag.parsers import open_document
    from docrag.parsers.elements import text_layer_elements
    from docrag.parsers.words import encode_words, span_words
    from docrag.pipeline.plan import _thumbnail
    from docrag.pipeline.regions import chunk_boxes

    spent = {"words": 0.0}
    inner = pdf_text._words

    def timed(*args):
        t = time.perf_counter()
        try:
            return inner(*args)
        finally:
            spent["words"] += time.perf_counter() - t

    pdf_text._words = timed
    parse, words_s, place, words_b, text_b, thumb_b = [], [], [], [], [], []
    try:
        for path in sorted(corpus.glob("*.pdf")):
            with open_document(path) as doc:
                for n in range(1, doc.n_pages + 1):
                    spent["words"] = 0.0
                    t = time.perf_counter()
                    page = doc.page(n)
                    parse.append(time.perf_counter() - t)
                    words_s.append(spent["words"])
                    words = span_words(page.words, page.width_pt, page.height_pt)
                    t = time.perf_counter()
                    for el in text_layer_elements(page):
                        chunk_boxes(el.text, words)
                    place.append(time.perf_counter() - t)
                    words_b.append(len(json.dumps(encode_words(words), ensure_ascii=False).encode()))
                    text_b.append(len(page.text.encode()))
                    thumb_b.append(len(_thumbnail(page.render(72), 256)))
    finally:
        pdf_text._words = inner
    n = len(parse)
    text_pages = [i for i in range(n) if text_b[i] > 200]
    figures = {
        "pages": n,
        "parse_ms": 1000 * statistics.median(parse),
        "words_ms": 1000 * statistics.median(words_s),
        "place_ms": 1000 * statistics.median(place),
        "words_kb": statistics.mean(words_b[i] for i in text_pages) / 1024,
        "text_kb": statistics.mean(text_b[i] for i in text_pages) / 1024,
        "thumb_kb": statistics.mean(thumb_b[i] for i in text_pages) / 1024,
    }
    f = figures
    body = (
        f"Corpus `{corpus}`: {n} PDF pages ({len(text_pages)} with a text layer of 200+ bytes).\n\n"
        "| per page (median; bytes: mean over pages with text) | figure | against |\n|---|---|---|\n"
        f"| word boxes from PDFium's characters (`_words`) | {f['words_ms']:.2f} ms | parsing the page "
        f"{f['parse_ms']:.2f} ms ({f['words_ms'] / f['parse_ms']:.1%}) |\n"
        f"| placing the page's elements among its words (`chunk_boxes`) | {f['place_ms']:.2f} ms | parsing "
        f"{f['parse_ms']:.2f} ms ({f['place_ms'] / f['parse_ms']:.0%}) |\n"
        f"| stored `words` JSON | {f['words_kb']:.1f} KiB | page text {f['text_kb']:.1f} KiB, "
        f"thumbnail {f['thumb_kb']:.1f} KiB |\n"
    )
    return body, figures


def _querying(corpus: Path, queries: Path) -> str:
    import docrag
    from docrag.pipeline.eval import read_queries

    texts = [q["text"] for q in read_queries(queries)]
    with tempfile.TemporaryDirectory() as tmp:
        index = docrag.open(Path(tmp) / "db", profile="lite")
        index.add([corpus], progress=False)
        index.search(texts[0], k=5)  # warm: model loaded, tables open
        search, regions, boxes = [], [], []
        for q in texts:
            t = time.perf_counter()
            hits = index.search(q, k=5)
            search.append(time.perf_counter() - t)
            t = time.perf_counter()
            found = [h.regions() for h in hits]
            regions.append(time.perf_counter() - t)
            boxes.append(sum(len(f) for f in found))
    return (
        f"\nQuery side, `lite` index of that corpus, {len(texts)} queries from `{queries}`:\n\n"
        "| per query (median) | figure | against |\n|---|---|---|\n"
        f"| `hit.regions()` for the 5 hits (text + bm25) | {1000 * statistics.median(regions):.1f} ms | "
        f"the search itself {1000 * statistics.median(search):.1f} ms |\n"
        f"| regions found for the 5 hits | {statistics.median(boxes):.0f} | |\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--queries", type=Path)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"--corpus {args.corpus}: no such folder")
    body, _ = _indexing(args.corpus)
    if args.queries is not None:
        body += _querying(args.corpus, args.queries)
    append_results("Answer regions: indexing and query cost", body, save=not args.no_save)


if __name__ == "__main__":
    main()
