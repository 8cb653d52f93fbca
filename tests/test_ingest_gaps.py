"""Text and files that went missing without a word (issue 25): template pages stripped empty, undecodable
images "ready" with no rows, unsearchable photos, a zero-page PDF called encrypted, near-empty pages sent to
the visual leg, a search that hides documents still being indexed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from docrag.config import IngestConfig, Limits, RouterConfig
from docrag.parsers.elements import running_lines, strip_lines
from docrag.pipeline.plan import PlanOptions, plan_document


def _options(**ingest) -> PlanOptions:
    ing = IngestConfig(**{"elements": "text-layer", "ocr": False, **ingest})
    return PlanOptions.build(RouterConfig(), ing, Limits(), visual=True, figures=True)


def _plans(path: Path) -> list:
    return [p for kind, data in plan_document(path, _options()) if kind == "pages" for p in data]


def _pdf(path: Path, pages: list[list[str]], size=A4) -> Path:
    """One page per list of lines, top to bottom."""
    c = canvas.Canvas(str(path), pagesize=size, invariant=1)
    for lines in pages:
        c.setFont("Helvetica", 14)
        for i, line in enumerate(lines):
            c.drawString(72, size[1] - 80 - 40 * i, line)
        c.showPage()
    c.save()
    return path


TEMPLATES = {
    # the issue's document: every line differs from its neighbours' only in digits
    "template": [
        [f"Harbour report page {n}", f"Dock {n} unloaded {n * 7} pallets of oranges.", f"hr_page_{n}"]
        for n in range(1, 4)
    ],
    "form": [
        ["Application form", "Applicant name:", name, "Signature:", "Form A-7 rev 3"]
        for name in ("Amelia Quartermaine", "Boris Vandersloot", "Chiara Montefalco")
    ],
    "certificate": [
        [
            "Certificate of Completion",
            "This certifies that",
            name,
            "completed the welding course",
            f"Issued 2024-0{n}-15",
        ]
        for n, name in enumerate(("Dmitri Okonkwo", "Esther Lindqvist", "Farid Haddadi"), 1)
    ],
    "slides": [
        ["Quarterly review", bullet, "Acme Corp | confidential"]
        for bullet in (
            "Revenue grew in Lisbon",
            "Churn fell in Osaka",
            "Hiring paused in Denver",
            "Margins held in Nairobi",
        )
    ],
}


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_template_pages_keep_their_text(kind, tmp_path):
    pages = TEMPLATES[kind]
    plans = _plans(_pdf(tmp_path / f"{kind}.pdf", pages))
    assert len(plans) == len(pages)
    for plan, lines in zip(plans, pages, strict=True):
        assert plan.text.strip(), (kind, plan.number)  # never stripped empty
        middle = lines[len(lines) // 2]  # the line that tells the pages apart is never a margin line
        assert middle in plan.text, (kind, plan.number, plan.text)
        assert plan.texts and any(middle in t for t in plan.texts)  # and it reaches the text legs


def test_running_headers_are_still_stripped(tmp_path):
    body = [("The turbine blade inspection found hairline cracks", "near the root fillet of stage two."),
            ("Replacement parts are due within the month,", "said the supervisor of the night shift."),
            ("Vibration readings stayed under the alarm limit", "while the rotor ran at full speed."),
            ("Bearing temperatures rose after the oil change", "and fell back within an hour."),
            ("The crew logged every torque value on the flange", "before the casing was closed.")]  # fmt: skip
    pages = [[f"Journal of Rotating Machinery {n}", *lines, f"Page {n}"] for n, lines in enumerate(body, 1)]
    plans = _plans(_pdf(tmp_path / "paper.pdf", pages))
    for plan in plans:
        assert "Journal of Rotating" not in plan.text and "Page " not in plan.text
    for plan, lines in zip(plans, body, strict=True):
        assert all(line in plan.text for line in lines)


def test_running_lines_are_short_lines_on_most_pages():
    long = "x" * 120
    pages = [f"{long}\nbody {i} alpha\nmore {i} beta\nfooter" for i in range(6)]
    got = running_lines(pages)
    assert "footer" in got and long not in got  # a long line is content
    rare = [("Header A\n" if i < 2 else "") + f"body text {i}\nsecond line\nfooter" for i in range(6)]
    assert "header a" not in running_lines(rare)  # 2 of 6 pages: not most
    assert strip_lines("Header 1\n7", {"header #"}) == "Header 1\n7"  # nothing left but a number: kept


def test_bm25_finds_template_pages(tmp_path):
    import docrag

    folder = tmp_path / "docs"
    folder.mkdir()
    for kind, pages in TEMPLATES.items():
        _pdf(folder / f"{kind}.pdf", pages)
    idx = docrag.open(tmp_path / "db", profile="lite", ingest={"ocr": False, "elements": "text-layer"})
    report = idx.add([folder])
    assert report.indexed == len(TEMPLATES) and not report.failed
    for query, file, page in (
        ("pallets of oranges dock", "template.pdf", None),
        ("Boris Vandersloot", "form.pdf", 2),
        ("Esther Lindqvist welding", "certificate.pdf", 2),
        ("churn Osaka", "slides.pdf", 2),
    ):
        hits = idx.search(query, k=3, legs=["bm25"])
        assert hits and Path(hits[0].file).name == file, (query, hits)
        assert page is None or hits[0].page == page, (query, hits[0])


def _bad_images(folder: Path) -> dict[str, str]:
    """A decodable photo, a header-only JPEG (629 bytes) and a truncated one."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    (folder / "photo.jpg").write_bytes(data)
    (folder / "header_only.jpg").write_bytes(data[:629])
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    return {"header_only.jpg": "cannot decode the image", "truncated.jpg": "cannot decode the image"}


