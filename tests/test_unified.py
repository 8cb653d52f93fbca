"""Unified single-vector embedders (tiny SigLIP and NomicBert; MiniLM for real quality) and chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from docrag.indexes.models import MINILM_ID, ModelSpec
from docrag.indexes.unified import REGISTRY, UnsupportedModalityError, chunk_page_texts, create_unified


@pytest.fixture(scope="module")
def siglip(tiny):
    return create_unified(ModelSpec(type="siglip", model=str(tiny["siglip"])))


@pytest.fixture(scope="module")
def minilm():
    return create_unified(ModelSpec(type="sentence-transformers", model=MINILM_ID))


def test_registry_declares_modalities():
    assert REGISTRY["sentence-transformers"].modalities == {"text"}
    for name in ("nomic-v1.5", "jina-clip-v2", "siglip"):
        assert REGISTRY[name].modalities == {"text", "image"}
    with pytest.raises(ValueError, match="unknown unified embedder type 'clip'"):
        create_unified(ModelSpec(type="clip", model="x"))


def test_siglip_text_and_images_in_one_normalised_space(siglip, tiny, page_images):
    from transformers import AutoProcessor, SiglipModel

    texts = ["tables and charts", "the quick brown fox"]
    ours_t, ours_i = siglip.embed_documents(texts), siglip.embed_images(page_images[:2])
    assert ours_t.shape == (2, siglip.dim) and ours_i.shape == (2, siglip.dim)
    assert np.allclose(np.linalg.norm(ours_t, axis=1), 1) and np.allclose(np.linalg.norm(ours_i, axis=1), 1)
    # Same numbers as the transformers model used directly.
    model, proc = (
        SiglipModel.from_pretrained(str(tiny["siglip"])).eval(),
        AutoProcessor.from_pretrained(str(tiny["siglip"])),
    )
    with torch.inference_mode():
        t = model.get_text_features(**proc(text=texts, padding="max_length", max_length=16, return_tensors="pt"))
        i = model.get_image_features(**proc(images=page_images[:2], return_tensors="pt"))
    t = getattr(t, "pooler_output", t).numpy()
    i = getattr(i, "pooler_output", i).numpy()
    np.testing.assert_allclose(ours_t, t / np.linalg.norm(t, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(ours_i, i / np.linalg.norm(i, axis=1, keepdims=True), atol=1e-5)


def test_nomic_text_pooling_and_prefixes(tiny):
    from transformers import AutoModel, AutoTokenizer

    emb = create_unified(ModelSpec(type="nomic-v1.5", model=str(tiny["nomic"]), options={"max_tokens": 64, "dim": 16}))
    q = emb.embed_queries(["tables and charts"])
    assert q.shape == (1, 16) and np.allclose(np.linalg.norm(q), 1)
    model, tok = AutoModel.from_pretrained(str(tiny["nomic"])).eval(), AutoTokenizer.from_pretrained(str(tiny["nomic"]))
    batch = tok(["search_query: tables and charts"], return_tensors="pt")
    with torch.inference_mode():
        h = model(**batch).last_hidden_state
    mean = h.mean(1)
    ref = torch.nn.functional.layer_norm(mean, (mean.shape[1],))[:, :16].numpy()
    np.testing.assert_allclose(q, ref / np.linalg.norm(ref), atol=1e-5)
    d = emb.embed_documents(["tables and charts"])
    assert not np.allclose(q, d), "query and document prefixes differ"
    with pytest.raises(UnsupportedModalityError, match="trust_remote_code"):
        emb.embed_images([])


def test_jina_clip_requires_explicit_opt_in():
    with pytest.raises(ValueError, match="opt in with trust_remote_code"):
        create_unified(ModelSpec(type="jina-clip-v2", model="jinaai/jina-clip-v2"))


@pytest.mark.slow
def test_minilm_text_only_and_real_quality(minilm):
    assert minilm.dim == 384 and minilm.max_tokens == 256
    with pytest.raises(UnsupportedModalityError, match="text only"):
        minilm.embed_images([])
    docs = minilm.embed_documents(
        [
            "Paris is the capital and largest city of France.",
            "The mitochondria is the powerhouse of the cell.",
            "ColPali scores query tokens against image patches with late interaction.",
        ]
    )
    q = minilm.embed_queries(["what is the capital of France?", "how does late interaction retrieval work"])
    ranking = (q @ docs.T).argmax(axis=1)
    assert ranking.tolist() == [0, 2]


@pytest.mark.slow
def test_chunks_are_page_aware_and_fit_the_model(minilm):
    long = " ".join(f"word{i} alpha beta" for i in range(400))
    chunks = chunk_page_texts(
        [(1, ["A title", "short paragraph here.", long]), (2, ["page two text"])], minilm, overlap=16
    )
    assert {c.page for c in chunks} == {1, 2}
    assert [c.index for c in chunks if c.page == 2] == [0]
    limit = minilm.max_tokens
    for c in chunks:
        assert minilm.count_tokens(c.text) + 2 <= limit
    p1 = [c for c in chunks if c.page == 1]
    assert p1[0].text.startswith("A title\nshort paragraph here.")
    # Long elements are windowed with overlap: consecutive windows share text.
    w1, w2 = p1[1].text.split(), p1[2].text.split()
    assert set(w1[-6:]) & set(w2[:12])
    with pytest.raises(ValueError, match="leaves only"):
        chunk_page_texts([(1, ["x"])], minilm, max_tokens=4)


def test_loading_is_quiet_unless_docrag_logs_at_info(tiny, capfd):
    """No "Loading weights" bar from transformers in the API or a notebook, unless asked (docrag at INFO)."""
    import logging

    spec = ModelSpec(type="siglip", model=str(tiny["siglip"]))
    create_unified(spec)
    assert "Loading weights" not in capfd.readouterr().err
    logger = logging.getLogger("docrag")
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        create_unified(spec)
    finally:
        logger.setLevel(old)
    assert "Loading weights" in capfd.readouterr().err


def test_cpu_profile_unified_default_embeds_images_without_remote_code():
    from docrag.config import load_settings
    from docrag.indexes.unified import unified_class

    for profile in ("cpu", "gpu"):
        s = load_settings(profile)
        assert not s.unified.trust_remote_code and not (s.visual and s.visual.trust_remote_code)
        assert "image" in unified_class(s.unified).modalities_for(s.unified), profile
