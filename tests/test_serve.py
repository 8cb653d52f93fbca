"""``docrag serve``: the HTTP API over a small lite database (the real MiniLM text model), its security rules, a
server that keeps answering while an indexer writes, and the search page in a real headless chromium."""

from __future__ import annotations

import io
import os
import shutil
import threading
from pathlib import Path

import httpx
import pytest
from clirun import invoke
from live import Served, assert_http_live
from PIL import Image

import docrag
from docrag.serve import Limits, create_app

PLANTED = "The quarterly zanzibarite shipment left the harbour of Mombasa on a Tuesday."
QUERY = "zanzibarite shipment harbour"
DATA = Path(__file__).parent / "data"
LITE = {"ingest": {"ocr": False, "elements": "text-layer"}}
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "serve.png"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """planted.pdf (PLANTED on page 2 of 3) and other.pdf (two pages of real prose), indexed with the lite profile;
    the database's path and the index that wrote it (its model loaded: the indexer of the live test)."""
    from docrag.testing import pdfgen

    d = tmp_path_factory.mktemp("serve")
    corpus = d / "corpus"
    corpus.mkdir()
    pdfgen.planted_pdf(corpus / "planted.pdf", PLANTED)
    shutil.copy(DATA / "two_topics.pdf", corpus / "other.pdf")
    db = d / "db"
    writer = docrag.open(db, profile="lite", **LITE)
    assert writer.add([corpus], workers=0).indexed == 2
    return db, writer


@pytest.fixture(scope="module")
def db(built) -> Path:
    return built[0]


@pytest.fixture(scope="module")
def index(db):
    return docrag.open(db)


@pytest.fixture(scope="module")
def served(index):
    s = Served(create_app(index))
    yield s
    s.stop()


def _client(app):
    from fastapi.testclient import TestClient

    return TestClient(app)


def test_search_documents_health_and_page_images(served):
    with httpx.Client(base_url=served.url, timeout=60) as c:
        assert c.get("/health").json() == {"status": "ok", "documents": 2}
        docs = c.get("/documents").json()["documents"]
        assert sorted((Path(d["path"]).name, d["n_pages"]) for d in docs) == [("other.pdf", 2), ("planted.pdf", 3)]
        r = c.get("/search", params={"query": QUERY, "k": 3})
        assert r.status_code == 200
        hits = r.json()["hits"]
        assert len(hits) == 3
        top = hits[0]
        assert (Path(top["file"]).name, top["page"]) == ("planted.pdf", 2)
        assert {"text", "bm25"} <= set(top["legs"]) and PLANTED.split()[2] in top["snippet"]
        boxes = [reg for reg in top["regions"]["regions"] if reg["leg"] in ("text", "bm25")]
        assert boxes and all(len(reg["box"]) == 4 for reg in boxes), top["regions"]
        plain = c.get(f"/pages/{top['doc_id']}/2.png")
        drawn = c.get("/pages/planted.pdf/2.png", params={"query": QUERY})  # a file name names the document too
        assert plain.headers["content-type"] == drawn.headers["content-type"] == "image/png"
        a, b = Image.open(io.BytesIO(plain.content)), Image.open(io.BytesIO(drawn.content))
        assert a.width == b.width and b.height > a.height  # the regions' legend is drawn in a band below the page
        assert c.get("/docs").status_code == 200 and "/search" in c.get("/openapi.json").json()["paths"]


def test_a_host_other_machines_reach_needs_a_token(db):
    ran = invoke("serve", "--db", db, "--host", "0.0.0.0")
    assert ran.returncode == 2
    assert ran.stderr.splitlines()[0] == (
        "error --host 0.0.0.0 is reachable from other machines: give --token TOKEN (or set DOCRAG_SERVE_TOKEN), or "
        "serve on 127.0.0.1"
    )


