"""End to end with tiny models of the real architectures and generated PDFs: index, search, resume, remove."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import docrag
from docrag.pipeline.ingest import file_sha256

PLANTED = "The quarterly zanzibarite shipment left the harbour of Mombasa on a Tuesday."


def tiny_overrides(tiny, **ingest):
    return {
        "visual": {"type": "colidefics3", "model": str(tiny["colidefics3"]), "batch_size": 2},
        "text": {"type": "sentence-transformers", "model": "sentence-transformers/all-MiniLM-L6-v2"},
        "image": None,
        "ingest": {"ocr": False, "elements": "text-layer", **ingest},
    }


@pytest.fixture
def corpus(tmp_path, docs):
    from docrag.testing import pdfgen

    folder = tmp_path / "corpus"
    folder.mkdir()
    pdfgen.planted_pdf(folder / "planted.pdf", PLANTED)
    shutil.copy(docs["table"], folder / "table.pdf")
    shutil.copy(docs["scan"], folder / "scan.pdf")
    shutil.copy(docs["photo_png"], folder / "photo.png")
    (folder / "notes.xyz").write_text("not a document")
    return folder


@dataclass
class Target:
    """Where a test indexes: the engine, the database URI, its storage options and the CLI's environment."""

    engine: str
    db: str
    options: dict[str, str]
    env: dict[str, str]
    address: str | None = None  # ray: the session's cluster, which a `docrag index` process joins


# The same end-to-end tests for each engine and each kind of storage (issue: scale-out).
TARGETS = [
    pytest.param(("local", "dir"), id="local-dir"),
    pytest.param(("ray", "dir"), id="ray-dir", marks=pytest.mark.ray),
    pytest.param(("local", "s3"), id="local-s3", marks=pytest.mark.s3),
    pytest.param(("ray", "s3"), id="ray-s3", marks=[pytest.mark.ray, pytest.mark.s3]),
]


@pytest.fixture
def target(request, tmp_path):
    engine, storage = request.param
    address = None
    if engine == "ray":
        address = request.getfixturevalue("ray_local").get_runtime_context().gcs_address
    if storage == "s3":
        s3 = request.getfixturevalue("s3")
        # A short writer lease: a writer the tests kill blocks the next one for seconds, not a minute.
        env = {**s3.env, "DOCRAG_INGEST__WRITER_LEASE_S": "6"}
        return Target(engine, s3.uri(), s3.options, env, address)
    return Target(engine, str(tmp_path / "db"), {}, dict(os.environ), address)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS, indirect=True)
def test_index_search_skip_change_remove(target, corpus, tiny):
    from docrag.testing import pdfgen

    db, engine = target.db, target.engine
    idx = docrag.open(db, profile="cpu", storage_options=target.options, **tiny_overrides(tiny))
    report = idx.add([corpus], metadata={"project": "demo"}, engine=engine)
    assert report.failed == [] and report.indexed == 4 and report.skipped == 0
    assert report.pages == 3 + 1 + 1 + 1
    assert report.routes == {"visual": 2, "text": 4}  # table + scan are visual
    stats = idx.stats()
    assert stats["documents"] == 4 and stats["visual_pages"] == 2 and stats["incomplete_documents"] == 0
    assert stats["visual_index"]["storage"] == "float16" and stats["visual_search"] == "exact"  # 2 pages: exact

    hits = idx.search("zanzibarite shipment from Mombasa harbour", k=3)
    top = hits[0]
    assert (Path(top.file).name, top.page) == ("planted.pdf", 2)
    assert {"text", "bm25"} <= set(top.legs) and top.legs["bm25"]["rank"] == 1
    assert "zanzibarite" in top.snippet and top.route == "text" and top.label == "text"
    assert idx.page_image(top, dpi=30).size[0] > 100
    df = hits.to_pandas()
    assert int(df["page"].iloc[0]) == 2 and "bm25_score" in df.columns

    # where: SQL over documents
    assert idx.search("zanzibarite", k=5, where="path LIKE '%table%'")[0].file.endswith("table.pdf")
    # legs restrict the fusion
    only_visual = idx.search("zanzibarite", k=2, legs=["visual"])
    assert only_visual and all(set(h.legs) == {"visual"} for h in only_visual)

    # re-run: everything unchanged is skipped
    again = idx.add([corpus], engine=engine)
    assert (again.indexed, again.skipped, again.removed) == (0, 4, 0)

    # a changed file is re-indexed, its old version removed
    pdfgen.planted_pdf(corpus / "planted.pdf", PLANTED, planted_page=3, seed=1)
    changed = idx.add([corpus], engine=engine)
    assert (changed.indexed, changed.skipped, changed.removed) == (1, 3, 1)
    top = idx.search("zanzibarite shipment from Mombasa harbour", k=1)[0]
    assert (Path(top.file).name, top.page) == ("planted.pdf", 3)
    assert idx.stats()["documents"] == 4

    # remove by path
    assert idx.remove(corpus / "planted.pdf") == 1
    remaining = idx.search("zanzibarite", k=10)
    assert remaining and all(not h.file.endswith("planted.pdf") for h in remaining)
    assert idx.stats()["documents"] == 3
    assert [d["metadata"] for d in idx.documents()] == [{"project": "demo"}] * 3

    # reopen without a profile: the database remembers its models
    reopened = docrag.open(db, storage_options=target.options)
    assert reopened.settings.visual.model == str(tiny["colidefics3"])
    assert reopened.search("table results", k=1)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS[:2], indirect=True)
