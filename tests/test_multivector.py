"""ColPali-family embedder with tiny random models of the real architectures (ColIdefics3, ColPali,
ColModernVBert, ColGemma3; ColQwen3 and ColQwen3.5 where torchvision imports).

Equivalence: our embeddings and scores equal colpali-engine's own forward + score_multi_vector where no
padding is involved; they differ only where zero padding would change a ranking (see test_maxsim.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from docrag.indexes.colpali_compat import colpali_engine, has_torchvision
from docrag.indexes.maxsim import maxsim_numpy
from docrag.indexes.models import ModelSpec, ModelUnavailableError
from docrag.indexes.multivector import MultiVectorEmbedder

CLASSES = {
    "colidefics3": ("ColIdefics3", "ColIdefics3Processor"),
    "colpali": ("ColPali", "ColPaliProcessor"),
    "colmodernvbert": ("ColModernVBert", "ColModernVBertProcessor"),
    "colgemma3": ("ColGemma3", "ColGemmaProcessor3"),
    "colqwen3": ("ColQwen3", "ColQwen3Processor"),
    "colqwen3_5": ("ColQwen3_5", "ColQwen3_5Processor"),
}
NEEDS_TORCHVISION = ["colqwen3", "colqwen3_5"]
FAMILIES = [name for name in CLASSES if has_torchvision() or name not in NEEDS_TORCHVISION]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tiny):
    name = request.param
    emb = MultiVectorEmbedder(ModelSpec(type=name, model=str(tiny[name]), batch_size=3))
    m = colpali_engine()
    model_cls, proc_cls = (getattr(m, c) for c in CLASSES[name])
    ref_model = model_cls.from_pretrained(str(tiny[name])).eval()
    ref_proc = proc_cls.from_pretrained(str(tiny[name]))
    return name, emb, ref_model, ref_proc


def _reference(model, batch):
    batch = {k: v for k, v in batch.items() if k != "labels"}
    with torch.inference_mode():
        return model(**batch)


def test_image_embeddings_equal_colpali_engine_forward(family, page_images):
    _, emb, ref_model, ref_proc = family
    ours = emb.embed_images(page_images)
    for img, mine in zip(page_images, ours, strict=True):
        batch = ref_proc.process_images([img])  # one image: no padding involved
        theirs = _reference(ref_model, batch)[0]
        assert mine.shape == (int(batch["attention_mask"].sum()), emb.dim)
        assert np.abs(mine - theirs.numpy()).max() <= 1e-5
        assert np.allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-4)


def test_query_embeddings_equal_colpali_engine_forward(family):
    _, emb, ref_model, ref_proc = family
    queries = ["what is the capital of france", "tables"]
    ours = emb.embed_queries(queries)
    for q, mine in zip(queries, ours, strict=True):
        theirs = _reference(ref_model, ref_proc.process_queries([q]))[0]
        assert np.abs(mine - theirs.numpy()).max() <= 1e-5


def test_scores_equal_score_multi_vector_without_padding(family, page_images):
    _, emb, _, ref_proc = family
    docs = emb.embed_images(page_images)
    n = min(len(d) for d in docs)
    docs = [d[:n] for d in docs]  # equal lengths: colpali-engine pads nothing
    queries = emb.embed_queries(["capital of france", "a longer question about charts and tables"])
    ours = maxsim_numpy(queries, docs)
    theirs = ref_proc.score_multi_vector(
        [torch.from_numpy(q) for q in queries], [torch.from_numpy(d) for d in docs], device="cpu"
    ).numpy()
    assert np.abs(ours - theirs).max() <= 1e-5


def test_batches_drop_padding(family, page_images):
    """Images of different sizes in one batch: padded positions are dropped, real vectors unchanged."""
    _, emb, *_ = family
    batched = emb.embed_images(page_images)  # batch_size=3: mixed sizes padded together
    single = [emb.embed_images([img])[0] for img in page_images]
    for b, s in zip(batched, single, strict=True):
        assert b.shape == s.shape
        assert np.isfinite(b).all()
        assert np.abs(b - s).max() <= 1e-4


def test_int8_precision_agrees_with_fp32_and_keeps_the_ranking(family, tiny, page_images):
    """options.precision = "int8" (dynamic int8 Linear layers, CPU): the same vectors to a cosine near 1, MaxSim
    within 2% and the order of pages that are not near ties, for every family."""
    from docrag.indexes.maxsim import maxsim_numpy

    name, emb, _, _ = family
    spec = emb.spec.model_copy(update={"options": {"precision": "int8"}})
    fast = MultiVectorEmbedder(spec)
    assert fast.precision == "int8" and fast.model is not emb.model
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in fast.model.modules()), name
    pages, pages8 = emb.embed_images(page_images), fast.embed_images(page_images)
    for a, b in zip(pages, pages8, strict=True):
        assert a.shape == b.shape
        cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert cos.mean() >= 0.99, (name, cos.mean())
    queries = ["tables and charts", "the quick brown fox", "late interaction over patches"]
    ref = np.asarray(maxsim_numpy(emb.embed_queries(queries), pages))
    got = np.asarray(maxsim_numpy(fast.embed_queries(queries), pages8))
    np.testing.assert_allclose(got, ref, rtol=0.02, err_msg=name)  # MaxSim within 2%
    # Pages whose scores differ by more than that keep their order (tiny random models leave near ties).
    for r, g in zip(ref, got, strict=True):
        for i in range(len(r)):
            for j in range(len(r)):
                if r[i] - r[j] > 0.04 * np.abs(r).max():
                    assert g[i] > g[j], (name, r, g)
    with pytest.raises(ValueError, match="precision 'int4': choose one of fp32, int8"):
        MultiVectorEmbedder(emb.spec.model_copy(update={"options": {"precision": "int4"}}))


def test_token_pooling_reduces_vectors(tiny, page_images):
    emb = MultiVectorEmbedder(ModelSpec(type="colidefics3", model=str(tiny["colidefics3"]), options={"pool_factor": 3}))
    full = MultiVectorEmbedder(ModelSpec(type="colidefics3", model=str(tiny["colidefics3"]))).embed_images(page_images)
    pooled = emb.embed_images(page_images)
    for f, p in zip(full, pooled, strict=True):
        assert len(p) <= max(len(f) // 3, 1) + 1 and len(p) < len(f)
        assert np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-4)


def test_missing_checkpoint_is_one_clear_error(tmp_path):
    spec = ModelSpec(type="colidefics3", model="vidore/colSmol-256M", revision="0123abc")
    with pytest.raises(ModelUnavailableError) as info:
        MultiVectorEmbedder(spec)
    msg = str(info.value)
    assert "vidore/colSmol-256M" in msg and "0123abc" in msg
    assert "HF_HOME" in msg and "directory" in msg
    with pytest.raises(ModelUnavailableError, match="no such directory"):
        MultiVectorEmbedder(ModelSpec(type="colpali", model=str(tmp_path / "missing")))


def test_unknown_type_is_refused_not_guessed(tiny):
    with pytest.raises(ValueError, match="unknown multi-vector model type 'colsmol'"):
        MultiVectorEmbedder(ModelSpec(type="colsmol", model=str(tiny["colidefics3"])))


@pytest.mark.skipif(has_torchvision(), reason="this machine has torchvision: ColQwen processors can load")
@pytest.mark.parametrize("model_type", ["colqwen2_5", "colqwen3", "colqwen3_5"])
def test_colqwen_without_torchvision_says_what_to_install(tiny, model_type):
    with pytest.raises(ImportError, match=r"needs torchvision.*make gpu.*torchvision==0\.28\.0.*colidefics3"):
        MultiVectorEmbedder(ModelSpec(type=model_type, model=str(tiny["colidefics3"])))


@pytest.mark.skipif(has_torchvision(), reason="this machine has torchvision: ColQwen processors can load")
@pytest.mark.parametrize("model_type", ["colqwen3", "colqwen3_5"])
def test_colqwen3_processors_truly_need_torchvision(model_type):
    """The registry's needs_torchvision is a fact, not a guess: the processor does not even construct."""
    from docrag.testing import tiny_models

    tk, ip, vp, *_ = tiny_models._qwen3_vl_parts()
    proc_cls = getattr(colpali_engine(), CLASSES[model_type][1])
    with pytest.raises((ImportError, AttributeError, TypeError, ValueError)):
        proc_cls(image_processor=ip, tokenizer=tk, video_processor=vp)