def test_with_a_token_every_request_carries_it(index):
    c = _client(create_app(index, token="s3cret-token"))
    first = c.get("/health")
    assert first.status_code == 401
    assert first.json()["detail"].startswith("missing or wrong token")
    assert c.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/search", params={"query": QUERY, "token": "s3cret"}).status_code == 401
    assert c.get("/health", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert c.get("/documents", params={"token": "s3cret-token"}).status_code == 200
    # /docs opened with the token hands it on to the schema it loads, and the schema offers "Authorize"
    assert c.get("/docs").status_code == 401 and c.get("/openapi.json").status_code == 401
    docs = c.get("/docs", params={"token": "s3cret-token"})
    assert docs.status_code == 200 and "'/openapi.json?token=s3cret-token'" in docs.text, docs.text
    schema = c.get("/openapi.json", params={"token": "s3cret-token"}).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert "/search" in schema["paths"] and schema["security"] == [{"bearer": []}]
    assert "securitySchemes" not in _client(create_app(index)).get("/openapi.json").json().get("components", {})


def test_page_images_only_for_indexed_documents(index, tmp_path):
    c = _client(create_app(index))
    outside = tmp_path / "secret.pdf"
    shutil.copy(DATA / "two_topics.pdf", outside)
    for url in (
        "/pages/..%2F..%2Fetc%2Fpasswd/1.png",
        "/pages/%2Fetc%2Fpasswd/1.png",
        "/pages/..%5C..%5Cwin.ini/1.png",
        f"/pages/{str(outside).replace('/', '%2F')}/1.png",
        "/pages/secret.pdf/1.png",
        "/pages/nope/1.png",
        "/pages/planted.pdf/4.png",
        "/pages/planted.pdf/0.png",
    ):
        assert c.get(url).status_code == 404, url


def test_limits_answer_422_with_a_clear_message(index):
    c = _client(create_app(index))
    r = c.get("/search", params={"query": QUERY, "k": 10000})
    assert (r.status_code, r.json()["detail"]) == (422, "k=10000: ask for 1 to 100 pages")
    r = c.get("/search", params={"query": "x" * 5000})
    assert (r.status_code, r.json()["detail"]) == (422, "the query is 5000 characters long; the limit is 1000")
    r = c.get("/pages/planted.pdf/1.png", params={"query": "x" * 5000})
    assert r.status_code == 422


def test_requests_over_the_concurrency_limit_get_429(index):
    class Slow:  # the index, with a search that waits until released
        def __init__(self) -> None:
            self.entered, self.release = threading.Event(), threading.Event()

        def __getattr__(self, name):
            return getattr(index, name)

        def search(self, *args, **kwargs):
            self.entered.set()
            assert self.release.wait(30)
            return index.search(*args, **kwargs)

    slow = Slow()
    s = Served(create_app(slow, limits=Limits(max_concurrent=1)))
    try:
        first: dict[str, int] = {}
        t = threading.Thread(
            target=lambda: first.update(code=httpx.get(f"{s.url}/search?query=tide", timeout=60).status_code)
        )
        t.start()
        assert slow.entered.wait(30)
        busy = httpx.get(f"{s.url}/documents", timeout=30)
        assert busy.status_code == 429
        assert busy.json()["detail"] == "too many requests at once (limit 1): retry shortly"
        up = httpx.get(f"{s.url}/health", timeout=30)  # a health check is never refused, nor kept waiting
        assert up.status_code == 200 and up.json()["busy"] is True
        slow.release.set()
        t.join(30)
        assert first["code"] == 200
    finally:
        slow.release.set()
        s.stop()


def test_cors_is_off_unless_configured(index):
    origin = {"Origin": "https://elsewhere.example"}
    assert "access-control-allow-origin" not in _client(create_app(index)).get("/health", headers=origin).headers
    allowed = _client(create_app(index, cors_origins=["https://elsewhere.example"])).get("/health", headers=origin)
    assert allowed.headers["access-control-allow-origin"] == "https://elsewhere.example"


def test_a_running_server_shows_a_document_only_once_it_is_ready(built, served, tmp_path):
    """An indexer writes to the served database meanwhile. Held right after its first pages are written (before
    the document is marked ready), the server shows none of it; once the indexer finishes, all of it, without a
    restart."""
    assert_http_live(served.url, built[1], tmp_path, before=2)


def test_the_search_page_in_a_headless_browser(served, tmp_path):
    from playwright.sync_api import sync_playwright

    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(served.url + "/")
            page.fill("#query", QUERY)
            page.press("#query", "Enter")
            page.wait_for_selector("li.hit img", timeout=60_000)
            first = page.locator("li.hit").first
            assert (first.get_attribute("data-file"), first.get_attribute("data-page")) == ("planted.pdf", "2")
            api = httpx.get(served.url + "/search", params={"query": QUERY, "k": 12}, timeout=60).json()["hits"]
            shown = [
                (li.get_attribute("data-file"), int(li.get_attribute("data-page")))
                for li in page.locator("li.hit").all()
            ]
            assert shown == [(Path(h["file"]).name, h["page"]) for h in api]  # the ranking, in its order
            img = first.locator("img")
            assert "query=" in (img.get_attribute("src") or "")
            page.wait_for_function(
                "() => { const i = document.querySelector('li.hit img'); return i.complete && i.naturalWidth > 0; }",
                timeout=60_000,
            )
            size = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
            assert size[1] > size[0] * 297 / 210 + 5  # the regions' legend band below the A4 page
            legs = first.locator(".legs").inner_text()
            assert "text" in legs and legs.startswith(f"confidence {api[0]['confidence']:.2f} · score ")
            weak = [h["confidence"] < 0.5 for h in api]
            assert [("weak" in (li.get_attribute("class") or "")) for li in page.locator("li.hit").all()] == weak
            assert page.locator("li.hit a").first.get_attribute("target") == "_blank"
            shot = tmp_path / "serve.png"
            page.screenshot(path=str(shot), full_page=False)
            assert shot.stat().st_size > 10_000
            if os.environ.get("DOCRAG_UPDATE_DOCS"):  # regenerate the README's picture
                SCREENSHOT.parent.mkdir(exist_ok=True)
                shutil.copy(shot, SCREENSHOT)
        finally:
            browser.close()


def test_a_file_name_two_documents_have_is_refused_not_guessed(tmp_path):
    """Two different files named report.pdf: a page image by that name is 404 naming both, ``show`` one line and
    exit 2, ``Index.find`` a ValueError — never one of them picked silently; each still opens by doc_id."""
    from docrag.testing import pdfgen

    for sub, text in (("a", "The narwhal tusk is a tooth."), ("b", "The capybara is a rodent.")):
        (tmp_path / sub).mkdir()
        pdfgen.planted_pdf(tmp_path / sub / "report.pdf", text, n_pages=1, planted_page=1)
    db = tmp_path / "db"
    idx = docrag.open(db, profile="lite", **LITE)
    assert idx.add([tmp_path / "a", tmp_path / "b"], workers=0).indexed == 2
    paths = ", ".join(sorted(str(tmp_path / s / "report.pdf") for s in "ab"))
    with pytest.raises(ValueError, match=r"^report\.pdf names 2 indexed files"):
        idx.find("report.pdf")
    assert idx.find(str(tmp_path / "b" / "report.pdf"))["path"].endswith("b/report.pdf")
    r = _client(create_app(idx)).get("/pages/report.pdf/1.png")
    assert r.status_code == 404
    assert r.json()["detail"] == "'report.pdf' names 2 indexed documents: use a doc_id (see /documents)"
    doc_id = idx.find(str(tmp_path / "a" / "report.pdf"))["doc_id"]
    assert _client(create_app(idx)).get(f"/pages/{doc_id}/1.png").status_code == 200
    ran = invoke("show", "report.pdf", "1", "--db", db, "--out", tmp_path / "x.png")
    assert ran.returncode == 2
    assert ran.stderr.splitlines()[0] == f"error report.pdf names 2 indexed files ({paths}): give its path or doc_id"


def test_serve_start_mistakes_are_one_line(db):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = invoke("serve", "--db", db, "--port", port)
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.splitlines() == [f"error cannot listen on 127.0.0.1:{port}: Address already in use"]
    ran = invoke("serve", "--db", db, "--profile", "cpu")  # built with lite's models
    assert ran.returncode == 2
    assert ran.stderr.splitlines()[0].startswith(f"error {db} was built with the text model ")


def test_an_empty_or_non_text_query_is_refused_by_the_api(index):
    for empty in ("", "   \n"):
        with pytest.raises(ValueError, match=r"^the query is empty: give the words to search for$"):
            index.search(empty)
    with pytest.raises(TypeError, match=r"^a query is a str or a PIL image, not NoneType$"):
        index.search(None)
    # A leg this database has no model for (lite: no visual model) is said, not answered with no hits.
    with pytest.raises(ValueError, match=r"^this database has no visual leg \(no model for it in its profile\)"):
        index.search("zanzibarite", legs=["visual"])