def test_broken_files_are_reported_and_the_rest_indexed(target, corpus, bad_docs, tiny):
    for p in bad_docs.values():
        shutil.copy(p, corpus / p.name)
    idx = docrag.open(target.db, profile="lite", ingest={"ocr": False, "elements": "text-layer"})
    report = idx.add([corpus], engine=target.engine)
    failed = {Path(f["file"]).name: f["error"] for f in report.failed}
    assert set(failed) == {"empty.pdf", "notes.pdf", "truncated.pdf", "encrypted.pdf", "zero.pdf", "bomb.png"}
    assert "password" in failed["encrypted.pdf"] and "empty" in failed["empty.pdf"]
    assert report.indexed == 6  # planted, table, scan, photo, huge, pdf image bomb (routed, never rendered)
    assert idx.stats()["incomplete_documents"] == 0


def _db_state(db: str | Path, options: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, int]]:
    """Each document's status, and its page rows (read as another process would, through a new Store); nothing
    while the database is still being made (its tables are listed before they can be opened)."""
    from docrag.indexes.store import Store, StoreError

    try:
        if not Store.exists(db, options or None):
            return {}, {}
        store = Store(db, storage_options=options or None)
        docs = {r["doc_id"]: r["status"] for r in store.documents.rows(columns=["doc_id", "status"])}
        page_rows = store.pages.rows(columns=["doc_id"])
    except (StoreError, ValueError):
        return {}, {}
    pages: dict[str, int] = {}
    for r in page_rows:
        pages[r["doc_id"]] = pages.get(r["doc_id"], 0) + 1
    return docs, pages


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract to make indexing slow enough")
@pytest.mark.parametrize("target", TARGETS, indirect=True)
def test_kill_during_indexing_leaves_nothing_half_visible_and_rerun_completes(tmp_path, tiny, target):
    from docrag.testing import pdfgen

    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(2):  # long enough that a document seen half written is still so when the kill lands
        pdfgen.scans_pdf(folder / f"scan{i}.pdf", n_pages=6, seed=i)
    db = target.db
    cfg = tmp_path / "docrag.toml"
    cfg.write_text("profile = 'lite'\n[ingest]\nocr = true\nocr_dpi = 100\npage_batch = 1\nelements = 'text-layer'\n")
    cmd = [
        str(Path(sys.executable).parent / "docrag"),
        "index",
        str(folder),
        "--db",
        str(db),
        "--config",
        str(cfg),
        "--engine",
        target.engine,
        *(["--address", target.address] if target.address else []),  # joins the session's Ray: no start-up
        "--json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=target.env)
    deadline = time.time() + 240
    partial = None
    while time.time() < deadline and proc.poll() is None:
        docs, pages = _db_state(db, target.options)
        half = [d for d, s in docs.items() if s == "indexing" and 1 <= pages.get(d, 0) <= 3]  # 3+ pages to go
        if half:
            partial = half[0]
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert partial is not None, "indexing finished before it could be interrupted"
    docs, pages = _db_state(db, target.options)
    # Rows written, the document not flipped to ready. (More pages may land between the poll that saw it and the
    # kill, a poll on S3 takes a while; it was killed with three or more of its six still to do.)
    assert docs[partial] == "indexing" and 1 <= pages[partial] <= 5

    idx = docrag.open(db, config=cfg, storage_options=target.options)  # the same settings: the same command
    assert idx.stats()["incomplete_documents"] >= 1
    visible = {h.doc_id for h in idx.search("word", k=50)}
    assert partial not in visible  # half-written documents are invisible

    report = idx.add([folder], engine=target.engine)
    assert report.failed == []
    docs, pages = _db_state(db, target.options)
    assert set(docs.values()) == {"ready"} and len(docs) == 2
    assert all(n == 6 for n in pages.values()), pages  # the interrupted document was redone, not duplicated
    assert file_sha256(folder / "scan0.pdf") in docs


def test_cli_index_search_stats_show_remove_json(tmp_path, corpus):
    from clirun import invoke

    db = str(tmp_path / "db")
    env = {"DOCRAG_INGEST__OCR": "false", "DOCRAG_INGEST__ELEMENTS": "text-layer"}

    def run(*args: str):  # in this process: the commands, not the console script, are under test
        return invoke(*args, env=env)

    res = run("index", str(corpus), "--db", db, "--profile", "lite", "--meta", "team=a", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert set(summary) == {
        "indexed",
        "skipped",
        "duplicates",
        "removed",
        "failed",
        "pending",
        "pages",
        "routes",
        "seconds",
        "unsearchable",
        "not_documents",
        "formats",
        "warnings",
        "excluded",
    }
    # lite has no image or visual model and OCR is off: the photo and the scan are named, not passed over
    unsearchable = sorted((Path(u["file"]).name, u["pages"]) for u in summary["unsearchable"])
    assert unsearchable == [("photo.png", [1]), ("scan.pdf", [1])]
    assert summary["indexed"] == 4 and summary["failed"] == []
    assert summary["not_documents"] == [str(corpus / "notes.xyz")] and summary["excluded"] == []
    assert summary["routes"] == {"visual": 0, "text": 6}  # lite: no visual model, every page on the text legs

    res = run("search", "zanzibarite shipment", "--db", db, "-k", "2", "--json")
    out = json.loads(res.stdout)
    assert out["hits"][0]["file"].endswith("planted.pdf") and out["hits"][0]["page"] == 2
    assert set(out["hits"][0]) == {
        "file", "page", "score", "confidence", "route", "label", "legs", "snippet", "metadata", "chunk", "text"
    }  # fmt: skip
    assert out["hits"][0]["metadata"] == {"team": "a"}

    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "text": "zanzibarite"}\n{"id": "b", "text": "table results model"}\n')
    res = run("search", "--queries", str(queries), "--db", db, "-k", "3", "--json")
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"] and len(lines[0]["hits"]) == 3

    res = run("search", "zanzibarite", "--db", db, "--legs", "bm25", "--fusion", "weighted", "--json")
    assert set(json.loads(res.stdout)["hits"][0]["legs"]) == {"bm25"}

    stats = json.loads(run("stats", "--db", db, "--json").stdout)
    assert stats["documents"] == 4 and stats["profile"] == "lite"

    png = tmp_path / "p.png"
    res = run("show", "planted.pdf", "2", "--db", db, "--out", str(png))
    assert res.returncode == 0 and png.stat().st_size > 1000

    assert json.loads(run("remove", str(corpus / "table.pdf"), "--db", db, "--json").stdout) == {"removed": 1}

    res = run("search", "x", "--db", str(tmp_path / "nope"))
    assert res.returncode == 2 and "no database" in res.stderr


def test_default_profile_without_weights_names_the_offline_alternative(tmp_path, corpus):
    from clirun import spawn

    # A process of its own: an empty HF_HOME (whatever this machine has), read when huggingface_hub is imported.
    res = spawn("index", str(corpus), "--db", str(tmp_path / "db"), env={**os.environ, "HF_HOME": str(tmp_path / "hf")})
    assert res.returncode == 2
    assert res.stderr.splitlines()[0] == (
        "error the cpu profile's models are not on this machine and downloads are off (HF_HUB_OFFLINE=1 or "
        "--offline): use `--profile lite` (offline), or run `docrag models pull cpu` on a connected machine"
    )
    assert "hf download " in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "db").exists()


