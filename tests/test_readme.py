"""The README's Python examples run as written."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow
@pytest.mark.ray
def test_readme_python_examples_run(tmp_path, monkeypatch, ray_local, s3):
    """(The Scaling-out example runs on the session's Ray and S3 emulator, as it would on ones already up.)"""
    blocks = _python_blocks()
    assert len(blocks) >= 2 and "docrag.open" in blocks[0]
    assert {"docrag.integrations.langchain", "docrag.integrations.llamaindex"} <= {
        m for b in blocks for m in re.findall(r"from (docrag\.integrations\.\w+) import DocragRetriever", b)
    }  # the retrievers' examples run here too, on the API section's database
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    # The object-storage example runs against the local S3 emulator, with the bucket it names.
    buckets = sorted(set(re.findall(r"s3://([a-z0-9-]+)/", "".join(blocks))))
    for b in buckets:
        if b not in {x["Name"] for x in s3.client.list_buckets()["Buckets"]}:
            s3.client.create_bucket(Bucket=b)
    for key, value in s3.env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    # What the examples say they do: the samples indexed with their metadata, found, the regions drawn.
    from PIL import Image

    import docrag

    index = docrag.open(tmp_path / "docrag-demo.db")
    # the PDFs, LICENSES.md and examples/mixed (a .docx, a .pptx, an .md)
    assert index.stats()["documents"] == 8 and index.stats()["incomplete_documents"] == 0
    assert all(d["metadata"] == {"collection": "samples"} for d in index.documents())
    question = "Which table gives the psoriasis cases and controls by IL1B_511 genotype?"
    top = index.search(question, k=1)[0]
    assert top.file.endswith("maxtest_excerpt.pdf")
    # What the API section shows a generate step gets: metadata, the matching chunk, the page's text, a filter
    # by metadata key, and a confidence that a real question clears and a nonsense one does not.
    assert top.metadata == {"collection": "samples"} and top.chunk is not None
    words, page_words = top.chunk.text.split(), set(top.text.split())
    assert sum(w in page_words for w in words) >= 0.9 * len(words)  # the page's own words (a few dehyphenated)
    assert top.confidence >= 0.5
    assert index.search(question, where={"collection": "samples"}) and not index.search(
        question, where={"collection": "x"}
    )
    assert list(index.search("zxqv blorft marmalade", min_score=0.5)) == []
    with Image.open(tmp_path / "why.png") as drawn:
        assert drawn.size[0] > 300 and len(drawn.getcolors(1 << 24) or []) > 16  # a page drawn, not a blank
