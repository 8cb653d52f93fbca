"""Formats beside PDFs and images (issue 28): detection, --formats, Office files converted by LibreOffice,
HTML, Markdown and plain text as text pages, refusals of hostile Office files.

LibreOffice starts cost seconds: every Office file is converted in ONE indexing run over one folder of all the
formats (the session fixture ``mixed``), and each test asserts on that shared result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from clirun import invoke

from docrag.parsers import (
    FAMILIES,
    DocumentError,
    OpenContext,
    UnknownFormatError,
    detect,
    list_documents,
    open_document,
    parse_families,
)
from docrag.parsers.limits import Limits
from docrag.parsers.office import ConvertOptions, convert_to_pdf
from docrag.parsers.textdoc import split_pages
from docrag.testing import officegen as gen

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples"
needs_lo = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (make system-deps installs it)")

# file name -> (the word planted in it, the page or slide it is on)
PLANTED = {
    "report.docx": ("wolverine", 1),
    "deck.pptx": ("marmoset", 2),
    "sheet.xlsx": ("flamingo", 1),
    "letter.odt": ("okapi", 1),
    "talk.odp": ("pangolin", 2),
    "table.ods": ("tapir", 1),
    "memo.rtf": ("quetzal", 1),
    "old.doc": ("dugong", 1),
    "old.ppt": ("gharial", 2),
    "notes.md": ("axolotl", 1),
    "page.html": ("ocelot", 1),
    "readme.txt": ("capybara", 1),
}


def _write_all(d: Path) -> None:
    # .doc and .ppt: made by LibreOffice from python-docx/-pptx files (``officegen.legacy_fixtures``), committed
    for name in ("old.doc", "old.ppt"):
        shutil.copy(DATA / name, d / name)
    gen.docx(
        d / "report.docx",
        "Fauna census",
        ["Counts from the northern fjord, by species."],
        [["Species", "Count"], ["Wolverine", "17"], ["Lynx", "4"]],
    )
    gen.pptx(
        d / "deck.pptx",
        [("Opening", "Welcome to the quarterly meeting"), ("Division results", "Revenue of the marmoset division")],
        chart=(2, "Revenue by quarter", ["Q1", "Q2", "Q3"], [3.0, 5.0, 4.0]),
    )
    gen.xlsx(d / "sheet.xlsx", [["Item", "Cost"], ["Flamingo feed", 1234], ["Hay", 56]])
    gen.odt(d / "letter.odt", ["A letter about the okapi sanctuary and its visitors."])
    gen.odp(d / "talk.odp", ["First slide on the weather", "Second slide about the pangolin"])
    gen.ods(d / "table.ods", [["Animal", "Legs"], ["Tapir", "4"]])
    gen.rtf(d / "memo.rtf", ["A memo concerning the quetzal migration."])
    (d / "img").mkdir()
    from PIL import Image

    Image.new("RGB", (120, 90), (20, 120, 200)).save(d / "img" / "lake.png")
    (d / "notes.md").write_text(
        "# Field notes\n\nThe axolotl lives in lakes near the city.\n\n![the lake](img/lake.png)\n\n"
        "![remote](https://example.com/x.png)\n"
    )
    (d / "page.html").write_text(
        "<!doctype html><html><head><title>Wild cats</title><script>var s = 'scriptonly';</script></head>"
        "<body><p>The ocelot is a wild cat.</p><img src='img/lake.png' alt='lake'></body></html>"
    )
    (d / "readme.txt").write_text("A plain text file about the capybara.\n")
    (d / "data.xyz").write_text("not a document")


@pytest.fixture(scope="session")
def mixed(tmp_path_factory):
    """One folder of every format, indexed once (lite profile, 2 workers): (index, folder, report)."""
    if shutil.which("soffice") is None:
        pytest.skip("LibreOffice (make system-deps installs it)")
    import docrag

    root = tmp_path_factory.mktemp("mixed")
    folder = root / "docs"
    folder.mkdir()
    _write_all(folder)
    idx = docrag.open(root / "db", profile="lite", ingest={"ocr": False, "elements": "text-layer"})
    report = idx.add([folder], workers=2)
    return idx, folder, report


# -- detection, --formats (no LibreOffice) ---------------------------------------------------------------------


def test_formats_are_detected_by_suffix_and_by_content(tmp_path, docs):
    gen.docx(tmp_path / "a.docx", "T", ["x"])
    gen.odt(tmp_path / "b.odt", ["x"])
    gen.pptx(tmp_path / "c.pptx", [("T", "x")])
    for src, name in (
        (docs["prose"], "scan"),
        (docs["photo_png"], "photo"),
        (tmp_path / "a.docx", "report.bin"),
        (tmp_path / "b.odt", "letter.dat"),
        (tmp_path / "c.pptx", "deck"),
    ):
        shutil.copy(src, tmp_path / name)
    (tmp_path / "memo").write_text("{\\rtf1\\ansi hello\\par}")
    (tmp_path / "page.php").write_text("<!DOCTYPE html><html><body>hi</body></html>")
    (tmp_path / "README").write_text("plain words\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")  # text, but an unknown suffix: never read as text
    (tmp_path / "blob").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "notes.md").write_text("# hi")
    got = {p.name: getattr(detect(p), "name", None) for p in tmp_path.iterdir()}
    assert got == {
        "a.docx": "docx",
        "b.odt": "odt",
        "c.pptx": "pptx",
        "scan": "pdf",
        "photo": "image",
        "report.bin": "docx",
        "letter.dat": "odt",
        "deck": "pptx",
        "memo": "rtf",
        "page.php": "html",
        "README": "text",
        "data.csv": None,
        "blob": None,
        "notes.md": "markdown",
    }
    # A known suffix decides: an HTML error page named .pdf is a broken PDF, not a web page.
    (tmp_path / "error.pdf").write_text("<!DOCTYPE html><html>403</html>")
    assert detect(tmp_path / "error.pdf").name == "pdf"


def test_formats_restrict_a_listing_and_unknown_ones_are_one_line(tmp_path, docs):
    shutil.copy(docs["prose"], tmp_path / "a.pdf")
    (tmp_path / "b.md").write_text("# notes\n\nwords")
    gen.docx(tmp_path / "c.docx", "T", ["x"])
    listing = list_documents([tmp_path], families=parse_families("text"))
    assert [p.name for p in listing.files] == ["b.md"]
    assert sorted(Path(p).name for p in listing.not_documents) == ["a.pdf", "c.docx"]
    assert listing.skipped_line().startswith("skipped 2 file(s) that are not of the formats asked for (text): ")
    assert [p.name for p in list_documents([tmp_path]).files] == ["a.pdf", "b.md", "c.docx"]
    assert parse_families(" pdf, Office ") == {"pdf", "office"} and parse_families(None) is None
    with pytest.raises(UnknownFormatError, match="unknown format word: choose from pdf, image, office, html, text"):
        parse_families("pdf,word")
    res = invoke("index", tmp_path, "--db", tmp_path / "db", "--formats", "pdf,word")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"error --formats: unknown format word: choose from {', '.join(FAMILIES)}"
    ]
    assert not (tmp_path / "db").exists()


# -- text documents ---------------------------------------------------------------------------------------------


def test_text_pages_are_bounded_and_stable():
    paras = [f"Paragraph {i} " + "word " * (i % 70) for i in range(400)]
    text = "\n\n".join(paras)
    pages = split_pages(text, 1000)
    assert all(0 < len(p) <= 1000 for p in pages) and len(pages) > 10
    assert split_pages(text, 1000) == pages
    assert split_pages(text + "\n\nA new last paragraph.", 1000)[:-1] == pages[:-1]  # an edit at the end
    assert split_pages("x" * 2500, 1000) == ["x" * 1000, "x" * 1000, "x" * 500]  # no space: cut anyway


def test_web_pages_fetch_nothing_and_link_only_images_inside_the_folder(tmp_path):
    from PIL import Image

    outside, folder = tmp_path / "outside", tmp_path / "site"
    (folder / "img").mkdir(parents=True)
    outside.mkdir()
    for p in (folder / "img" / "in.png", outside / "out.png"):
        Image.new("RGB", (40, 40), "red").save(p)
    (folder / "img" / "link.png").symlink_to(outside / "out.png")  # a link that leads out
    (folder / "page.html").write_text(
        "<html><head><style>p {color: red}</style><script>stolen()</script></head><body>"
        "<h1>Title words</h1><p>Body &amp; more</p><table><tr><td>cell one</td><td>cell two</td></tr></table>"
        "<img src='img/in.png'><img src='../outside/out.png'><img src='img/link.png'>"
        "<img src='http://example.com/a.png'><img src='//cdn.example.com/b.png'><img src='data:image/png;base64,AA'>"
        "</body></html>"
    )
    with open_document(folder / "page.html") as doc:
        page = doc.page(1)
        assert "stolen" not in page.text and "color" not in page.text
        assert "Title words" in page.text and "Body & more" in page.text and "cell one | cell two" in page.text
        assert page.linked_images == [str((folder / "img" / "in.png").resolve())]
        assert sorted(doc.warnings) == [
            "2 image reference(s) left out: outside the folder being indexed",
            "3 image reference(s) left out: remote (never fetched)",
        ]
        assert page.render(36).size == (298, 421)  # drawn text for thumbnails


def test_markdown_images_go_to_the_image_leg(tmp_path):
    from PIL import Image

    from docrag.pipeline.options import IngestConfig, RouterConfig
    from docrag.pipeline.plan import PlanOptions, plan_document

    (tmp_path / "img").mkdir()
    Image.new("RGB", (200, 100), "blue").save(tmp_path / "img" / "chart.png")
    (tmp_path / "notes.md").write_text("# Notes\n\nSome prose here.\n\n![a chart](img/chart.png)\n\nMore prose.\n")
    opts = PlanOptions.build(RouterConfig(), IngestConfig(ocr=False), Limits(), visual=True, figures=True)
    plans = [p for kind, data in plan_document(tmp_path / "notes.md", opts) if kind == "pages" for p in data]
    (plan,) = plans
    assert plan.route.route == "text" and plan.visual_image is None  # a text page: never the visual leg
    assert [f.image.size for f in plan.figures] == [(200, 100)]
    assert "a chart" in plan.text and "img/chart.png" not in plan.text
    assert plan.texts == ["# Notes", "Some prose here.", "a chart", "More prose."]


# -- Office files: refused before LibreOffice sees them ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("office/zip_bomb.docx", "a ZIP bomb?"),
        ("office/entity_bomb.docx", "declares XML entities"),
        ("office/entity_bomb.odt", "declares XML entities"),
        ("office/many_slides.pptx", "has 5,000 slides, over max_pages (30)"),
    ],
)
def test_hostile_office_files_are_refused_before_conversion(tmp_path, name, reason):
    import hostile

    hostile.build_hostile_folder(tmp_path, skip=[k for k in hostile.KINDS if k != name])
    opts = ConvertOptions(soffice="no-such-soffice")  # refused before any conversion is tried
    with pytest.raises(DocumentError, match=re.escape(reason)) as err:
        open_document(tmp_path / name, Limits(max_pages=30), context=OpenContext(opts))
    assert err.value.file == str(tmp_path / name)


def test_macros_and_passwords_are_refused_with_their_reason(tmp_path):
    import zipfile

    gen.docx(tmp_path / "plain.docx", "T", ["x"])
    with zipfile.ZipFile(tmp_path / "plain.docx") as src, zipfile.ZipFile(tmp_path / "macro.docm", "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("word/vbaProject.bin", b"\x00" * 64)
    gen.odt(tmp_path / "plain.odt", ["x"])
    with zipfile.ZipFile(tmp_path / "plain.odt") as src, zipfile.ZipFile(tmp_path / "locked.odt", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "META-INF/manifest.xml":
                data = data.replace(b"</manifest:manifest>", b"<manifest:encryption-data/></manifest:manifest>")
            dst.writestr(info, data)
    # An encrypted OOXML file is an OLE2 container holding an EncryptedPackage stream.
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + "EncryptedPackage".encode("utf-16-le") + bytes(1000)
    (tmp_path / "locked.xlsx").write_bytes(ole)
    (tmp_path / "broken.pptx").write_bytes(b"PK\x03\x04 this is not really a zip")
    no_lo = OpenContext(ConvertOptions(soffice="no-such-soffice"))
    for name, reason in (
        ("macro.docm", "has macros (vbaProject.bin); docrag does not open files with macros"),
        ("locked.odt", "password-protected"),
        ("locked.xlsx", "password-protected"),
        ("broken.pptx", "not a valid .pptx file"),
    ):
        with pytest.raises(DocumentError, match=re.escape(reason)):
            open_document(tmp_path / name, context=no_lo)


# -- every format, indexed in one run ----------------------------------------------------------------------------


@pytest.mark.slow
@needs_lo
@pytest.mark.parametrize("name", sorted(PLANTED))
def test_each_format_is_indexed_and_found_on_its_page(mixed, name):
    idx, folder, _ = mixed
    word, page = PLANTED[name]
    hits = idx.search(word, k=3)
    assert hits, word
    top = hits[0]
    assert (Path(top.file), top.page) == (folder / name, page), [(h.file, h.page) for h in hits]


@pytest.mark.slow
@needs_lo
def test_the_mixed_run_reports_what_it_did(mixed):
    idx, folder, report = mixed
    assert report.failed == [] and report.indexed == len(PLANTED) + 1  # and the image the pages link to
    assert report.not_documents == [str(folder / "data.xyz")]
    # The documents are the original files; their converted PDFs are the database's cache, by content hash.
    paths = {Path(p).name for d in idx.documents() for p in d["paths"]}
    assert {"report.docx", "deck.pptx", "old.ppt"} <= paths and not any(p.endswith(".pdf") for p in paths)
    cache = idx.store.conversion_cache()  # the session's DOCRAG_CACHE_DIR (tests/conftest.py)
    assert cache.is_relative_to(os.environ["DOCRAG_CACHE_DIR"]) and len(list(cache.glob("*/*.pdf"))) >= 9
    # No script text and no remote reference made it into an index.
    assert idx.search("scriptonly", k=3, legs=["bm25"]) == []
    warned = {(Path(w["file"]).name, w["warning"]) for w in report.warnings}
    assert ("notes.md", "1 image reference(s) left out: remote (never fetched)") in warned


@pytest.mark.slow
@needs_lo
def test_a_converted_page_renders_from_the_cache_without_libreoffice(mixed):
    idx, folder, _ = mixed
    (hit,) = idx.search("marmoset", k=1)
    cached = ConvertOptions(cache_dir=str(idx.store.conversion_cache()), soffice="no-such-soffice")
    pdf = convert_to_pdf(folder / "deck.pptx", "pptx", cached)  # no LibreOffice needed: it is in the cache
    assert pdf.parent.parent == idx.store.conversion_cache()
    image = idx.page_image(hit, dpi=30)
    assert image.width > image.height  # a slide, landscape


@pytest.mark.slow
@needs_lo
def test_a_run_of_other_formats_forgets_nothing(mixed):
    idx, folder, _ = mixed
    before = len(idx.documents())
    report = idx.add([folder], workers=0, formats="text")
    assert (report.indexed, report.removed, report.skipped) == (0, 0, 2)  # notes.md, readme.txt unchanged
    assert report.families == ["text"] and len(idx.documents()) == before


@pytest.mark.slow
@needs_lo
def test_route_shows_the_slides_of_a_presentation(mixed):
    _, folder, _ = mixed
    res = invoke("route", folder / "deck.pptx", "--json")
    assert res.returncode == 0, res.stderr
    pages = json.loads(res.stdout)["pages"]
    assert [(Path(p["file"]).name, p["page"]) for p in pages] == [("deck.pptx", 1), ("deck.pptx", 2)]


@pytest.mark.slow
@needs_lo
def test_the_mixed_example_finds_the_table_page_and_the_chart_slide(tmp_path):
    """examples/mixed (``make demo`` indexes it): the census table's page and the chart's slide are found."""
    import docrag

    idx = docrag.open(tmp_path / "db", profile="lite", ingest={"ocr": False, "elements": "text-layer"})
    report = idx.add([EXAMPLES / "mixed"], workers=0)
    assert (report.indexed, report.failed) == (3, [])
    top = idx.search("table of puffin and guillemot breeding pairs by cliff", k=1)[0]
    assert (Path(top.file).name, top.page) == ("report.docx", 1)
    top = idx.search("chart of monthly visitors from March to June", k=1)[0]
    assert (Path(top.file).name, top.page) == ("deck.pptx", 2)


@needs_lo
def test_a_conversion_past_its_budget_is_killed_with_its_process_group(tmp_path):
    gen.rtf(tmp_path / "memo.rtf", ["A memo."])
    groups: list[int] = []
    context = OpenContext(ConvertOptions(timeout_s=0.05), on_process=groups.append)
    with pytest.raises(DocumentError, match=re.escape("timed out after 0.05 s (convert_timeout_s)")):
        open_document(tmp_path / "memo.rtf", context=context)
    (group,) = groups
    deadline = time.monotonic() + 15  # killed at once; its orphans are reaped by init a moment later
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break  # nothing of LibreOffice is left
        time.sleep(0.1)
    else:
        pytest.fail(f"LibreOffice's process group {group} outlived its budget")


@pytest.mark.slow
@needs_lo
def test_a_worker_killed_while_converting_takes_its_converter_with_it(tmp_path):
    """The worker's parent kills the worker (here: past document_timeout_s) and the converter's own process
    group, announced with the "convert" stage: no LibreOffice is left behind."""
    from docrag.pipeline.options import IngestConfig, RouterConfig
    from docrag.pipeline.plan import PlanOptions
    from docrag.pipeline.workers import Job, PlanPool

    gen.docx(tmp_path / "a.docx", "Title", ["Some words."])
    ingest = IngestConfig(document_timeout_s=1.0, elements="text-layer", ocr=False)
    opts = PlanOptions.build(RouterConfig(), ingest, Limits(), visual=False, figures=False)
    profiles = tmp_path / "profiles"  # every LibreOffice of this test names it on its command line
    opts = opts.model_copy(update={"convert": opts.convert.model_copy(update={"profile_root": str(profiles)})})
    with PlanPool(1, ingest) as pool:
        events = list(pool.run([Job(0, str(tmp_path / "a.docx"), opts)]))
    ((_, kind, reason),) = [e for e in events if e[1] in ("failed", "done")]
    assert kind == "failed" and "document_timeout_s" in reason, events

    def converters() -> list[int]:
        out = []
        for proc in Path("/proc").iterdir():
            try:
                mine = proc.name.isdigit() and str(profiles).encode() in (proc / "cmdline").read_bytes()
                if mine and (proc / "stat").read_text().split(") ")[-1][:1] != "Z":  # a zombie is dead already
                    out.append(int(proc.name))
            except OSError:
                continue
        return out

    assert any(profiles.glob("lo-*/user")), "LibreOffice had started"
    # Killed, not finished: a LibreOffice left to itself needs well over a second more to convert and exit.
    deadline = time.monotonic() + 0.5
    while converters() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert converters() == []
