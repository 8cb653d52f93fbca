"""Answer regions: patch layouts read from the real processors, MaxSim credit mapped to the page, chunk and
term boxes from the words' positions, drawn regions, and the CLI's --regions / show --query."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas
from typer.testing import CliRunner

import docrag
from docrag.cli import app
from docrag.indexes.models import ModelSpec
from docrag.indexes.multivector import MultiVectorEmbedder, PatchGrid, patch_layout
from docrag.pipeline.legs import NO_POSITIONS, QueryInput
from docrag.pipeline.regions import (
    LEG_COLOURS,
    AnswerRegion,
    PageRegions,
    bm25_regions,
    chunk_boxes,
    draw_regions,
    visual_regions,
)
from docrag.testing.rows import write_chunks, write_pages, write_visual

runner = CliRunner()
W, H = A4
PHRASE = "The quarterly zanzibarite shipment left the harbour of Mombasa on a Tuesday."
PHRASE_XY = (90.0, 300.0)  # baseline start, PDF points from the bottom-left
FILLER = [
    "Harbour records list the cargo of every vessel that called at the port during the season.",
    "Clerks wrote the tonnage, the owner and the destination of each consignment in the ledger.",
    "Most of the trade was in cloves, copra and hides, carried north along the coast by dhow.",
]


def _phrase_pdf(path):
    """Prose at the top, the phrase at a known place lower down (Helvetica 11)."""
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont("Helvetica", 11)
    for i, line in enumerate(FILLER * 3):
        c.drawString(72, 760 - 16 * i, line)
    c.drawString(*PHRASE_XY, PHRASE)
    c.showPage()
    c.setFont("Helvetica", 11)
    for i, line in enumerate(FILLER):
        c.drawString(72, 760 - 16 * i, line)
    c.showPage()
    c.save()
    return path


def _word_box(word: str) -> tuple[float, float, float, float]:
    """Where reportlab drew ``word`` of the phrase: fractions of the page, top-left origin (the font's
    ascent to descent vertically)."""
    before = PHRASE[: PHRASE.index(word)]
    x0 = PHRASE_XY[0] + stringWidth(before, "Helvetica", 11)
    x1 = x0 + stringWidth(word, "Helvetica", 11)
    top, bottom = PHRASE_XY[1] + 0.72 * 11, PHRASE_XY[1] - 0.21 * 11
    return (x0 / W, 1 - top / H, x1 / W, 1 - bottom / H)


def _contains(outer, inner, tol=1.5 / 595) -> bool:
    return (
        outer[0] <= inner[0] + tol
        and outer[1] <= inner[1] + tol
        and outer[2] >= inner[2] - tol
        and outer[3] >= inner[3] - tol
    )


def _close(a, b, tol=2.0 / 595) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


# -- patch layouts from the processors' own token sequences -----------------------------------------------------


@pytest.mark.parametrize("family", ["colpali", "colidefics3", "colmodernvbert", "colgemma3"])
def test_patch_layout_covers_the_page(tiny, family):
    emb = MultiVectorEmbedder(ModelSpec(type=family, model=str(tiny[family])))
    (vectors, layout), (wide, wide_layout) = emb.embed_pages(
        [Image.new("RGB", (200, 280), "white"), Image.new("RGB", (300, 100), "white")]
    )
    for vec, lay in ((vectors, layout), (wide, wide_layout)):
        assert lay, f"{family}: no layout"
        assert all(g.start + g.size <= len(vec) for g in lay)
        starts = [g.start for g in lay]
        assert starts == sorted(starts) and all(a.start + a.size <= b.start for a, b in itertools.pairwise(lay))
        # Tiles (if any) tile the page exactly; a whole-page grid covers it.
        tiles = [g for g in lay if g.box != (0.0, 0.0, 1.0, 1.0)]
        area = sum((g.box[2] - g.box[0]) * (g.box[3] - g.box[1]) for g in tiles)
        assert not tiles or area == pytest.approx(1.0)
        assert any(g.box == (0.0, 0.0, 1.0, 1.0) for g in lay)
    if family in ("colidefics3", "colmodernvbert"):  # tiny: longest edge 64, tiles of 32 → 2 x 2, and 1 x 2 wide
        assert sorted(g.box for g in layout if g.box != (0, 0, 1, 1)) == [
            (0.0, 0.0, 0.5, 0.5),
            (0.0, 0.5, 0.5, 1.0),
            (0.5, 0.0, 1.0, 0.5),
            (0.5, 0.5, 1.0, 1.0),
        ]
        wide_tiles = sorted(g.box for g in wide_layout if g.box != (0, 0, 1, 1))
        assert wide_tiles == [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]
    if family == "colpali":
        assert [(g.start, g.rows, g.cols) for g in layout] == [(0, 4, 4)]  # 32 px / 8 px patches, before the text


@pytest.mark.parametrize("family", ["colpali", "colidefics3"])
def test_a_mark_on_the_page_changes_the_vector_of_its_own_patch(tiny, family):
    """The layout is the model's: a black square in cell (r, c) of a white page makes the vector the layout
    puts at (r, c) the odd one out (residual streams keep a patch's own pixels), for every cell."""
    emb = MultiVectorEmbedder(ModelSpec(type=family, model=str(tiny[family])))
    w, h = 200, 280
    for r in range(4):
        for c in range(4):
            page = Image.new("RGB", (w, h), "white")
            x0, y0 = c * w / 4, r * h / 4
            ImageDraw.Draw(page).rectangle([x0 + w / 16, y0 + h / 16, x0 + 3 * w / 16, y0 + 3 * h / 16], fill="black")
            vectors, layout = emb.embed_pages([page])[0]
            grids = [g for g in layout if g.box != (0.0, 0.0, 1.0, 1.0)] or layout  # the tiles, else the grid
            cells = np.concatenate([vectors[g.start : g.start + g.size] for g in grids])
            boxes = [g.cell(k) for g in grids for k in range(g.size)]
            odd = boxes[int(np.linalg.norm(cells - np.median(cells, axis=0), axis=1).argmax())]
            cx, cy = (c + 0.5) / 4, (r + 0.5) / 4
            assert odd[0] <= cx <= odd[2] and odd[1] <= cy <= odd[3], (family, r, c, odd)


def test_patch_layout_reads_tiles_and_refuses_what_it_cannot_place():
    seq = [
        "<s>",
        "<fake>",
        "<row_1_col_1>",
        *["<image>"] * 4,
        "<fake>",
        "<row_1_col_2>",
        *["<image>"] * 4,
        "<fake>",
        "<global-img>",
        *["<image>"] * 4,
        "txt",
    ]
    lay = patch_layout(seq, "<image>")
    assert [(g.start, g.rows, g.box) for g in lay] == [
        (3, 2, (0.0, 0.0, 0.5, 1.0)),
        (9, 2, (0.5, 0.0, 1.0, 1.0)),
        (15, 2, (0.0, 0.0, 1.0, 1.0)),
    ]
    assert lay[1].cell(3) == (0.75, 0.5, 1.0, 1.0)
    assert patch_layout(["<image>"] * 6 + ["a"], "<image>") is None  # not square, no grid given
    assert [g.to_list() for g in patch_layout(["<image>"] * 6, "<image>", grid=(2, 3))] == [[0, 2, 3, 0, 0, 1, 1]]
    assert patch_layout(["a", "b"], "<image>") is None
    assert PatchGrid.from_list(lay[0].to_list()) == lay[0]


# -- visual regions: MaxSim credit ------------------------------------------------------------------------------


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_a_planted_patch_vector_lights_up_exactly_its_box(tiny, tmp_path):
    """Page vectors from the tiny ColIdefics3 layout, random; the query's tokens equal one patch's vector:
    the visual leg's top region is exactly that patch's box, through the store and the leg."""
    emb = MultiVectorEmbedder(ModelSpec(type="colidefics3", model=str(tiny["colidefics3"])))
    _, layout = emb.embed_pages([Image.new("RGB", (200, 280), "white")])[0]
    rng = np.random.default_rng(3)
    n = layout[-1].start + layout[-1].size + 5
    page = _unit(rng.normal(size=(n, 128))).astype(np.float32)
    tile = next(g for g in layout if g.box == (0.5, 0.5, 1.0, 1.0))
    k = 2  # row 1, col 0 of that tile
    planted = _unit(rng.normal(size=128)).astype(np.float32)
    page[tile.start + k] = planted
    query = np.stack([planted, _unit(planted + 0.05 * rng.normal(size=128))]).astype(np.float32)

    found = visual_regions(query, page, layout)
    assert tile.cell(k) == pytest.approx((0.5, 0.75, 0.75, 1.0))
    assert found.regions[0].box == pytest.approx(tile.cell(k))
    assert found.regions[0].weight == pytest.approx(1.0, abs=1e-6)  # both tokens chose that patch
    assert sum(v for _, v in found.heat) == pytest.approx(1.0, abs=1e-6)

    store = docrag.open(tmp_path / "db", profile="lite", create=True).store
    write_visual(store, "doc", [1], [page], layouts=[layout])
    stored, stored_layout = store.visual.page("doc", 1)
    assert stored.shape == page.shape and stored_layout == [g.to_list() for g in layout]

    from docrag.pipeline.legs import LegParts, VisualLeg

    leg = VisualLeg(
        LegParts(store, docrag.open(tmp_path / "db", profile="lite").settings.search, None, visual=lambda: emb)
    )
    q = QueryInput("anything")
    q.embedding("visual", lambda: query)  # the planted query tokens
    via_leg = leg.regions(q, "doc", 1)
    assert via_leg.regions[0].box == pytest.approx(tile.cell(k), abs=1e-5)  # float16 storage keeps the argmax


def test_visual_credit_adds_up_to_the_maxsim_score():
    rng = np.random.default_rng(0)
    page = _unit(rng.normal(size=(20, 16))).astype(np.float32)
    query = _unit(rng.normal(size=(5, 16))).astype(np.float32)
    layout = [PatchGrid(2, 4, 4)]
    found = visual_regions(query, page, layout)
    maxsim = float((query @ page.T).max(axis=1).sum())
    credit_on_patches = sum(v for _, v in found.heat)
    assert 0 < credit_on_patches <= 1 + 1e-6
    # What is not on patches is on the 4 other vectors, and the note says how much.
    off = (query @ page.T).argmax(axis=1)
    off_share = sum((query @ page.T)[i, j] for i, j in enumerate(off) if not 2 <= j < 18) / maxsim
    assert credit_on_patches == pytest.approx(1 - off_share, abs=1e-5)
    assert ("visual" in found.notes) == (off_share > 0.001)


# -- words: chunk and term boxes -------------------------------------------------------------------------------


def test_chunk_boxes_find_each_column_and_skip_strangers():
    words = []
    for line in range(5):  # two columns of five lines
        y = 0.1 + 0.03 * line
        for i, w in enumerate(f"left column line {line} words here".split()):
            words.append((w, 0.05 + 0.07 * i, y, 0.11 + 0.07 * i, y + 0.02))
    for line in range(5):
        y = 0.1 + 0.03 * line
        for i, w in enumerate(f"right side text {line} other words".split()):
            words.append((w, 0.55 + 0.07 * i, y, 0.61 + 0.07 * i, y + 0.02))
    left = " ".join(f"left column line {n} words here" for n in range(5))
    boxes = chunk_boxes(left, words)
    assert len(boxes) == 1 and boxes[0] == pytest.approx((0.05, 0.1, 0.46, 0.24))
    assert chunk_boxes("nothing of this is on the page at all", words) == []
    both = left + " " + " ".join(f"right side text {n} other words" for n in range(5))
    assert sorted(b[0] for b in chunk_boxes(both, words)) == pytest.approx([0.05, 0.55])


def test_bm25_regions_match_folded_and_stemmed_terms():
    words = [
        ("Shipments", 0.1, 0.1, 0.2, 0.12),
        ("of", 0.21, 0.1, 0.23, 0.12),
        ("Café", 0.3, 0.1, 0.35, 0.12),
        ("shipped", 0.4, 0.1, 0.5, 0.12),
        ("the", 0.6, 0.1, 0.65, 0.12),
    ]
    found = bm25_regions("the shipment CAFE", words)
    assert {(r.label, r.box[0]) for r in found} == {("shipment", 0.1), ("cafe", 0.3)}
    assert all(r.weight == 0.5 for r in found)  # two terms matched: half each
    assert bm25_regions("of the", words) == []  # stop words only


def test_planted_phrase_regions_through_indexing_and_search(tmp_path):
    """Index a PDF with the lite profile; the planted phrase's page comes first and its regions contain the
    words where reportlab drew them: bm25 per term, the text leg's chunk box around the phrase."""
    folder = tmp_path / "docs"
    folder.mkdir()
    _phrase_pdf(folder / "harbour.pdf")
    idx = docrag.open(tmp_path / "db", profile="lite", ingest={"ocr": False, "elements": "text-layer"})
    idx.add([folder], progress=False)
    hit = idx.search("zanzibarite shipment Mombasa", k=2)[0]
    assert hit.page == 1 and {"text", "bm25"} <= set(hit.legs)
    found = hit.regions()
    terms = {r.label: r.box for r in found.by_leg("bm25")}
    assert set(terms) == {"zanzibarite", "shipment", "mombasa"}
    for term, word in (("zanzibarite", "zanzibarite"), ("shipment", "shipment"), ("mombasa", "Mombasa")):
        assert _close(terms[term][::2], _word_box(word)[::2]), (term, terms[term], _word_box(word))  # x exact
        assert _contains(terms[term], _word_box(word), tol=3 / 842)  # and the glyphs' band inside
    phrase_box = (_word_box("The quarterly")[0], _word_box("The")[1], _word_box("Tuesday.")[2], _word_box("The")[3])
    assert any(_contains(r.box, phrase_box, tol=3 / 595) for r in found.by_leg("text"))
    assert found.to_dict()["regions"] and json.dumps(found.to_dict())

    # Drawn: the bm25 boxes are tinted with the leg's colour, far from them the page is untouched.
    plain = hit.image(dpi=72)
    drawn = hit.image(dpi=72, regions=True)
    assert drawn.width == plain.width and drawn.height > plain.height  # the page, and the legend below it
    x0, y0, x1, y1 = found.by_leg("bm25")[0].pixels(*plain.size)
    inside = np.asarray(drawn)[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    before = np.asarray(plain)[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    green = np.asarray(LEG_COLOURS["bm25"], float)
    assert np.linalg.norm(inside - green) < np.linalg.norm(before - green) - 20
    corner = (slice(plain.size[1] - 40, plain.size[1] - 5), slice(plain.size[0] - 40, plain.size[0] - 5))
    assert np.array_equal(np.asarray(drawn)[corner], np.asarray(plain)[corner])


def test_rows_without_positions_say_so(tmp_path):
    """Rows written without positions (a chunk whose boxes are unknown, a page without words): each leg says why
    it shows nothing instead of drawing a guess."""
    idx = docrag.open(tmp_path / "db", profile="lite", create=True)
    store = idx.store
    store.make_writable(text_dim=384)
    write_chunks(store, "d", [1], [0], ["a chunk"], np.ones((1, 384), np.float32))
    write_pages(store, "d", ["a page about harbours"])
    from docrag.pipeline.legs import BM25Leg, LegParts, TextLeg

    parts = LegParts(store, idx.settings.search, lambda: idx.text_embedder)
    q = QueryInput("harbours")
    assert BM25Leg(parts).regions(q, "d", 1).notes == {"bm25": NO_POSITIONS}
    assert TextLeg(parts).regions(q, "d", 1, "a chunk").notes == {"text": NO_POSITIONS}


def test_draw_regions_legend_and_heat():
    page = Image.new("RGB", (400, 560), "white")
    found = PageRegions(
        [AnswerRegion("text", (0.5, 0.5, 0.9, 0.6), 1.0, "chunk")], heat=[((0.0, 0.0, 0.25, 0.25), 1.0)]
    )
    out = draw_regions(page, found)
    assert out.width == 400 and out.height > 560  # the page at its size, the legend in a band below it
    px = np.asarray(out)
    assert tuple(px[120, 60]) != (255, 255, 255) and px[120, 60, 0] > px[120, 60, 1]  # heat: red, top left
    assert tuple(px[300, 300]) != (255, 255, 255)  # the text box's wash
    assert tuple(px[500, 100]) == (255, 255, 255)  # nothing there
    only_text = np.asarray(draw_regions(page, found, legs=["text"]))
    assert tuple(only_text[120, 60]) in {(255, 255, 255)} or only_text[120, 60, 0] == only_text[120, 60, 1]


def test_the_legend_covers_nothing_of_the_page():
    """The legend goes below the page: where it used to be drawn (top left) the page is as it was."""
    page = Image.new("RGB", (600, 800), "white")
    ImageDraw.Draw(page).text((12, 12), "Title of the page", fill="black")
    found = PageRegions(
        [AnswerRegion("bm25", (0.6, 0.8, 0.9, 0.85), 1.0, "term"), AnswerRegion("text", (0.1, 0.5, 0.9, 0.6), 1.0)]
    )
    out = draw_regions(page, found)
    assert out.size[0] == 600 and out.size[1] > 800
    corner = (0, 0, 300, 120)
    assert np.array_equal(np.asarray(out.crop(corner)), np.asarray(page.crop(corner)))
    band = np.asarray(out.crop((0, 800, 600, out.size[1])))
    for leg in ("bm25", "text"):  # a swatch of each leg's colour in the band
        assert (band == LEG_COLOURS[leg]).all(axis=-1).sum() > 50, leg


@pytest.mark.slow
def test_cli_search_regions_and_show_query(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    _phrase_pdf(folder / "harbour.pdf")
    db = str(tmp_path / "db")
    res = runner.invoke(app, ["index", str(folder), "--db", db, "--profile", "lite", "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["search", "zanzibarite Mombasa", "--db", db, "--regions", "--json", "-k", "1"])
    assert res.exit_code == 0, res.output
    hit = json.loads(res.stdout)["hits"][0]
    assert hit["page"] == 1 and {r["leg"] for r in hit["regions"]["regions"]} >= {"bm25", "text"}
    assert all(len(r["box"]) == 4 and min(r["box"]) >= 0 and max(r["box"]) <= 1 for r in hit["regions"]["regions"])
    plain = runner.invoke(app, ["search", "zanzibarite", "--db", db, "--json", "-k", "1"])
    assert "regions" not in json.loads(plain.stdout)["hits"][0]

    out = tmp_path / "page.png"
    res = runner.invoke(
        app, ["show", "harbour.pdf", "1", "--db", db, "--query", "zanzibarite", "--out", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["out"] == str(out) and {r["leg"] for r in report["regions"]} >= {"bm25"}
    bare = tmp_path / "bare.png"
    assert runner.invoke(app, ["show", "harbour.pdf", "1", "--db", db, "--out", str(bare)]).exit_code == 0
    with Image.open(out) as img, Image.open(bare) as page:
        assert img.format == "PNG" and img.width == page.width > 500 and img.height > page.height  # legend below
        term = next(r for r in report["regions"] if r["leg"] == "bm25")
        x0, y0, x1, y1 = (round(v * n) for v, n in zip(term["box"], page.size * 2, strict=True))
        box = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        # The matched term is marked on the page: its box differs from the same page drawn bare.
        assert (
            np.abs(
                np.asarray(img.convert("RGB"), np.int16)[box] - np.asarray(page.convert("RGB"), np.int16)[box]
            ).mean()
            > 5
        )
    # A page no leg scored, an empty query: a line each, no traceback.
    res = runner.invoke(
        app, ["show", "harbour.pdf", "2", "--db", db, "--query", "zanzibarite", "--legs", "bm25", "--out", str(out)]
    )
    assert res.exit_code == 0 and "no leg scored this page" in res.output
    res = runner.invoke(app, ["show", "harbour.pdf", "1", "--db", db, "--query", " ", "--out", str(out)])
    assert res.exit_code != 0 and "--query is empty" in res.output and "Traceback" not in res.output


@pytest.fixture(scope="module")
def tiny_visual_db(tmp_path_factory, tiny, docs):
    """A table page and a 300-dpi scanned PNG indexed with the tiny ColIdefics3: (the index, its folder)."""
    import shutil

    root = tmp_path_factory.mktemp("tiny_visual")
    folder = root / "docs"
    folder.mkdir()
    shutil.copy(docs["table"], folder / "table.pdf")
    with Image.open(docs["scan_png"]) as scan:
        scan.save(folder / "scan.png", dpi=(300, 300))
    idx = docrag.open(
        root / "db",
        profile="cpu",
        visual={"type": "colidefics3", "model": str(tiny["colidefics3"])},
        text={"type": "sentence-transformers", "model": "sentence-transformers/all-MiniLM-L6-v2"},
        image=None,
        ingest={"ocr": False, "elements": "text-layer"},
    )
    idx.add([folder], progress=False)
    return idx, folder


def test_visual_regions_end_to_end_with_the_tiny_model(tiny_visual_db):
    """Index a table page with the tiny ColIdefics3: its visual hit has boxes, heat and a drawn picture."""
    idx, _ = tiny_visual_db
    hit = idx.search("quarterly revenue table", k=1, legs=["visual"], where="path LIKE '%table.pdf'")[0]
    found = hit.regions()
    boxes = found.by_leg("visual")
    assert boxes and all(0 <= v <= 1 for r in boxes for v in r.box) and sum(r.weight for r in boxes) <= 1 + 1e-6
    assert found.heat and sum(v for _, v in found.heat) <= 1 + 1e-6
    drawn = hit.image(dpi=50, regions=True)
    plain = hit.image(dpi=50)
    assert drawn.width == plain.width and drawn.height > plain.height  # the legend below the page
    x0, y0, x1, y1 = boxes[0].pixels(*plain.size)
    tint = np.abs(np.asarray(drawn, np.int16)[y0:y1, x0:x1] - np.asarray(plain, np.int16)[y0:y1, x0:x1])
    assert tint.mean() > 5  # the best visual box is drawn over the page, not just a page of the same size


def test_show_query_on_an_image_keeps_its_size(tiny_visual_db, tmp_path):
    """`docrag show --query` on an image file: the image at its own pixels (not scaled to 100 dpi), the regions
    on it and the legend below it."""
    idx, folder = tiny_visual_db
    out = tmp_path / "why.png"
    res = runner.invoke(
        app,
        [
            "show",
            "scan.png",
            "1",
            "--db",
            idx.db,
            "--query",
            "quarterly revenue",
            "--legs",
            "visual",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out)
    with Image.open(folder / "scan.png") as original, Image.open(out) as drawn:
        assert drawn.width == original.width and drawn.height > original.height
        page = np.asarray(drawn.convert("RGB"), np.int16)[: original.height]
        assert (np.abs(page - np.asarray(original.convert("RGB"), np.int16)) > 30).any()  # the heat is on it
