"""The Python API as a new user meets it: a mistyped database path is an error, not an empty database; hit lists
and indexes read well in a notebook (short reprs, HTML tables with the pages' thumbnails); a notebook kernel
without ipywidgets gets no tqdm warning from the first search."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import docrag

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def lite_db(tmp_path_factory) -> Path:
    """A copy of the small lite database in tests/data (two pages: a lighthouse, photosynthesis)."""
    db = tmp_path_factory.mktemp("api") / "lite.db"
    shutil.copytree(DATA / "v1_lite.db", db)
    return db


def test_reading_a_mistyped_path_raises_and_creates_nothing(tmp_path):
    typo = tmp_path / "corpsu.db"
    index = docrag.open(typo, profile="lite")
    for read in (lambda: index.search("tide"), index.stats, index.documents, lambda: index.check()):
        with pytest.raises(docrag.NoDatabaseError) as err:
            read()
        assert str(err.value).startswith(f"no database at {typo}: check the path, or make a new database with "), err
        assert "create=True" in str(err.value)
    assert not typo.exists()  # nothing was made on the way
    assert repr(index) == f"Index({str(typo)!r}, profile='lite', text='sentence-transformers/all-MiniLM-L6-v2')"
    assert "none yet" in index._repr_html_()  # a notebook shows it without raising


def test_a_folder_that_is_not_a_database_is_named_as_such(tmp_path):
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "a.pdf").write_bytes(b"%PDF-1.4\n")
    with pytest.raises(docrag.NoDatabaseError, match=r"papers is not a docrag database \(no documents table in it\)"):
        docrag.open(tmp_path / "papers", profile="lite").search("anything")


def test_create_makes_an_empty_database_that_searches_to_nothing(tmp_path):
    db = tmp_path / "new.db"
    index = docrag.open(db, profile="lite", create=True)
    assert db.is_dir()
    again = docrag.open(db)  # reopened: a database, with the profile it was made with
    assert again.settings.profile == "lite" and again.stats()["documents"] == 0
    assert again.search("anything", legs=["bm25"]) == [] and index.documents() == []


def test_results_and_hits_print_short_and_render_as_tables(lite_db):
    index = docrag.open(lite_db)
    hits = index.search("how high was the tide at the lighthouse", k=2, legs=["bm25"])
    assert hits and hits[0].page == 1
    text = repr(hits)
    lines = text.splitlines()
    assert lines[0] == ("Results: 1 hit" if len(hits) == 1 else f"Results: {len(hits)} hits")
    assert re.match(r"  1\. \S+ p\.1  score \d\.\d{4}  confidence \d\.\d{2}  \[bm25 #1\]", lines[1]), lines[1]
    assert hits[0].doc_id not in text and all(len(x) < 160 for x in lines)  # no 64-character ids, no page text
    assert repr(hits[0]).startswith(f"Hit({Path(hits[0].file).name!r}, page=1, score=") and hits[0].doc_id not in repr(
        hits[0]
    )

    table = hits._repr_html_()
    assert table.count("<tr>") == len(hits) + 1  # a header and a row a hit
    for column in ("page image", "file", "page", "score", "confidence", "legs (rank, raw score)", "snippet"):
        assert f"<th>{column}</th>" in table
    assert Path(hits[0].file).name in table and "lighthouse" in table.lower()
    pictures = re.findall(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', table)
    assert len(pictures) == len(hits) and all(len(p) < 12_000 for p in pictures)  # small thumbnails, inline

    card = index._repr_html_()
    assert str(lite_db) in card and "sentence-transformers/all-MiniLM-L6-v2" in card
    assert "<td>documents</td><td>1</td>" in card and "<td>pages</td><td>2 (text 2)</td>" in card
    assert "object at 0x" not in repr(index)


def test_first_search_in_a_kernel_without_ipywidgets_says_nothing(lite_db):
    """tqdm.auto, imported first in a Jupyter kernel without ipywidgets, warns "IProgress not found"; the first
    search imports it (through huggingface_hub). A fresh interpreter that tqdm takes for such a kernel."""
    script = f"""
import sys, types
import IPython
sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")  # how tqdm recognises a kernel
sys.modules["ipywidgets"] = None  # not installed
import docrag
hits = docrag.open({str(lite_db)!r}).search("photosynthesis in leaves", k=1)
print("top page", hits[0].page, "tqdm.auto" in sys.modules)
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "top page 2 True"  # the search did import tqdm.auto
    assert "IProgress" not in res.stderr and "TqdmWarning" not in res.stderr, res.stderr
