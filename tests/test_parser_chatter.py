"""What third-party parsers say about a damaged page ends up on that page and in the run's report, naming the file
and the page, and never bare on stderr: ``docrag -v index`` shows it, ``docrag index`` counts it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from clirun import invoke

import docrag

MESSAGE = "pdfminer: Cannot set non-stroke color: /'R7' is an invalid float value"
LITE = {"ocr": False, "elements": "unstructured"}  # pdfminer reads the pages (behind unstructured)


def _damaged_pdf(path: Path) -> Path:
    """Two pages of prose; page 2's content stream sets a fill colour with a name where a number belongs, three
    times (PDFium ignores it; pdfminer logs a warning each time)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for page, topic in ((1, "harbour tides and the lighthouse keeper"), (2, "photosynthesis in green leaves")):
        c.setFont("Helvetica", 11)
        for i in range(12):
            if page == 2 and i % 4 == 0:
                c._code.append("/R7 scn")  # the operand pdfminer cannot read as a grey level
            c.drawString(72, 760 - 16 * i, f"Page {page}, line {i + 1}: a sentence about {topic}.")
        c.showPage()
    c.save()
    return path


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> Path:
    return _damaged_pdf(tmp_path_factory.mktemp("chatter") / "damaged.pdf")


def test_parser_warnings_go_to_the_page_and_the_report_not_to_stderr(damaged, tmp_path, capfd, caplog):
    caplog.set_level(logging.WARNING)
    index = docrag.open(tmp_path / "db", profile="lite", ingest=LITE)
    report = index.add([damaged], workers=0)  # in this process: nothing between the parser and the terminal
    assert report.indexed == 1 and not report.failed
    assert report.warnings == [
        {"file": str(damaged), "warning": f"page 2: parser warning: {MESSAGE} (3 times)", "source": "parser"}
    ]
    reasons = {r["page"]: r["reasons"] for r in index.store.pages.rows(columns=["page", "reasons"])}
    assert f"parser warning: {MESSAGE} (3 times)" in reasons[2]
    assert not any("parser warning" in r for r in reasons[1])
    assert "Cannot set" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.name.startswith("pdfminer")]  # none reached the root logger


def test_index_counts_them_and_verbose_names_file_and_page(damaged, tmp_path):
    quiet = invoke("index", damaged, "--db", tmp_path / "quiet.db", "--profile", "lite", "--workers", "0")
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stdout.splitlines()
    assert lines[0].startswith("indexed 1, skipped 0 unchanged, removed 0; 2 pages"), lines
    assert lines[1] == "1 parser warning(s) in 1 file(s): `docrag -v index …` shows them"
    assert "Cannot set" not in quiet.stdout + quiet.stderr

    loud = invoke("-v", "index", damaged, "--db", tmp_path / "loud.db", "--profile", "lite", "--workers", "0")
    assert loud.returncode == 0, loud.stderr
    assert f"warning {damaged}: page 2: parser warning: {MESSAGE} (3 times)" in loud.stdout.splitlines()
    assert "Cannot set" not in loud.stderr  # the worker's own stderr: nothing bare
