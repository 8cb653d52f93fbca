"""Text and files that went missing without a word (issue 25): template pages stripped empty, undecodable
images "ready" with no rows, unsearchable photos, a zero-page PDF called encrypted, near-empty pages sent to
the visual leg, a search that hides documents still being indexed."""

from __future__ import annotations

import json
import shutil
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


def _bad_images(folder: Path) -> dict[str, str]:
    """A decodable photo, a header-only JPEG (629 bytes) and a truncated one (twice, under two names)."""
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
    (folder / "truncated copy.jpg").write_bytes(data[: len(data) // 2])  # the same bytes: failed too, not a "copy"
    return {"header_only.jpg": "cannot decode the image", "truncated.jpg": "cannot decode the image"}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """One lite index (built once for this module's read-only tests) of the template documents, a photo, two
    undecodable JPEGs and a page of prose: (folder, database, the run's report)."""
    import docrag

    root = tmp_path_factory.mktemp("gaps")
    folder = root / "docs"
    folder.mkdir()
    for kind, pages in TEMPLATES.items():
        _pdf(folder / f"{kind}.pdf", pages)
    _bad_images(folder)
    _pdf(folder / "lighthouse.pdf", [["Lighthouse keepers logged the fog signals."], ["The lamp was trimmed."]])
    report = docrag.open(root / "db", profile="lite", ingest={"ocr": False, "elements": "text-layer"}).add([folder])
    return folder, root / "db", report


def _copy(db: Path, tmp_path: Path):
    """A copy of the shared database to change, opened."""
    import docrag

    shutil.copytree(db, tmp_path / "db")
    idx = docrag.open(tmp_path / "db")
    idx.store.db.writable = True  # as a run that writes has it
    return idx


def test_bm25_finds_template_pages(indexed):
    import docrag

    idx = docrag.open(indexed[1])
    for query, file, page in (
        ("pallets of oranges dock", "template.pdf", None),
        ("Boris Vandersloot", "form.pdf", 2),
        ("Esther Lindqvist welding", "certificate.pdf", 2),
        ("churn Osaka", "slides.pdf", 2),
    ):
        hits = idx.search(query, k=3, legs=["bm25"])
        assert hits and Path(hits[0].file).name == file, (query, hits)
        assert page is None or hits[0].page == page, (query, hits[0])


def test_undecodable_images_fail_and_photos_without_a_leg_are_named(indexed):
    import docrag
    from docrag.pipeline.rows import UNSEARCHABLE

    _, db, report = indexed
    failed = {Path(f["file"]).name: f["error"] for f in report.failed}
    # every path of bytes that failed is named, the second copy of the truncated JPEG too (it was a "duplicate")
    assert set(failed) == {"header_only.jpg", "truncated.jpg", "truncated copy.jpg"} and report.duplicates == 0
    assert all("cannot decode the image" in why and "truncated" in why for why in failed.values())  # the decoder's
    assert report.indexed == len(TEMPLATES) + 2  # the photo and the prose too: never a file without rows
    # lite has no image leg: the photo (no text) is stored, and the report and its reasons say it cannot be found
    assert [(Path(u["file"]).name, u["pages"]) for u in report.unsearchable] == [("photo.jpg", [1])]
    assert report.to_dict()["unsearchable"][0]["reason"] == UNSEARCHABLE
    idx = docrag.open(db)
    photo = next(d for d in idx.documents() if d["path"].endswith("photo.jpg"))
    (reasons,) = [
        r["reasons"] for r in idx.store.pages.rows(columns=["doc_id", "reasons"]) if r["doc_id"] == photo["doc_id"]
    ]
    assert UNSEARCHABLE in reasons and not any("image leg" in r for r in reasons)
    assert idx.check()["ok"]


def test_check_flags_a_ready_document_without_its_page_rows(indexed, tmp_path):
    from docrag.indexes.schema import PAGES

    idx = _copy(indexed[1], tmp_path)
    doc = next(d for d in idx.documents() if d["path"].endswith("lighthouse.pdf"))
    # a ready document whose page rows went (and whose recorded counts say so): check still says it is wrong
    idx.store.db.delete(PAGES, f"doc_id = '{doc['doc_id']}'")
    idx.store.documents.mark_ready(doc["doc_id"], {"pages": 0, "chunks": 2, "images": 0, "visual": 0})
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


def test_a_search_says_how_many_documents_are_still_hidden(indexed, tmp_path):
    from typer.testing import CliRunner

    from docrag.cli import app

    folder, _, _ = indexed
    idx = _copy(indexed[1], tmp_path)
    first = idx.search("fog signals", k=1)
    assert len(first) == 1 and first.hidden == 0
    # a document another run is indexing right now: its row exists, status "indexing", invisible to search
    idx.store.documents.add("d" * 16, str(folder / "b.pdf"), 10, 0.0, 40, {})
    hits = idx.search("fog signals", k=1)
    assert len(hits) == 1 and hits.hidden == 1
    runner = CliRunner()
    res = runner.invoke(app, ["search", "tidal charts", "--db", str(tmp_path / "db"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["hidden"] == 1
    res = runner.invoke(app, ["search", "tidal charts", "--db", str(tmp_path / "db")])
    assert "1 document(s) not searchable yet: being indexed" in res.output


def _elements_hang_pdf(path: Path) -> Path:
    """Two pages without a text layer, then text pages, one of whose content streams has a /Length that refers
    round a cycle: PDFium reads it, pdfminer (unstructured's element extraction) loops on it until its budget
    runs out. The first two pages are delivered before the extraction starts."""
    from docrag.testing.pdfgen import raw_pdf

    def stream(data: bytes, length: bytes | None = None) -> bytes:
        return b"<< /Length " + (length or b"%d" % len(data)) + b" >>\nstream\n" + data + b"\nendstream"

    def page(content: int) -> bytes:
        resources = b"/Resources << /Font << /F1 10 0 R >> >>"
        return b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R %s >>" % (content, resources)

    text = b"BT /F1 12 Tf 72 700 Td (Tide tables for the northern harbour, printed weekly.) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R 6 0 R] /Count 4 >>",
        page(7),
        page(7),
        page(8),
        page(9),
        stream(b""),
        stream(text.replace(b"Tide", b"Cycle"), length=b"11 0 R"),
        stream(text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"12 0 R",
        b"11 0 R",
    ]
    path.write_bytes(raw_pdf(objects))
    return path


def _partial_pdf(path: Path) -> Path:
    """A page tree that counts two pages and lists one: PDFium cannot load page 2."""
    from docrag.testing.pdfgen import raw_pdf

    text = b"BT /F1 12 Tf 72 700 Td (Kestrels nest on the cliff ledge every spring.) Tj ET"
    resources = b"/Resources << /Font << /F1 5 0 R >> >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R %s >>" % resources,
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    path.write_bytes(raw_pdf(objects))
    return path


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_each_page_written_once_and_unreadable_pages_reported(engine, tmp_path, request, capfd):
    """With both engines: a document planned again after element extraction gave up writes each page once (its
    first two pages went out before); a page that cannot be read is the document's warning in the summary,
    not a log line on stderr."""
    import docrag

    if engine == "ray":
        request.getfixturevalue("ray_local")
    folder = tmp_path / "docs"
    folder.mkdir()
    _elements_hang_pdf(folder / "hang.pdf")
    _partial_pdf(folder / "partial.pdf")
    idx = docrag.open(tmp_path / "db", profile="lite", ingest={"ocr": False, "page_batch": 1, "elements_timeout_s": 1})
    report = idx.add([folder], engine=engine)
    assert report.indexed == 2 and report.pages == 5 and not report.failed, report.to_dict()
    hang = next(d["doc_id"] for d in idx.documents() if d["path"].endswith("hang.pdf"))
    rows = [r for r in idx.store.pages.rows(columns=["doc_id", "page", "reasons"]) if r["doc_id"] == hang]
    assert sorted(r["page"] for r in rows) == [1, 2, 3, 4]  # pages 1 and 2 went out before the retry: once
    assert any("elements taken from the text layer" in x for r in rows if r["page"] == 4 for x in r["reasons"])
    assert [(Path(w["file"]).name, w["warning"]) for w in report.warnings] == [
        ("partial.pdf", "page 2: cannot load the page (Failed to load page.)")
    ]
    assert idx.check()["ok"]
    assert "cannot load the page" not in capfd.readouterr().err


def _pages_state(db: Path) -> tuple[dict[str, str], list[tuple[str, int, str]]]:
    """Each document's status, and the page rows (doc_id, page, text), read as another process would."""
    from docrag.indexes.store import Store

    if not Store.exists(db):
        return {}, []
    store = Store(db)
    docs = {r["doc_id"]: r["status"] for r in store.documents.rows(columns=["doc_id", "status"])}
    rows = sorted((r["doc_id"], r["page"], r["text"]) for r in store.pages.rows(columns=["doc_id", "page", "text"]))
    return docs, rows


def _index_until(db: Path, folder: Path, cfg: Path, enough) -> None:
    """``docrag index FOLDER`` in its own process, killed (SIGKILL, its whole group) as soon as
    ``enough(docs, rows)`` holds for what another process reads of the database (``_pages_state``)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cmd = [str(Path(sys.executable).parent / "docrag"), "index", str(folder), "--db", str(db), "--config", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if enough(*_pages_state(db)):
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract to make indexing slow enough")
def test_a_kill_late_keeps_every_finished_document(tmp_path):
    """Six one-page scans (OCR'd: a few seconds each) in one batch of eight pages: each document is written and
    ready as soon as it is planned, so a kill after half of them keeps those, and the rerun does only the rest."""
    from docrag.testing import pdfgen

    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(6):
        pdfgen.scans_pdf(folder / f"scan{i}.pdf", n_pages=1, seed=i)
    cfg = tmp_path / "docrag.toml"
    cfg.write_text("profile = 'lite'\n[ingest]\nocr = true\nocr_dpi = 100\nelements = 'text-layer'\n")
    db = tmp_path / "db"
    _index_until(db, folder, cfg, lambda docs, rows: sum(s == "ready" for s in docs.values()) >= 3)
    docs, _ = _pages_state(db)
    kept = sorted(d for d, s in docs.items() if s == "ready")
    assert 3 <= len(kept) < 6, docs  # killed with documents to go; the finished ones stay ready

    import docrag

    report = docrag.open(db, config=cfg).add([folder])
    assert report.skipped == len(kept) and report.indexed == 6 - len(kept) and not report.failed
    clean = docrag.open(tmp_path / "clean", config=cfg).add([folder])
    assert clean.indexed == 6
    assert _pages_state(db) == _pages_state(tmp_path / "clean")  # the same rows as a clean build


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract to make indexing slow enough")
def test_a_kill_mid_document_resumes_from_its_written_pages(tmp_path):
    import docrag
    from docrag.testing import pdfgen

    folder = tmp_path / "scans"
    folder.mkdir()
    pdfgen.scans_pdf(folder / "long.pdf", n_pages=8, seed=4)
    cfg = tmp_path / "docrag.toml"
    cfg.write_text("profile = 'lite'\n[ingest]\nocr = true\nocr_dpi = 100\npage_batch = 1\nelements = 'text-layer'\n")
    db = tmp_path / "db"
    _index_until(db, folder, cfg, lambda docs, rows: len(rows) >= 3)
    docs, written = _pages_state(db)
    assert set(docs.values()) == {"indexing"} and 3 <= len(written) < 8, (docs, len(written))
    from clirun import invoke

    said = invoke("check", "--db", str(db))  # consistent, and it says a document waits for the rerun
    assert said.returncode == 0 and "1 document(s) not finished (hidden from search)" in said.stdout, said

    idx = docrag.open(db, config=cfg)
    assert idx.search("the").hidden == 1 and not idx.search("the")  # its written pages stay hidden meanwhile
    ticks = []
    report = idx.add([folder], progress=lambda event, data: ticks.append((event, data)))
    assert report.indexed == 1 and report.pages == 8 and not report.failed
    assert sum(d["n"] for e, d in ticks if e == "pages") == 8 - len(written)  # only the rest was planned and written
    assert idx.check()["ok"]
    docrag.open(tmp_path / "clean", config=cfg).add([folder])
    assert _pages_state(db) == _pages_state(tmp_path / "clean")  # the same rows as a clean build


def test_a_rerun_with_metadata_gives_it_to_the_unchanged_documents(indexed, tmp_path):
    """--meta on a run that finds every file unchanged: the documents take it (it was dropped without a word);
    a value JSON cannot keep is refused naming its key, before anything is written."""
    import datetime as dt

    folder = indexed[0]
    idx = _copy(indexed[1], tmp_path)
    with pytest.raises(ValueError, match=r"^metadata 'when': a date is not stored as JSON"):
        idx.add([folder], metadata={"when": dt.date(2024, 1, 1)})
    report = idx.add([folder], metadata={"project": "lighthouse"})
    assert report.indexed == 0 and report.skipped == len(TEMPLATES) + 2
    assert {str(d["metadata"]) for d in idx.documents()} == {"{'project': 'lighthouse'}"}
    hits = idx.search("lamp trimmed", k=3, where={"project": "lighthouse"}, legs=["bm25"])
    assert hits and Path(hits[0].file).name == "lighthouse.pdf" and hits[0].metadata == {"project": "lighthouse"}
    assert hits[0].confidence is None or f"confidence={hits[0].confidence:.2f}" in repr(hits[0])
    none = idx.search("lamp trimmed", where={"project": "other"})
    assert not none and list(none.to_pandas().columns[:6]) == ["rank", "file", "doc_id", "page", "score", "confidence"]
