"""What a hit carries for a generate step (page text, the matching chunk, the document's metadata), metadata key
filters, and the confidence a user can threshold: on one small lite database (the real MiniLM text model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clirun import invoke

import docrag
from docrag.pipeline.confidence import DEFAULT_MIN_SCORE

PLANTED = "The quarterly zanzibarite shipment left the harbour of Mombasa on a Tuesday."  # conftest hits_db
OTHER = "The lighthouse keeper writes down the height of the tide every morning."  # two_topics.pdf, page 1
NONSENSE = "zxqv blorft quantum marmalade"
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def lite_db(hits_db):
    """conftest's ``hits_db`` (planted.pdf with {project: demo, year: 2024}; other.pdf, OTHER on page 1, with
    {project: demo-old, tags: [x, y]})."""
    return docrag.open(hits_db), hits_db  # searched as a new session would: the query embedded in numpy, no torch model


def _names(hits) -> set[str]:
    return {Path(h.file).name for h in hits}


def _raw_version(db: Path) -> int:
    from docrag.indexes.database import Database
    from docrag.indexes.schema import META

    return {r["key"]: r["value"] for r in Database(db).rows(META)}["schema_version"]


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.slow
def test_a_hit_carries_its_page_text_the_matching_chunk_and_the_metadata(lite_db):
    idx, _ = lite_db
    hits = idx.search("zanzibarite shipment Mombasa harbour", k=3)
    top = hits[0]
    assert (Path(top.file).name, top.page) == ("planted.pdf", 2)
    assert PLANTED in _flat(top.text) and len(top.text) > len(top.snippet)  # the whole page, not a snippet
    assert top.metadata == {"project": "demo", "year": 2024}
    assert top.chunk.leg == "text" and "zanzibarite" in top.chunk.text and _flat(top.chunk.text) in _flat(top.text)
    assert top.chunk.boxes and all(0 <= v <= 1 for box in top.chunk.boxes for v in box)
    frame = hits.to_pandas()
    assert {"confidence", "metadata", "chunk", "chunk_boxes", "chunk_leg", "text"} <= set(frame.columns)
    assert frame.loc[0, "chunk"] == top.chunk.text and frame.loc[0, "metadata"] == top.metadata
    assert frame.loc[0, "text"] == top.text
    # Found by BM25 alone: the page's chunk that holds the query's terms.
    bm25 = idx.search("zanzibarite shipment", k=1, legs=["bm25"])[0]
    assert bm25.page == 2 and bm25.chunk.leg == "bm25" and "zanzibarite" in bm25.chunk.text


@pytest.mark.slow
def test_metadata_filters_by_key_next_to_sql(lite_db):
    idx, _ = lite_db
    q = "zanzibarite shipment"
    assert _names(idx.search(q, where={"project": "demo"})) == {"planted.pdf"}  # not "demo-old"
    assert _names(idx.search(q, where={"project": "demo-old"})) == {"other.pdf"}
    assert _names(idx.search(q, where={"year": "2024"})) == {"planted.pdf"}  # 2024 compares as text
    assert _names(idx.search(q, where={"tags": "y"})) == {"other.pdf"}  # a list holds the value
    assert _names(idx.search(q, where={"project": ["demo", "demo-old"]})) == {"planted.pdf", "other.pdf"}
    assert _names(idx.search(q, where=["path LIKE '%planted%'", {"project": "demo"}])) == {"planted.pdf"}
    assert list(idx.search(q, where=["path LIKE '%other%'", {"project": "demo"}])) == []
    assert list(idx.search(q, where={"project": "demo", "tags": "x"})) == []
    assert list(idx.search(q, where={"project": "nope"})) == []


@pytest.mark.slow
def test_a_nonsense_query_stays_under_the_default_threshold_and_a_real_one_clears_it(lite_db):
    idx, _ = lite_db
    nonsense = idx.search(NONSENSE, k=10)
    assert nonsense and all(h.confidence < DEFAULT_MIN_SCORE for h in nonsense), [h.confidence for h in nonsense]
    # A question in other words than the page's (its meaning carries it), and keywords on a page of word salad
    # (its words carry it).
    for query, right in (
        ("How high was the tide at the lighthouse?", ("other.pdf", 1)),
        ("zanzibarite shipment Mombasa harbour", ("planted.pdf", 2)),
    ):
        hits = idx.search(query, k=10)
        found = {(Path(h.file).name, h.page): h.confidence for h in hits}
        assert found[right] >= DEFAULT_MIN_SCORE and found[right] == max(found.values()), (query, found)
        kept = idx.search(query, k=10, min_score=DEFAULT_MIN_SCORE)
        assert [(Path(h.file).name, h.page) for h in kept][:1] == [right]
    assert list(idx.search(NONSENSE, k=10, min_score=DEFAULT_MIN_SCORE)) == []


@pytest.mark.slow
def test_cli_search_json_filter_and_min_score(lite_db):
    _, db = lite_db
    # A key given twice matches either value; --where must hold too.
    res = invoke("search", "tide at the lighthouse", "--db", db, "--filter", "project=demo",
                 "--filter", "project=demo-old", "--where", "path LIKE '%other%'", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)["hits"]
    assert {Path(h["file"]).name for h in hits} == {"other.pdf"}
    top = hits[0]
    assert set(top) == {
        "file", "page", "score", "confidence", "route", "label", "legs", "snippet", "metadata", "chunk", "text"
    }  # fmt: skip
    assert top["page"] == 1 and top["metadata"] == {"project": "demo-old", "tags": ["x", "y"]}
    assert _flat(top["text"]) == OTHER and top["confidence"] >= DEFAULT_MIN_SCORE
    assert top["chunk"]["leg"] == "text" and _flat(top["chunk"]["text"]) == OTHER and top["chunk"]["boxes"]

    res = invoke("search", NONSENSE, "--db", db, "--min-score", "0.5")
    assert res.returncode == 0
    assert res.stderr.splitlines()[0] == "note: no page has a confidence of at least 0.5 (--min-score) for this query"

    res = invoke("search", "tide", "--db", db, "--filter", "project")
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        "error --filter 'project': use key=value (a key given again matches any of its values)"
    ]
    res = invoke("search", "tide", "--db", db, "--min-score", "1.5")
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        "error --min-score 1.5: a confidence is between 0 and 1 (0.5 is a reasonable start)"
    ]


@pytest.mark.slow
def test_a_database_written_before_metadata_pairs_filters_by_key_and_gets_them_when_written(lite_db, tmp_path):
    """A schema-2 database (this one, with metadata_pairs dropped and its record set back) opens read-only and
    filters by key in Python; the first write gives its documents table the column, filled from the metadata,
    and the filters run in LanceDB with the same results. A schema-1 database searches as before."""
    from docrag.indexes.database import Database
    from docrag.indexes.metadata import COLUMN
    from docrag.indexes.schema import DOCUMENTS
    from docrag.indexes.store import Store

    _, db = lite_db
    old = tmp_path / "old.db"
    shutil.copytree(db, old)
    raw = Database(old)
    raw.writable = True
    raw.table(DOCUMENTS).drop_columns([COLUMN])
    raw.set_meta({"schema_version": 2})
    q = "zanzibarite shipment"
    read_only = docrag.open(old)
    assert not read_only.store.documents.has_pairs()
    assert _names(read_only.search(q, where={"project": "demo"})) == {"planted.pdf"}
    assert _names(read_only.search(q, where={"tags": "x", "project": ["demo-old"]})) == {"other.pdf"}
    assert list(read_only.search(q, where={"project": "nope"})) == []
    assert _raw_version(old) == 2  # reading wrote nothing

    Store(old, writable=True)  # what `docrag index` or `remove` does first
    again = docrag.open(old)
    assert again.store.documents.has_pairs() and _raw_version(old) == 3
    assert _names(again.search(q, where={"project": "demo"})) == {"planted.pdf"}
    assert _names(again.search(q, where={"year": 2024.0})) == {"planted.pdf"}
    assert again.documents()[0]["metadata"] and COLUMN not in again.documents()[0]

    v1 = docrag.open(shutil.copytree(DATA / "v1_lite.db", tmp_path / "v1.db"))
    assert [h.page for h in v1.search("how high was the tide at the lighthouse", k=2)] == [1, 2]
    assert list(v1.search("how high was the tide at the lighthouse", where={"project": "demo"})) == []