def test_image_leg_with_an_image_capable_embedder(tmp_path, corpus, tiny, docs):
    from PIL import Image

    idx = docrag.open(
        tmp_path / "db",
        profile="cpu",
        visual={"type": "colidefics3", "model": str(tiny["colidefics3"])},
        text={"type": "sentence-transformers", "model": str(tiny["arctic"])},
        image={"type": "siglip", "model": str(tiny["siglip"])},
        ingest={"ocr": False, "elements": "text-layer"},
    )
    report = idx.add([corpus])
    assert report.failed == [] and idx.stats()["images"] >= 1  # the photo goes to the image leg
    hits = idx.search(Image.open(docs["photo_png"]), k=3)
    assert Path(hits[0].file).name == "photo.png" and hits[0].legs["image"]["rank"] == 1
    assert hits[0].legs["image"]["score"] == pytest.approx(1.0, abs=1e-4)  # the same image, cosine 1
    assert idx.search(Image.open(docs["photo_png"]), k=3, legs=["visual"]) == []  # visual: text queries only
    # The text leg's model is a passage retriever that reads text only: no image → text chunks, even when named.
    assert idx.search(Image.open(docs["photo_png"]), k=3, legs=["text", "bm25"]) == []
    assert idx.text_embedder is not idx.image_embedder and idx.text_embedder.modalities == {"text"}
    weighted = idx.search("zanzibarite shipment", k=3, fusion="weighted")
    assert {"visual", "text", "bm25"} <= {leg for h in weighted for leg in h.legs}
    top_visual = next(h for h in weighted if "visual" in h.legs)
    assert "calibrated" in top_visual.legs["visual"]
    # Every leg takes a text query (image: the photo's vector against the query's); the planted page is found.
    every = idx.search("zanzibarite shipment from Mombasa harbour", k=10, fusion="weighted")
    assert {leg for h in every for leg in h.legs} == {"visual", "text", "image", "bm25"}
    planted = next(h for h in every if (Path(h.file).name, h.page) == ("planted.pdf", 2))
    assert planted.legs["bm25"]["rank"] == 1 and planted.legs["bm25"]["calibrated"] == pytest.approx(1.0)
    for h in every:  # MaxSim per query token and cosine: mean cosines, in [-1, 1]
        assert all(abs(h.legs[leg]["calibrated"]) <= 1 + 1e-4 for leg in ("visual", "text", "image") if leg in h.legs)
    with pytest.raises(ValueError, match="unknown leg"):
        idx.search("x", legs=["colour"])


