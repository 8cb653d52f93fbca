"""Ingestion in the real world: exact bookkeeping, one writer at a time, read-only databases, faults, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clirun import EXE, invoke, spawn

import docrag
from docrag.indexes.database import Database
from docrag.indexes.schema import COUNTED, DOCUMENTS, PAGES
from docrag.indexes.store import Store

LITE = {"ingest": {"ocr": False, "elements": "text-layer"}}
ENV = {**os.environ, "DOCRAG_INGEST__OCR": "false", "DOCRAG_INGEST__ELEMENTS": "text-layer"}


def cli(*args: str):
    """``docrag ARGS`` in this process (isolation is not the point where this is used)."""
    return invoke(*args, env=ENV)


def planted(folder: Path, name: str, word: str, seed: int = 0) -> Path:
    from docrag.testing import pdfgen

    return pdfgen.planted_pdf(folder / name, f"The {word} shipment left the harbour on a Tuesday.", seed=seed)


KEYS = {
    "documents": ["path", "paths", "status", "n_pages", "counts"],
    "pages": ["page", "route", "label", "text"],
    "chunks": ["page", "chunk", "text"],
    "images": ["page", "image"],
    "visual": ["page", "n_vectors"],
}


def table_rows(db: Path) -> dict[str, list[tuple]]:
    """Every table's rows as sorted tuples of their key columns (what a clean build must reproduce)."""
    store = Store(db)
    out = {}
    for schema in (DOCUMENTS, *COUNTED):
        if store.db.has(schema):
            rows = store.db.scan(schema, ["doc_id", *KEYS[schema.name]]).to_pylist()
            out[schema.name] = sorted(tuple(r[c] for c in ["doc_id", *KEYS[schema.name]]) for r in rows)
    return out


def _papers(d: Path) -> Path:
    d.mkdir()
    planted(d, "a.pdf", "zanzibarite")
    planted(d, "b.pdf", "quokkalith", seed=1)
    (d / "sub").mkdir()
    planted(d / "sub", "c.pdf", "marmotine", seed=2)
    return d


@pytest.fixture
def folder(tmp_path):
    """Three papers of this test's own (it may change them)."""
    return _papers(tmp_path / "papers")


@pytest.fixture(scope="session")
def papers(tmp_path_factory):
    """Three papers, indexed once for the session (lite): (folder, database). Tests copy the database."""
    root = tmp_path_factory.mktemp("papers")
    d = _papers(root / "papers")
    assert docrag.open(root / "db", profile="lite", **LITE).add([d]).indexed == 3
    return d, root / "db"


@pytest.fixture
def indexed(tmp_path, papers):
    """(folder, a copy of its database) for a test that reads the papers and writes only to its database."""
    d, db = papers
    shutil.copytree(db, tmp_path / "db")
    return d, tmp_path / "db"


@pytest.mark.slow
def test_removed_files_are_deleted_and_copies_recorded(tmp_path, folder):
    idx = docrag.open(tmp_path / "db", profile="lite", **LITE)
    first = idx.add([folder])
    assert (first.indexed, first.failed) == (3, [])

    # A byte-identical copy at a second path: one document, both paths.
    shutil.copy(folder / "a.pdf", folder / "sub" / "a-copy.pdf")
    again = idx.add([folder])
    assert (again.indexed, again.skipped, again.duplicates, again.removed) == (0, 3, 1, 0)
    docs = {Path(d["path"]).name: d for d in idx.documents()}
    assert len(docs) == 3
    assert sorted(Path(p).name for p in docs["a.pdf"]["paths"]) == ["a-copy.pdf", "a.pdf"]

    # Delete a file: the next run of that folder deletes its document; a document keeps its other path.
    (folder / "b.pdf").unlink()
    (folder / "a.pdf").unlink()
    after = idx.add([folder])
    assert (after.removed, after.indexed) == (1, 0)
    hits = idx.search("quokkalith shipment", k=10)
    assert hits and all(not h.file.endswith("b.pdf") for h in hits)
    names = sorted(Path(d["path"]).name for d in idx.documents())
    assert names == ["a-copy.pdf", "c.pdf"]
    top = idx.search("zanzibarite shipment", k=1)[0]
    assert Path(top.file).name == "a-copy.pdf"

    # Indexing another folder never deletes documents found elsewhere.
    other = tmp_path / "other"
    other.mkdir()
    planted(other, "d.pdf", "wombatite", seed=3)
    assert idx.add([other]).removed == 0 and len(idx.documents()) == 3