def test_max_edge_sets_the_tiling_edge_for_idefics3_style_families(tiny):
    for name in ("colidefics3", "colmodernvbert"):
        emb = MultiVectorEmbedder(ModelSpec(type=name, model=str(tiny[name]), options={"max_edge": 32}))
        assert emb.processor.image_processor.size == {"longest_edge": 32}


def test_every_profile_names_a_registered_family_and_every_family_resolves():
    """The checkpoints have one home, the profiles: each names a registered type, pinned, no remote code."""
    from docrag.config import PROFILES
    from docrag.indexes.embedders import REGISTRY as SINGLE
    from docrag.indexes.multivector import FAMILIES as REGISTRY

    for name, profile in PROFILES.items():
        for leg, registry in (("visual", REGISTRY), ("text", SINGLE), ("image", SINGLE)):
            spec = profile[leg]
            if spec is None:
                continue
            assert spec["type"] in registry, (name, leg)
            assert spec.get("revision") and not spec.get("trust_remote_code"), (name, leg)
    m = colpali_engine()
    for fam in REGISTRY.values():  # every class name resolves in the installed colpali-engine
        assert getattr(m, fam.model_class) and getattr(m, fam.processor_class)


def test_trust_remote_code_only_on_opt_in(tiny, monkeypatch):
    import docrag.indexes.models as models

    seen = []
    real = models.load_pretrained

    def spy(loader, model, revision, **kw):
        # What reaches from_pretrained itself, whatever load_pretrained does with its own arguments.
        def from_pretrained(*args, **kwargs):
            seen.append(kwargs.get("trust_remote_code", False))
            return loader(*args, **kwargs)

        return real(from_pretrained, model, revision, **kw)

    monkeypatch.setattr(models, "load_pretrained", spy)
    MultiVectorEmbedder(ModelSpec(type="colidefics3", model=str(tiny["colidefics3"])))
    assert seen and not any(seen)
    seen.clear()
    user_opts_in = True  # the user's explicit opt-in for this model
    MultiVectorEmbedder(ModelSpec(type="colidefics3", model=str(tiny["colidefics3"]), trust_remote_code=user_opts_in))
    assert seen and all(seen)