@pytest.mark.slow
def test_relative_and_absolute_paths_are_the_same_document(tmp_path, docs, monkeypatch):
    folder = tmp_path / "papers"
    folder.mkdir()
    shutil.copy(docs["prose"], folder / "a.pdf")
    monkeypatch.chdir(tmp_path)
    idx = docrag.open(tmp_path / "db", profile="lite", ingest={"ocr": False, "elements": "text-layer"})
    assert idx.add(["papers"]).indexed == 1
    assert idx.documents()[0]["path"] == str(folder / "a.pdf")  # stored absolute
    shutil.copy(docs["code"], folder / "a.pdf")  # the same path, new content
    again = idx.add([folder / "a.pdf"])
    assert (again.indexed, again.removed) == (1, 1)
    assert idx.remove("papers/a.pdf") == 1 and idx.documents() == []


@pytest.mark.ray
@pytest.mark.slow
def test_ray_engine_joins_a_running_cluster(tmp_path, corpus):
    """`--engine ray --address HOST:PORT` joins a cluster started with `ray start` (token auth, as Ray 2.59+
    sets it up for a cluster on this machine) instead of starting one; a wrong address is one line."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bindir = Path(sys.executable).parent
    env = {**os.environ, "RAY_AUTH_MODE": "token", "DOCRAG_INGEST__ELEMENTS": "text-layer"}
    head = subprocess.Popen(
        [
            str(bindir / "ray"),
            "start",
            "--head",
            "--block",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        db = tmp_path / "db"
        cmd = [
            str(bindir / "docrag"),
            "index",
            str(corpus),
            "--db",
            str(db),
            "--profile",
            "lite",
            "--engine",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
            "--json",
        ]
        deadline = time.time() + 120
        while True:  # the head takes a few seconds to listen
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
            if res.returncode == 0 or "cannot reach" not in res.stderr or time.time() > deadline:
                break
            time.sleep(1)
        assert res.returncode == 0, res.stderr[-2000:]
        assert json.loads(res.stdout)["indexed"] == 4
    finally:
        # A short grace, then SIGKILL for the head's whole process group: after a run has joined it, `ray start`
        # takes about 30 s to shut down on SIGTERM (the group's processes exit gracefully one by one).
        head.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=60)
    from clirun import invoke

    cmd[cmd.index(str(db))] = str(tmp_path / "db2")  # work to do, and nobody listens at the address now
    res = invoke(*cmd[1:], env={k: v for k, v in env.items() if k.startswith(("DOCRAG_", "RAY_AUTH"))})
    assert res.returncode == 2 and "cannot reach the Ray cluster" in res.stderr and "Traceback" not in res.stderr
