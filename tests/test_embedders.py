"""Single-vector embedders of the text and image legs: tiny random models of each default architecture against
their reference implementations (the model card's own code), MiniLM for real quality, and chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from docrag.indexes.chunking import chunk_page_texts
from docrag.indexes.embedders import REGISTRY, UnsupportedModalityError, create_embedder
from docrag.indexes.models import MINILM_ID, ModelSpec


@pytest.fixture(scope="module")
def siglip(tiny):
    return create_embedder(ModelSpec(type="siglip", model=str(tiny["siglip"])))


@pytest.fixture(scope="module")
def minilm():
    return create_embedder(ModelSpec(type="sentence-transformers", model=MINILM_ID))


def test_registry_declares_modalities():
    assert REGISTRY["sentence-transformers"].modalities == {"text"}
    for name in ("nomic-v1.5", "jina-clip-v2", "siglip"):
        assert REGISTRY[name].modalities == {"text", "image"}
    with pytest.raises(ValueError, match="unknown embedder type 'clip'"):
        create_embedder(ModelSpec(type="clip", model="x"))


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

    emb = create_embedder(ModelSpec(type="nomic-v1.5", model=str(tiny["nomic"]), options={"max_tokens": 64, "dim": 16}))
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
        create_embedder(ModelSpec(type="jina-clip-v2", model="jinaai/jina-clip-v2"))


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
    create_embedder(spec)
    assert "Loading weights" not in capfd.readouterr().err
    logger = logging.getLogger("docrag")
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        create_embedder(spec)
    finally:
        logger.setLevel(old)
    assert "Loading weights" in capfd.readouterr().err


def test_profiles_give_each_leg_a_model_for_its_role():
    """Text legs are passage retrievers (never a CLIP/SigLIP text tower); image legs embed images natively."""
    from docrag.config import PROFILES, load_settings
    from docrag.indexes.embedders import embedder_class

    for profile in PROFILES:
        s = load_settings(profile)
        assert s.text is not None and s.text.type == "sentence-transformers", profile
        assert embedder_class(s.text).modalities_for(s.text) == {"text"}
        assert s.text.revision and len(s.text.revision) == 40 and s.text.options.get("pooling"), profile
        for spec in (s.text, s.image, s.visual):
            assert spec is None or not spec.trust_remote_code, profile
        if s.image is not None:
            assert "image" in embedder_class(s.image).modalities_for(s.image), profile
    assert load_settings("lite").image is None  # offline: no image model


def _profile_spec(spec: dict, path) -> ModelSpec:
    """A profile's spec (prefix, pooling) with a tiny checkpoint of the same architecture in its place."""
    return ModelSpec(**{**spec, "model": str(path), "revision": None})


def _cls_reference(path, texts: list[str]) -> np.ndarray:
    """snowflake-arctic-embed-m-v1.5's model card: the CLS token's hidden state, L2-normalised."""
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(str(path)), AutoModel.from_pretrained(str(path)).eval()
    with torch.inference_mode():
        batch = tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        cls = model(**batch).last_hidden_state[:, 0]
    return torch.nn.functional.normalize(cls, dim=-1).numpy()


QUERIES = ["tables and charts", "what is the capital of france?", "late interaction over patches of pages"]


def test_arctic_layout_equals_its_model_card(tiny):
    from sentence_transformers import SentenceTransformer

    from docrag.config import ARCTIC_M
    from docrag.testing.tiny_text import ARCTIC_QUERY_PREFIX

    emb = create_embedder(_profile_spec(ARCTIC_M, tiny["arctic"]))
    assert emb.pooling == "cls" and emb.query_prefix == ARCTIC_QUERY_PREFIX == ARCTIC_M["options"]["query_prefix"]
    q = emb.embed_queries(QUERIES)
    assert emb._fast is not None and emb._model is None  # queries ran in numpy: no torch model loaded
    np.testing.assert_allclose(q, _cls_reference(tiny["arctic"], [ARCTIC_QUERY_PREFIX + t for t in QUERIES]), atol=1e-5)
    d = emb.embed_documents(QUERIES)  # documents: no prefix, through sentence-transformers
    np.testing.assert_allclose(d, _cls_reference(tiny["arctic"], QUERIES), atol=1e-5)
    st = SentenceTransformer(str(tiny["arctic"]), device="cpu")
    np.testing.assert_allclose(q, st.encode_query(QUERIES), atol=1e-5)
    np.testing.assert_allclose(emb.embed_queries(QUERIES), q, atol=1e-5)  # the torch path, now loaded, agrees


def test_qwen3_embedding_layout_equals_its_model_card(tiny):
    """Qwen3-Embedding's card: left padding, the last token's hidden state, L2; queries get the instruction."""
    from transformers import AutoModel, AutoTokenizer

    from docrag.config import QWEN3_EMBEDDING

    path = tiny["qwen3_embedding"]
    emb = create_embedder(_profile_spec(QWEN3_EMBEDDING, path))
    assert emb.pooling == "lasttoken" and emb._fast is None  # not BERT: sentence-transformers runs it

    def last_token_pool(hidden, mask):
        if bool(mask[:, -1].all()):  # left padding: the last position is every text's last token
            return hidden[:, -1]
        lengths = mask.sum(1) - 1
        return hidden[torch.arange(hidden.shape[0]), lengths]

    tok = AutoTokenizer.from_pretrained(str(path), padding_side="left")
    model = AutoModel.from_pretrained(str(path)).eval()

    def reference(texts):
        batch = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.inference_mode():
            out = model(**batch).last_hidden_state
        return torch.nn.functional.normalize(last_token_pool(out, batch["attention_mask"]), dim=-1).numpy()

    task = "Given a web search query, retrieve relevant passages that answer the query"
    q = emb.embed_queries(QUERIES)
    np.testing.assert_allclose(q, reference([f"Instruct: {task}\nQuery:{t}" for t in QUERIES]), atol=1e-5)
    np.testing.assert_allclose(emb.embed_documents(QUERIES), reference(QUERIES), atol=1e-5)


def test_declared_pooling_is_checked_against_the_checkpoint(tiny):
    from docrag.config import ARCTIC_M

    spec = _profile_spec(ARCTIC_M, tiny["arctic"]).model_copy(update={"options": {"pooling": "mean"}})
    with pytest.raises(ValueError, match="pooling is 'mean', but the checkpoint pools by 'cls'"):
        create_embedder(spec)
    # Without a declared prefix, the checkpoint's own prompts apply.
    plain = _profile_spec(ARCTIC_M, tiny["arctic"]).model_copy(update={"options": {}})
    assert create_embedder(plain).query_prefix == ARCTIC_M["options"]["query_prefix"]


def test_one_spec_for_both_legs_is_one_model(tiny):
    from docrag.indexes.embedders import create_embedders

    spec = ModelSpec(type="siglip", model=str(tiny["siglip"]))
    text, image = create_embedders(spec, spec.model_copy(update={"batch_size": 7}))  # run-time fields differ
    assert text is image
    text, image = create_embedders(_profile_spec({"type": "sentence-transformers"}, tiny["arctic"]), spec)
    assert text is not image and image.modalities == {"text", "image"}