def test_peft_adapter_loads_over_its_declared_base(tiny, tmp_path, page_images):
    """A LoRA adapter whose adapter_config names a hub base: docrag takes the base from options.base_model
    and computes what colpali-engine's own from_pretrained computes with that base."""
    import json
    import shutil

    from docrag.testing import tiny_models

    base = tiny["colmodernvbert"]
    adapter = tiny_models.build_lora_adapter(base, tmp_path / "adapter", "ColModernVBert", "tiny-org/not-here")
    spec = ModelSpec(type="colmodernvbert", model=str(adapter), options={"base_model": str(base)})
    ours = MultiVectorEmbedder(spec)

    # colpali-engine's own path, with the adapter pointing at the local base.
    ref_dir = tmp_path / "ref"
    shutil.copytree(adapter, ref_dir)
    cfg = json.loads((ref_dir / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(base)
    (ref_dir / "adapter_config.json").write_text(json.dumps(cfg))
    m = colpali_engine()
    ref_model = m.ColModernVBert.from_pretrained(str(ref_dir)).eval()
    ref_proc = m.ColModernVBertProcessor.from_pretrained(str(ref_dir))
    batch = ref_proc.process_images([page_images[0]])
    with torch.inference_mode():
        want = ref_model(**batch)[0][batch["attention_mask"][0].bool()].numpy()
    got = ours.embed_images([page_images[0]])[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    plain = MultiVectorEmbedder(ModelSpec(type="colmodernvbert", model=str(base))).embed_images([page_images[0]])[0]
    assert np.abs(plain - got).max() > 1e-3, "the adapter must change the vectors"

    # Without options.base_model the adapter's own hub id is tried, and its absence is one clear error.
    with pytest.raises(ModelUnavailableError, match="tiny-org/not-here"):
        MultiVectorEmbedder(ModelSpec(type="colmodernvbert", model=str(adapter)))