@pytest.mark.slow
def test_two_concurrent_index_runs_equal_one_clean_run(tmp_path, folder):
    db = tmp_path / "db"
    cmd = [EXE, "index", str(folder), "--db", str(db), "--profile", "lite", "--json"]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    reports = [json.loads(o[0]) for o in outs]
    assert sorted(r["indexed"] for r in reports) == [0, 3]  # the second waited, then found everything done
    clean = tmp_path / "clean"
    assert cli("index", str(folder), "--db", str(clean), "--profile", "lite", "--json").returncode == 0
    assert table_rows(db) == table_rows(clean)
    assert len(table_rows(db)["documents"]) == 3


@pytest.mark.slow
def test_a_second_writer_waits_and_says_so(indexed):
    from docrag.indexes.store import LockTimeout, Store

    folder, db = indexed
    holder = Store(db, writable=False)
    with holder.writer_lock():
        res = cli("index", str(folder), "--db", str(db), "--wait", "1")
        assert res.returncode == 2 and "being written by pid" in res.stderr and "Traceback" not in res.stderr
        with pytest.raises(LockTimeout), Store(db, writable=False).writer_lock(wait_s=0.2):
            pass
    # A lock whose holder died is free: the kernel dropped it.
    code = f"from docrag.indexes.store import Store\nwith Store({str(db)!r}).writer_lock():\n    import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with Store(db, writable=False).writer_lock(wait_s=1):
        pass


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def mounts():
    done: list[Path] = []

    def mount(*args: str) -> None:
        if os.geteuid() != 0 or not _mount(*args):
            pytest.skip("needs root and mount(8) (bind mounts, tmpfs) to build a read-only or full filesystem")
        done.append(Path(args[-1]))

    yield mount
    for target in reversed(done):
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.mark.slow
def test_read_only_database_can_be_searched(tmp_path, indexed, mounts):
    folder, db = indexed
    ro = tmp_path / "ro"
    ro.mkdir()
    mounts("--bind", str(db), str(ro))
    mounts("-o", "remount,bind,ro", str(ro))
    res = cli("search", "zanzibarite shipment", "--db", str(ro), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["hits"][0]["file"].endswith("a.pdf")
    res = cli("stats", "--db", str(ro), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["documents"] == 3
    assert cli("check", "--db", str(ro)).returncode == 0
    res = cli("index", str(folder), "--db", str(ro))
    assert res.returncode == 2 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_full_disk_fails_cleanly_and_completes_later(tmp_path, mounts, docs):
    from docrag.testing import pdfgen

    big = tmp_path / "big"
    big.mkdir()
    for i in range(6):
        pdfgen.scans_pdf(big / f"scan{i}.pdf", n_pages=3, seed=i)  # thumbnails and text: rows that fill a disk
    planted(big, "a.pdf", "zanzibarite")
    small = tmp_path / "small"
    small.mkdir()
    mounts("-t", "tmpfs", "-o", "size=400k", "tmpfs", str(small))
    db = small / "db"
    # One document fits: written before the disk fills (not left to how the first write batch happens to fall).
    assert cli("index", str(big / "a.pdf"), "--db", str(db), "--profile", "lite").returncode == 0
    res = cli("index", str(big), "--db", str(db), "--profile", "lite", "--json")
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    report = json.loads(res.stdout)
    assert any("No space left on device" in f["error"] for f in report["failed"]), report["failed"]
    # Whatever was written is consistent: the database (made before the disk filled) opens, and no document is
    # visible without all its rows.
    assert Store.exists(db)
    stats = cli("stats", "--db", str(db), "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["documents"] >= 1  # a.pdf at least; a document cut short stays incomplete
    assert cli("check", "--db", str(db)).returncode == 0
    # The same database completes on a larger disk.
    roomy = tmp_path / "roomy"
    shutil.copytree(db, roomy)
    res = cli("index", str(big), "--db", str(roomy), "--profile", "lite", "--json")
    assert res.returncode == 0, res.stderr
    assert cli("check", "--db", str(roomy)).returncode == 0
    docs_ = json.loads(cli("stats", "--db", str(roomy), "--json").stdout)
    assert docs_["documents"] == 7 and docs_["incomplete_documents"] == 0


@pytest.mark.slow
def test_truncated_data_file_is_found_and_repaired(tmp_path, folder):
    db = tmp_path / "db"
    assert cli("index", str(folder / "a.pdf"), "--db", str(db), "--profile", "lite").returncode == 0
    assert cli("index", str(folder), "--db", str(db)).returncode == 0  # a second write: b.pdf and c.pdf
    assert cli("check", "--db", str(db)).returncode == 0
    # Truncate the newest data file of the pages table.
    victim = Database(db).data_files(PAGES)[-1]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])

    res = cli("stats", "--db", str(db))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    res = cli("search", "zanzibarite", "--db", str(db))
    assert res.returncode == 2 and "'pages'" in res.stderr and "docrag check" in res.stderr

    res = cli("check", "--db", str(db), "--json")
    assert res.returncode == 1
    result = json.loads(res.stdout)
    assert result["tables"]["pages"]["ok"] is False and result["tables"]["documents"]["ok"] is True

    res = cli("check", "--db", str(db), "--repair", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    repaired = json.loads(res.stdout)
    assert "pages" in repaired["repair"]["restored"] and repaired["after"]["ok"]
    # The document written before the damage survives; the rest are redone by the next run.
    hits = json.loads(cli("search", "zanzibarite shipment", "--db", str(db), "--json").stdout)["hits"]
    assert hits[0]["file"].endswith("a.pdf")
    res = cli("index", str(folder), "--db", str(db), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["failed"] == []
    assert json.loads(cli("stats", "--db", str(db), "--json").stdout)["documents"] == 3
    assert cli("check", "--db", str(db)).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract to make indexing slow enough")
def test_ctrl_c_says_how_far_it_got_and_rerun_resumes(tmp_path):
    from docrag.testing import pdfgen

    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(6):
        pdfgen.scans_pdf(scans / f"s{i}.pdf", n_pages=2, seed=i)
    db = tmp_path / "db"
    env = {**ENV, "DOCRAG_INGEST__OCR": "true", "DOCRAG_INGEST__OCR_DPI": "150", "DOCRAG_INGEST__PAGE_BATCH": "1"}
    proc = subprocess.Popen(
        [EXE, "index", str(scans), "--db", str(db), "--profile", "lite", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # As at a terminal: a test runner started in the background inherits SIGINT ignored, and so would
        # the command (Python then never raises KeyboardInterrupt).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # Interrupt once the first document is complete (an event, not a guess at a moment): five remain to do.
    assert _wait_for(db, lambda docs: "ready" in docs.values(), proc), "no document was completed"
    assert proc.poll() is None, "indexing finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted:" in err and "pending — run the same command to resume" in err
    assert "Traceback" not in err
    res = invoke("index", str(scans), "--db", str(db), "--json", env=env)
    assert res.returncode == 0 and json.loads(res.stdout)["failed"] == []
    stats = json.loads(cli("stats", "--db", str(db), "--json").stdout)
    assert stats["documents"] == 6 and stats["pages"] == 12 and stats["incomplete_documents"] == 0


def test_user_mistakes_get_one_line_and_exit_2(tmp_path):
    nope = tmp_path / "nope"
    for args in (
        ("show", "a.pdf", "1", "--db", str(nope)),
        ("remove", "a.pdf", "--db", str(nope)),
        ("stats", "--db", str(nope)),
        ("search", "x", "--db", str(nope)),
        ("check", "--db", str(nope)),
        ("eval", "--db", str(nope), "--queries", __file__),
    ):
        res = cli(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "no database" in res.stderr
    assert not nope.exists()  # nothing was created
    not_db = tmp_path / "plain"
    not_db.mkdir()
    res = cli("stats", "--db", str(not_db))
    assert res.returncode == 2 and "not a docrag database" in res.stderr


# -- the commands people run every day (issue 26, items 9-16) ----------------------------------------------------


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def test_index_leaves_its_own_database_out_and_names_what_it_skipped(tmp_path):
    """A database inside the folder being indexed: its files are not walked (said once, ``excluded`` in --json);
    the summary counts copies ("1 copy") and files that are not documents, and names them (--json: all)."""
    folder = tmp_path / "papers"
    folder.mkdir()
    planted(folder, "a.pdf", "zanzibarite")
    shutil.copy(folder / "a.pdf", folder / "b.pdf")
    (folder / "notes.xyz").write_text("not a document")
    db = folder / "db"
    res = cli("index", str(folder), "--db", str(db), "--profile", "lite", "--workers", "0")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("indexed 1, skipped 0 unchanged, 1 copy recorded, 1 not a document, removed 0; 3 pages")
    assert lines[1:] == [
        "skipped 1 file(s) that are not a format docrag reads (pdf, image, office, html, text): notes.xyz",
        f"note: left out {db}, the database itself (it lies in a folder being indexed)",
    ]
    again = cli("index", str(folder), "--db", str(db), "--profile", "lite", "--workers", "0", "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["indexed"], report["skipped"]) == (0, 2)  # a.pdf and its copy, unchanged
    assert report["not_documents"] == [str(folder / "notes.xyz")]  # none of the database's own files
    assert report["excluded"] == [str(db)] and report["warnings"] == []


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path):
    """No bars can be drawn into a log: one-line summaries every --progress-every seconds instead of silence."""
    folder, db = tmp_path / "papers", tmp_path / "db"
    folder.mkdir()
    planted(folder, "a.pdf", "zanzibarite")
    args = ("index", str(folder), "--db", str(db), "--profile", "lite", "--workers", "0", "--progress-every", "1e-9")
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    ticks = [line for line in res.stderr.splitlines() if line.startswith("indexing ")]
    tick = re.compile(rf"indexing {re.escape(str(db))}: [01]/1 files, [0-3] pages embedded, \d+ s")
    assert ticks and all(tick.fullmatch(t) for t in ticks), res.stderr
    quiet = cli(*args, "--json")  # for scripts: stdout is the JSON, and no progress lines
    assert quiet.returncode == 0 and not [x for x in quiet.stderr.splitlines() if x.startswith("indexing ")]


def test_stats_and_eval_print_tables_for_people(tmp_path, indexed):
    _, db = indexed
    stats = json.loads(cli("stats", "--db", str(db), "--json").stdout)  # for scripts: unchanged
    res = cli("stats", "--db", str(db))
    assert res.returncode == 0 and "{" not in res.stdout, res.stdout
    lines = res.stdout.splitlines()
    assert lines[0] == f"database        {db} (profile lite)"
    assert f"documents       {stats['documents']}" in lines
    assert f"pages           {stats['pages']}: text {stats['routes']['text']}" in lines

    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "text": "zanzibarite", "relevant": [{"file": "a.pdf", "page": 2}]}\n')
    labels = tmp_path / "labels.tsv"
    labels.write_text("file\tpage\tlabel\n" + "".join(f"a.pdf\t{p}\ttext\n" for p in (1, 2, 3)))
    args = ("eval", "--db", str(db), "--queries", str(queries), "--labels", str(labels), "--k", "5")
    routing = json.loads(cli(*args, "--json").stdout)["routing"]
    res = cli(*args)
    assert res.returncode == 0 and "{" not in res.stdout, res.stdout
    assert (
        f"routing: 3 labelled pages, label accuracy {routing['label_accuracy']:.3f}, route accuracy "
        f"{routing['route_accuracy']:.3f}"
    ) in res.stdout.splitlines()
    assert "hand label" in res.stdout and "router: text" in res.stdout


def test_an_empty_or_missing_query_is_one_line(indexed, tmp_path):
    _, db = indexed
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "text": "zanzibarite"}\n')
    for args, first in (
        (("search", "", "--db", str(db)), "error the query is empty: give the words to search for"),
        (("search", "  \t ", "--db", str(db)), "error the query is empty: give the words to search for"),
        (("search", "--db", str(db)), "error give a QUERY or --queries FILE"),
        (("search", "x", "--queries", str(queries), "--db", str(db)), "error give a QUERY or --queries FILE, not both"),
    ):
        res = cli(*args)
        assert res.returncode == 2 and res.stderr.strip() == first, (args, res.stderr)


def test_every_command_that_opens_a_database_reads_config(indexed, tmp_path):
    """--config on stats, show, remove, check (and search, eval, route): each reads the file."""
    folder, db = indexed
    bad = tmp_path / "bad.toml"
    bad.write_text("[search\n")
    for args in (
        ("stats", "--db", str(db)),
        ("show", "a.pdf", "1", "--db", str(db), "--out", str(tmp_path / "p.png")),
        ("remove", "a.pdf", "--db", str(db)),
        ("check", "--db", str(db)),
        ("search", "zanzibarite", "--db", str(db)),
        ("eval", "--db", str(db), "--queries", __file__),
        ("route", str(folder)),
    ):
        res = cli(*args, "--config", str(bad))
        assert res.returncode == 2, (args, res.stderr)
        assert _first_line(res.stderr).startswith(f"error {bad}: cannot read the config file"), (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    good = tmp_path / "good.toml"
    good.write_text('[search]\nfusion = "rrf"\n')
    for args in (("stats", "--db", str(db)), ("check", "--db", str(db))):
        assert cli(*args, "--config", str(good)).returncode == 0, args
    assert cli("remove", "a.pdf", "--db", str(db), "--config", str(good)).stdout == "removed 1 document(s)\n"


def test_remove_takes_a_file_name_that_one_indexed_file_has(indexed, tmp_path):
    folder, db = indexed
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(folder / "a.pdf", other / "a.pdf")  # a copy: recorded as a second path, nothing embedded
    assert cli("index", str(other), "--db", str(db)).returncode == 0
    res = cli("remove", "a.pdf", "--db", str(db))
    both = ", ".join(sorted(str((f / "a.pdf").resolve()) for f in (folder, other)))
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == f"error a.pdf names 2 indexed files ({both}): give the path of the one to remove"
    res = cli("remove", "c.pdf", "--db", str(db))  # papers/sub/c.pdf, by its name
    assert (res.returncode, res.stdout) == (0, "removed 1 document(s)\n"), res.stderr
    files = {Path(p).name for d in docrag.open(db).documents() for p in d["paths"]}
    assert files == {"a.pdf", "b.pdf"}


def test_a_database_without_visual_vectors_takes_another_visual_storage(indexed):
    """A lite database has no visual vectors: how they would be stored is not fixed yet, so a setting for it is
    no mismatch (and no message about vectors it does not have)."""
    _, db = indexed
    res = invoke(
        "search", "zanzibarite", "--db", str(db), "--json", env={**ENV, "DOCRAG_VISUAL_INDEX__STORAGE": "int8"}
    )
    assert res.returncode == 0 and "vectors" not in res.stderr, res.stderr
    assert Path(json.loads(res.stdout)["hits"][0]["file"]).name == "a.pdf"


@pytest.mark.slow
def test_query_files_and_labels_are_checked_first(tmp_path, indexed):
    _, db = indexed
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "a", "text": "zanzibarite"}\n{"id": "b", "query": "wrong key"}\n')
    for args in (("search", "--queries", str(bad), "--db", str(db)), ("eval", "--db", str(db), "--queries", str(bad))):
        res = cli(*args)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert f"{bad}:2" in res.stderr and '"text"' in res.stderr and "query" in res.stderr
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "a", "text": "zanzibarite", "relevant": [{"file": "a.pdf", "page": 2}]}\n')
    t0 = time.time()
    res = cli("eval", "--db", str(db), "--queries", str(good), "--labels", str(tmp_path / "missing.tsv"))
    assert res.returncode == 2 and "--labels" in res.stderr and "no such file" in res.stderr
    assert time.time() - t0 < 60  # failed before the evaluation ran


def test_missing_checkpoint_fails_once_before_reading_files(tmp_path, folder):
    db = tmp_path / "db"
    # A process of its own: huggingface_hub reads HF_HOME once, when it is first imported.
    res = spawn("index", str(folder), "--db", str(db), env={**ENV, "HF_HOME": str(tmp_path / "hf")})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith("error the cpu profile's models are not on this machine and downloads are off")
    commands = [line for line in res.stderr.splitlines() if line.lstrip().startswith("hf download ")]
    assert len(commands) == 4  # every checkpoint of the default profile (adapter base too)
    for model in ("colmodernvbert", "snowflake-arctic-embed-m-v1.5", "siglip2-base-patch16-224"):
        assert model in res.stderr, model
    assert not db.exists()  # no empty database left behind


def test_database_is_not_written_by_reading(indexed):
    _, db = indexed

    def snapshot() -> dict[str, float]:
        return {str(p): p.stat().st_mtime_ns for p in db.rglob("*")}

    before = snapshot()
    for args in (("stats", "--db", str(db)), ("search", "zanzibarite", "--db", str(db)), ("check", "--db", str(db))):
        assert cli(*args).returncode == 0
    assert snapshot() == before


@pytest.mark.slow
def test_kill_campaign_short(tmp_path, folder):
    """SIGKILL `docrag index` at 3 moments: each database opens, shows no partial document, and a rerun gives
    the same rows and rankings as a clean build (benchmarks/kill_campaign.py kills at 20 random moments)."""
    from docrag.testing import pdfgen

    for i in range(3):
        pdfgen.scans_pdf(folder / f"scan{i}.pdf", n_pages=2, seed=i)  # slow pages (thumbnails, OCR off)
    clean = tmp_path / "clean"
    assert cli("index", str(folder), "--db", str(clean), "--profile", "lite").returncode == 0
    queries = ["zanzibarite shipment", "quokkalith harbour", "marmotine Tuesday"]

    def ranking(db: Path) -> list:
        out = []
        for q in queries:
            res = cli("search", q, "--db", str(db), "-k", "3", "--json")
            assert res.returncode == 0, res.stderr
            out.append([(Path(h["file"]).name, h["page"]) for h in json.loads(res.stdout)["hits"]])
        return out

    want_rows, want_rank = table_rows(clean), ranking(clean)
    # Three moments, each an event seen in the database (not a guess at a time): its tables made, the first
    # document half written (rows in, not ready), the first document ready with others still to do.
    moments = {
        "tables made": lambda docs: True,
        "a document half written": lambda docs: "indexing" in docs.values(),
        "a document ready": lambda docs: "ready" in docs.values(),
    }
    for trial, (moment, seen) in enumerate(moments.items()):
        db = tmp_path / f"db{trial}"
        cmd = [EXE, "index", str(folder), "--db", str(db), "--profile", "lite"]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, start_new_session=True
        )
        assert _wait_for(db, seen, proc), f"{moment}: not seen before the run ended"
        assert proc.poll() is None, f"{moment}: the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert cli("stats", "--db", str(db)).returncode == 0, moment
        assert cli("check", "--db", str(db)).returncode == 0, moment  # ready documents have all their rows
        assert cli("index", str(folder), "--db", str(db), "--profile", "lite").returncode == 0
        assert table_rows(db) == want_rows, moment
        assert ranking(db) == want_rank, moment


def _wait_for(db: Path, seen, proc: subprocess.Popen, timeout: float = 240) -> bool:
    """Poll the database at ``db`` (as another process reads it) until ``seen(status by doc_id)`` holds while
    ``proc`` runs; False when it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if Store.exists(db):
            try:
                docs = {r["doc_id"]: r["status"] for r in Store(db).documents.rows(columns=["doc_id", "status"])}
            except Exception:  # caught between the tables' creation and the record: look again
                docs = None
            if docs is not None and seen(docs):
                return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_more_user_mistakes_found_by_a_newcomer(tmp_path, indexed):
    folder = indexed[0]
    plain = tmp_path / "plainfile"
    plain.write_text("x")
    res = cli("index", str(folder), "--db", str(plain), "--profile", "lite")
    assert res.returncode == 2 and "is a file, not a database folder" in res.stderr and "Traceback" not in res.stderr
    new = tmp_path / "new.db"
    res = cli("index", str(tmp_path / "does-not-exist"), "--db", str(new), "--profile", "lite")
    assert res.returncode == 2 and "no such file or folder" in res.stderr and not new.exists()

    db = indexed[1]
    for args, words in (
        (("show", "a.pdf", "999", "--db", str(db)), "page 999 is out of range: a.pdf has 3 page(s)"),
        (("show", "a.pdf", "1", "--db", str(db), "--out", str(tmp_path / "nodir" / "p.png")), "does not exist"),
        (("eval", "--db", str(db), "--queries", __file__, "--k", "abc"), "--k: cut-offs must be positive"),
        (("eval", "--db", str(db), "--queries", __file__, "--k", "0"), "--k: cut-offs must be positive"),
    ):
        res = cli(*args)
        assert res.returncode == 2 and words in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    res = cli("remove", str(tmp_path / "never-indexed.pdf"), "--db", str(db))
    assert res.returncode == 1 and "nothing in" in res.stderr and "matched" in res.stderr
    res = cli("index", str(folder), "--db", str(db), "--profile", "lite")
    assert res.returncode == 0 and len(res.stdout.strip().splitlines()) == 1  # one line, even when piped