def test_undecodable_images_fail_and_photos_without_a_leg_are_named(tmp_path):
    import docrag
    from docrag.pipeline.rows import UNSEARCHABLE

    folder = tmp_path / "docs"
    folder.mkdir()
    expected = _bad_images(folder)
    _pdf(folder / "words.pdf", [["A page of words that every leg can find."]])
    idx = docrag.open(tmp_path / "db", profile="lite", ingest={"ocr": False, "elements": "text-layer"})
    report = idx.add([folder])
    failed = {Path(f["file"]).name: f["error"] for f in report.failed}
    assert set(failed) == set(expected)
    assert all(expected[name] in why and "truncated" in why for name, why in failed.items())  # the decoder's reason
    assert report.indexed == 2  # the photo and the PDF: never a file without rows
    # lite has no image leg: the photo (no text) is stored, and the report and its reasons say it cannot be found
    assert [(Path(u["file"]).name, u["pages"]) for u in report.unsearchable] == [("photo.jpg", [1])]
    assert report.to_dict()["unsearchable"][0]["reason"] == UNSEARCHABLE
    photo = next(d for d in idx.documents() if d["path"].endswith("photo.jpg"))
    (reasons,) = [
        r["reasons"] for r in idx.store.pages.rows(columns=["doc_id", "reasons"]) if r["doc_id"] == photo["doc_id"]
    ]
    assert UNSEARCHABLE in reasons and not any("image leg" in r for r in reasons)
    assert idx.check()["ok"]


def test_check_flags_a_ready_document_without_its_page_rows(tmp_path):
    import docrag

    folder = tmp_path / "docs"
    folder.mkdir()
    _pdf(folder / "a.pdf", [["First page words here."], ["Second page words here."]])
    idx = docrag.open(tmp_path / "db", profile="lite", ingest={"ocr": False, "elements": "text-layer"})
    idx.add([folder])
    (doc,) = idx.documents()
    assert idx.check()["ok"]
    from docrag.indexes.schema import PAGES

    # a ready document whose page rows went (the documents row records them as it was): check says so
    store = idx.store
    store.db.delete(PAGES, f"doc_id = '{doc['doc_id']}'")
    store.documents.mark_ready(doc["doc_id"], {"pages": 0, "chunks": 2, "images": 0, "visual": 0})
    got = idx.check()
    assert not got["ok"] and got["inconsistent_documents"] == [doc["doc_id"]]


def test_a_zero_page_pdf_after_an_encrypted_one_is_called_empty(tmp_path):
    """PDFium's last error is stale after a load that succeeded: a page tree with no pages opened after an
    encrypted file in the same process was "encrypted: a password is required"."""
    from docrag.parsers import DocumentError, open_document
    from docrag.testing.pdfgen import encrypted_pdf, zero_pages_pdf

    enc, zero = encrypted_pdf(tmp_path / "enc.pdf"), zero_pages_pdf(tmp_path / "zero.pdf")
    reasons = []
    for path in (enc, zero, enc, zero):
        with pytest.raises(DocumentError) as err:
            open_document(path).close()
        reasons.append(err.value.reason)
    assert "password" in reasons[0] and "password" in reasons[2]
    assert reasons[1] == reasons[3] == "the PDF has zero pages (its page tree is empty)"


def test_near_empty_pages_are_routed_text(tmp_path):
    """A slide-shaped page of one large word and nothing drawn is not worth the visual leg."""
    from typer.testing import CliRunner

    from docrag.cli import app

    words = ["Agenda", "Questions", "Thanks", "Appendix"]
    c = canvas.Canvas(str(tmp_path / "dividers.pdf"), pagesize=(960, 540), invariant=1)
    for w in words:
        c.setFont("Helvetica-Bold", 54)
        c.drawString(120, 250, w)
        c.showPage()
    c.save()
    plans = _plans(tmp_path / "dividers.pdf")
    assert [p.route.route for p in plans] == ["text"] * len(words)
    assert all("nearly blank" in p.route.reasons[0] for p in plans)
    res = CliRunner().invoke(app, ["route", str(tmp_path / "dividers.pdf"), "--json"])
    assert res.exit_code == 0, res.output
    assert [p["route"] for p in json.loads(res.output)["pages"]] == ["text"] * len(words)


def test_a_search_says_how_many_documents_are_still_hidden(tmp_path):
    from typer.testing import CliRunner

    import docrag
    from docrag.cli import app

    folder = tmp_path / "docs"
    folder.mkdir()
    _pdf(folder / "a.pdf", [["Lighthouse keepers logged the fog signals."]])
    db = tmp_path / "db"
    idx = docrag.open(db, profile="lite", ingest={"ocr": False, "elements": "text-layer"})
    report = idx.add([folder])
    assert report.indexed == 1, report.to_dict()
    first = idx.search("fog signals")
    assert len(first) == 1 and first.hidden == 0
    # a document another run is indexing right now: its row exists, status "indexing", invisible to search
    idx.store.documents.add("d" * 16, str(folder / "b.pdf"), 10, 0.0, 40, {})
    hits = idx.search("fog signals")
    assert len(hits) == 1 and hits.hidden == 1
    runner = CliRunner()
    res = runner.invoke(app, ["search", "tidal charts", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["hidden"] == 1
    res = runner.invoke(app, ["search", "tidal charts", "--db", str(db)])
    assert "1 document(s) not searchable yet: being indexed" in res.output
