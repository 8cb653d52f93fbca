"""Real checkpoints (``weights`` marker): skipped, with the reason, where they are not on this machine.

No machine here reaches the model hub; these run where the profiles' checkpoints are in the Hugging Face
cache (or given as local directories through DOCRAG_WEIGHTS_<TYPE>=path).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from docrag.config import PROFILES
from docrag.indexes.models import ModelSpec, availability, checkpoints

pytestmark = pytest.mark.weights


def _spec(profile: str, leg: str) -> ModelSpec:
    raw = dict(PROFILES[profile][leg])
    local = os.environ.get(f"DOCRAG_WEIGHTS_{raw['type'].upper().replace('-', '_').replace('.', '_')}")
    if local:
        raw["model"], raw["revision"] = local, None
    spec = ModelSpec(**raw)
    for c in checkpoints(leg, spec):  # an adapter's base too
        if not availability(c.model, c.revision)[0]:
            pytest.skip(
                f"{c.model} (revision {c.revision or 'main'}) is not on this machine; "
                "`docrag models pull` it, or set DOCRAG_WEIGHTS_<TYPE> to a local directory"
            )
    return spec


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_real_visual_model_prefers_the_matching_page(profile, docs):
    from docrag.indexes.colpali_compat import has_torchvision
    from docrag.indexes.maxsim import maxsim_numpy
    from docrag.indexes.multivector import MultiVectorEmbedder
    from docrag.parsers import open_document

    spec = _spec(profile, "visual")
    if spec.type.startswith("colqwen") and not has_torchvision():
        pytest.skip("ColQwen processors need torchvision")
    emb = MultiVectorEmbedder(spec)
    pages = []
    for name in ("table", "slide", "prose"):
        with open_document(docs[name]) as doc:
            pages.append(doc.page(1).render(100))
    vecs = emb.embed_images(pages)
    q = emb.embed_queries(["Why route pages? Scans need vision, tables need layout"])
    scores = maxsim_numpy(q, vecs)[0]
    assert int(np.argmax(scores)) == 1  # the slide


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_real_text_leg_ranks_the_answer_first(profile):
    from docrag.indexes.embedders import create_embedder

    emb = create_embedder(_spec(profile, "text"))
    d = emb.embed_documents(["Paris is the capital of France.", "Mitochondria make ATP."])
    q = emb.embed_queries(["What is the capital of France?"])
    assert int(np.argmax(q @ d.T)) == 0
