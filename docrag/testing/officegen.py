"""Small Office, OpenDocument, HTML and Markdown files for the tests, the examples and the benchmarks.

Written with python-docx, python-pptx, openpyxl and odfpy (the ``office`` extra); the legacy binary formats
(.doc, .ppt, .xls) by LibreOffice itself, from the OOXML ones (``legacy``). Every writer takes the words to
plant, so a test can search for them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["docx", "legacy", "legacy_fixtures", "mixed_example", "odp", "ods", "odt", "pptx", "rtf", "xlsx"]


def docx(path: Path, title: str, paragraphs: Sequence[str], table: Sequence[Sequence[str]] = ()) -> Path:
    """A Word document: a heading, paragraphs, then a table (first row: the header)."""
    import docx as _docx

    doc = _docx.Document()
    doc.add_heading(title, 1)
    for p in paragraphs:
        doc.add_paragraph(p)
    if table:
        t = doc.add_table(rows=len(table), cols=len(table[0]))
        t.style = "Table Grid"
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                t.cell(r, c).text = str(cell)
    doc.save(path)
    return path


def pptx(
    path: Path,
    slides: Sequence[tuple[str, str]],
    chart: tuple[int, str, Sequence[str], Sequence[float]] | None = None,
) -> Path:
    """A presentation: one slide per (title, body); ``chart`` = (slide number, title, categories, values) adds a
    column chart to that slide."""
    from pptx import Presentation
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    prs = Presentation()
    for i, (title, body) in enumerate(slides, start=1):
        slide = prs.slides.add_slide(prs.slide_layouts[5 if chart and chart[0] == i else 1])
        slide.shapes.title.text = title
        if chart and chart[0] == i:
            _, name, cats, values = chart
            data = CategoryChartData()
            data.categories = list(cats)
            data.add_series(name, list(values))
            frame = slide.shapes.add_chart(
                XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(1.6), Inches(8), Inches(4.5), data
            )
            frame.chart.has_title = True
            frame.chart.chart_title.text_frame.text = name
            box = slide.shapes.add_textbox(Inches(1), Inches(6.2), Inches(8), Inches(0.8))
            box.text_frame.text = body
        else:
            slide.placeholders[1].text = body
    prs.save(path)
    return path


def xlsx(path: Path, rows: Sequence[Sequence[object]], sheet: str = "Sheet1") -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for row in rows:
        ws.append(list(row))
    wb.save(path)
    return path


def odt(path: Path, paragraphs: Sequence[str]) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    doc = OpenDocumentText()
    for p in paragraphs:
        doc.text.addElement(P(text=p))
    doc.save(str(path))
    return path


def odp(path: Path, slides: Sequence[str]) -> Path:
    """An OpenDocument presentation: one slide per text."""
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout, PageLayoutProperties
    from odf.text import P

    doc = OpenDocumentPresentation()
    layout = PageLayout(name="Layout")
    layout.addElement(PageLayoutProperties(pagewidth="28cm", pageheight="21cm", printorientation="landscape"))
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Default", pagelayoutname=layout)
    doc.masterstyles.addElement(master)
    for i, text in enumerate(slides, start=1):
        page = Page(name=f"slide{i}", masterpagename=master)
        frame = Frame(width="24cm", height="6cm", x="2cm", y="3cm")
        box = TextBox()
        box.addElement(P(text=text))
        frame.addElement(box)
        page.addElement(frame)
        doc.presentation.addElement(page)
    doc.save(str(path))
    return path


def ods(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="Sheet1")
    for row in rows:
        tr = TableRow()
        for value in row:
            cell = TableCell(valuetype="string")
            cell.addElement(P(text=str(value)))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    doc.save(str(path))
    return path


def rtf(path: Path, paragraphs: Sequence[str]) -> Path:
    body = "".join(p.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}") + "\\par\n" for p in paragraphs)
    path.write_text("{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Helvetica;}}\\f0\\fs24\n" + body + "}\n")
    return path


def legacy(sources: Sequence[Path], target: str, outdir: Path, timeout_s: float = 120) -> list[Path]:
    """``sources`` converted by LibreOffice to ``target`` ("doc", "ppt", "xls") in ``outdir``, in one run."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise RuntimeError("LibreOffice (soffice) is not installed")
    with tempfile.TemporaryDirectory(prefix="docrag-lo-gen-") as profile:
        subprocess.run(
            [
                soffice,
                f"-env:UserInstallation={Path(profile).as_uri()}",
                "--headless",
                "--norestore",
                "--convert-to",
                target,
                "--outdir",
                str(outdir),
                *map(str, sources),
            ],
            check=True,
            capture_output=True,
            timeout=timeout_s,
        )
    out = [outdir / f"{Path(s).stem}.{target}" for s in sources]
    missing = [p for p in out if not p.is_file()]
    if missing:
        raise RuntimeError(f"LibreOffice did not write {', '.join(map(str, missing))}")
    return out


def legacy_fixtures(folder: Path) -> list[Path]:
    """tests/data's old.doc and old.ppt (committed: two LibreOffice cold starts cost seconds in every session):
    ``python -m docrag.testing.officegen tests/data`` writes them again."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        doc = docx(src / "old.docx", "Old minutes", ["The dugong survey was approved."])
        ppt = odp(src / "old.odp", ["Agenda and opening", "Reptiles: the gharial enclosure"])  # (small: no template)
        return [*legacy([doc], "doc", folder), *legacy([ppt], "ppt", folder)]


MIXED_NOTES = """# Field station notes

The field station in Fjordland counts seabirds every spring; the report and the review deck beside these
notes give this season's figures.

## Method

Volunteers walk the same transect each morning and record every puffin, guillemot and razorbill they see.
Counts are checked against photographs before they are entered.
"""


def mixed_example(folder: Path) -> list[Path]:
    """examples/mixed: a report with a table (.docx), a deck with a chart (.pptx) and notes (.md), all small.
    ``python -m docrag.testing.officegen --example examples/mixed`` writes them again."""
    folder.mkdir(parents=True, exist_ok=True)
    report = docx(
        folder / "report.docx",
        "Seabird census 2026",
        ["Breeding pairs counted at the Fjordland field station, by species and colony."],
        [
            ["Species", "North cliff", "South cliff", "Total"],
            ["Puffin", "412", "388", "800"],
            ["Guillemot", "1,230", "990", "2,220"],
            ["Razorbill", "75", "61", "136"],
        ],
    )
    deck = pptx(
        folder / "deck.pptx",
        [
            ("Field station review", "Fjordland, spring season"),
            ("Visitors", "Monthly visitors to the station"),
            ("Next steps", "Extend the transect to the south cliff"),
        ],
        chart=(2, "Monthly visitors", ["March", "April", "May", "June"], [120.0, 340.0, 560.0, 610.0]),
    )
    notes = folder / "notes.md"
    notes.write_text(MIXED_NOTES)
    return [report, deck, notes]


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--example"]:
        written = mixed_example(Path(sys.argv[2] if len(sys.argv) > 2 else "examples/mixed"))
    else:
        written = legacy_fixtures(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data"))
    for p in written:
        print(p)
