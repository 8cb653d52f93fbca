"""Contact sheets of the router set's pages, for labelling by eye (and for checking a label later).

    python benchmarks/router_set/sheets.py [--cache DIR] [--per-sheet 6] [--only ID ...]
    python benchmarks/router_set/sheets.py --page ID N [--dpi 110]      # one page, larger

Sheets go to ``CACHE/sheets/sheet-NNN.png`` with ``CACHE/sheets/index.tsv`` (sheet, id, page); every tile
is captioned ``ID pN``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fetch import HERE, read_tsv

TILE_W, TILE_H, CAPTION = 420, 560, 22


def selected_pages(cache: Path) -> list[tuple[str, int]]:
    import pypdfium2 as pdfium

    out = [(r["id"], int(p)) for r in read_tsv(HERE / "documents.tsv") for p in r["pages"].split(",")]
    for r in read_tsv(HERE / "derived.tsv"):
        doc = pdfium.PdfDocument(str(cache / "docs" / f"{r['id']}.pdf"))
        out += [(r["id"], n) for n in range(1, len(doc) + 1)]
        doc.close()
    return out


def render(cache: Path, doc_id: str, page: int, box: tuple[int, int] | None = None, dpi: float = 110):
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(cache / "docs" / f"{doc_id}.pdf"))
    try:
        p = doc[page - 1]
        w, h = p.get_size()
        if p.get_rotation() in (90, 270):
            w, h = h, w
        scale = min(box[0] / w, box[1] / h) if box else dpi / 72
        return p.render(scale=min(scale, 4.0), may_draw_forms=True).to_pil().convert("RGB")
    finally:
        doc.close()


def main() -> None:
    from PIL import Image, ImageDraw

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=HERE / "cache")
    ap.add_argument("--per-sheet", type=int, default=6)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--page", nargs=2, metavar=("ID", "N"))
    ap.add_argument("--dpi", type=float, default=110)
    args = ap.parse_args()
    out = args.cache / "sheets"
    out.mkdir(parents=True, exist_ok=True)
    if args.page:
        doc_id, n = args.page[0], int(args.page[1])
        path = out / f"page-{doc_id}-{n}.png"
        render(args.cache, doc_id, n, dpi=args.dpi).save(path)
        print(path)
        return
    pages = [p for p in selected_pages(args.cache) if not args.only or p[0] in args.only]
    cols = 3
    rows_per = -(-args.per_sheet // cols)
    index = ["sheet\tid\tpage"]
    for s in range(0, len(pages), args.per_sheet):
        chunk = pages[s : s + args.per_sheet]
        sheet = Image.new("RGB", (cols * TILE_W, rows_per * (TILE_H + CAPTION)), "#888")
        draw = ImageDraw.Draw(sheet)
        for i, (doc_id, n) in enumerate(chunk):
            x, y = (i % cols) * TILE_W, (i // cols) * (TILE_H + CAPTION)
            img = render(args.cache, doc_id, n, (TILE_W - 8, TILE_H - 8))
            sheet.paste(img, (x + (TILE_W - img.width) // 2, y + CAPTION + (TILE_H - img.height) // 2))
            draw.rectangle([x, y, x + TILE_W - 1, y + CAPTION - 1], fill="#ffd")
            draw.text((x + 6, y + 5), f"{doc_id} p{n}", fill="black")
            index.append(f"{s // args.per_sheet + 1:03d}\t{doc_id}\t{n}")
        sheet.save(out / f"sheet-{s // args.per_sheet + 1:03d}.png")
    (out / "index.tsv").write_text("\n".join(index) + "\n")
    print(f"{len(pages)} pages on {-(-len(pages) // args.per_sheet)} sheets in {out}")


if __name__ == "__main__":
    main()
