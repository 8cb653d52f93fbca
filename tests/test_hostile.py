"""A folder of hostile files (tests/hostile.py: cycles, bombs, pipes, broken links …) indexes to completion."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import docrag


@pytest.mark.slow
def test_hostile_folder_indexes_to_completion(tmp_path, capfd):
    import hostile

    folder = tmp_path / "hostile"
    expect = hostile.build_hostile_folder(folder)
    assert len(expect) >= 30
    ocr = shutil.which("tesseract") is not None
    idx = docrag.open(
        tmp_path / "db",
        profile="lite",
        # unstructured on: pdfminer's endless loop on a /Length cycle is one of the things to survive.
        ingest={
            "ocr": ocr,
            "elements": "unstructured",
            "ocr_dpi": 150,
            "page_timeout_s": 30,
            "document_timeout_s": 120,
            "elements_timeout_s": 10,
            "worker_memory_bytes": 3 << 30,
        },
        limits={"max_pages": 30},
    )
    # Bounded by the budgets, not by a wall clock here: every hang below is cut short by one, and says which.
    report = idx.add([folder], workers=2)

    def rel(path: str) -> str:
        try:
            return Path(path).relative_to(folder).as_posix()
        except ValueError:
            return path

    failed = {rel(f["file"]): f["error"] for f in report.failed}
    indexed = {rel(p) for d in idx.documents() for p in d["paths"]}
    for name, what in expect.items():
        if what == "fail":
            assert name in failed, f"{name} should be reported as failed"
            assert failed[name].strip(), name
        elif what == "ok":
            assert name in indexed, f"{name} should be indexed (failed: {failed.get(name)})"
    assert idx.stats()["incomplete_documents"] == 0
    (huge,) = [d for d in idx.documents() if any(p.endswith("huge.md") for p in d["paths"])]
    assert huge["n_pages"] == 30  # bounded: max_pages pages of 100 MB are read, no more
    for name, word in hostile.GOOD_TEXT.items():
        if name.endswith(".png") and not ocr:
            continue
        hits = idx.search(word, k=10, legs=["bm25"])
        assert any(rel(p) == name for h in hits for p in _paths(idx, h.doc_id)), (name, word)
    # Every failure names its reason; the pdfminer loop was cut short and the text layer kept the file.
    assert all(len(e) > 5 for e in failed.values())
    # pdfminer loops forever on these /Length cycles; pypdfium2 reads them: element extraction is cut short
    # and the pages keep their text layer, saying so.
    for name in ("length_cycle.pdf", "length_self.pdf"):
        (doc,) = [d for d in idx.documents() if any(p.endswith(name) for p in d["paths"])]
        reasons = " ".join(" ".join(r["reasons"]) for r in idx.store.pages.rows([doc["doc_id"]], columns=["reasons"]))
        assert "element extraction timed out" in reasons and "text layer" in reasons, reasons
    # The PDFium bombs that abort their process were contained: the worker died, the file is reported.
    assert any("worker killed by SIGABRT" in e for e in failed.values()), failed
    # Quiet by default: the parsers' own chatter and a dying decoder's C++ message stay out of the terminal
    # (the failures above say what happened); docrag's warnings remain.
    err = capfd.readouterr().err
    for noise in ("Ignoring wrong pointing object", "terminate called", "MediaBox missing", "invalid pdf header"):
        assert noise not in err, (noise, err[-2000:])


def _paths(idx, doc_id: str) -> list[str]:
    return next(d["paths"] for d in idx.documents() if d["doc_id"] == doc_id)


@pytest.mark.slow
def test_route_survives_the_pdfium_bombs(tmp_path):
    """``docrag route`` parses in the isolated workers too: the files that abort PDFium's page load (SIGABRT)
    kill a worker, are reported, and the other files are routed."""
    import json
    import subprocess
    import sys

    import hostile

    folder = tmp_path / "bombs"
    bombs = ("form_fanout.pdf", "content_bomb_paths.pdf", "nested_flate_bomb.pdf")
    hostile.build_hostile_folder(folder, skip=[k for k in hostile.KINDS if k not in (*bombs, "good.pdf")])
    cmd = [str(Path(sys.executable).parent / "docrag"), "route", str(folder), "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(res.stdout)
    errors = {Path(e["file"]).name: e["error"] for e in report["errors"]}
    assert any("SIGABRT" in e for e in errors.values()), errors
    routed = {Path(p["file"]).name for p in report["pages"]}
    assert "good.pdf" in routed and set(errors) | routed >= {*bombs}
    assert "Traceback" not in res.stderr
