"""The visual model's exported vision tower (OpenVINO, ONNX Runtime) on tiny random models of every family it
supports: export, cache, load, agreement with torch fp32, and the fall-backs (other families, masked patches)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from docrag.indexes import accel
from docrag.indexes.maxsim import maxsim_numpy
from docrag.indexes.models import ModelSpec
from docrag.indexes.multivector import FAMILIES, MultiVectorEmbedder

EXPORTABLE = sorted(name for name, fam in FAMILIES.items() if fam.tiles)
PATHS = [(backend, precision) for backend in accel.RUNTIMES for precision in ("fp32", "int8", "int8-static")]
QUERIES = ["tables and charts", "the quick brown fox", "late interaction over patches"]


@pytest.fixture(scope="module")
def reference(tiny, page_images):
    """torch fp32 pages and queries of each exportable family."""
    out = {}
    for name in EXPORTABLE:
        emb = MultiVectorEmbedder(ModelSpec(type=name, model=str(tiny[name]), batch_size=2))
        out[name] = (emb.embed_images(page_images), emb.embed_queries(QUERIES), emb)
    return out


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("name", EXPORTABLE)
def test_the_exported_graph_computes_the_tower(name, reference):
    """The graph that is exported (patch embedding, positions 0 … n-1, encoder, norm) is the tower's own forward
    when no patch is masked: Idefics3's bucketised positions and SigLIP's position ids agree with it."""
    emb = reference[name][2]
    tower = emb.model.model.vision_model
    side = tower.config.image_size
    pixels = torch.randn(3, 3, side, side)
    mask = torch.ones((3, side // tower.config.patch_size, side // tower.config.patch_size), dtype=torch.bool)
    with torch.inference_mode():
        theirs = tower(pixel_values=pixels, patch_attention_mask=mask).last_hidden_state
        ours = accel._tower_module(tower)(pixels)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend,precision", PATHS)
@pytest.mark.parametrize("name", EXPORTABLE)
def test_exported_paths_agree_with_torch_fp32(name, backend, precision, tiny, reference, page_images):
    pages, queries, _ = reference[name]
    spec = ModelSpec(
        type=name, model=str(tiny[name]), batch_size=2, options={"backend": backend, "precision": precision}
    )
    fast = MultiVectorEmbedder(spec)
    assert (fast.plan.backend, fast.plan.precision, fast.plan.note) == (backend, precision, "")
    got = fast.embed_images(page_images)
    tower = fast.model.model.vision_model
    assert tower.label == f"{backend} {precision}"
    assert tower.fallbacks == 0  # every tile ran in the exported graph
    for a, b in zip(pages, got, strict=True):
        assert a.shape == b.shape  # the same token sequence: the layout and the text stay torch's
        floor = 0.99999 if precision == "fp32" else 0.999
        assert _cosines(a, b).mean() >= floor, (name, backend, precision)
    ref = np.asarray(maxsim_numpy(queries, pages))
    score = np.asarray(maxsim_numpy(fast.embed_queries(QUERIES), got))
    np.testing.assert_allclose(score, ref, rtol=1e-4 if precision == "fp32" else 0.01)


def test_an_export_is_built_once_per_checkpoint_and_reused(tiny, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCRAG_CACHE_DIR", str(tmp_path / "cache"))
    spec = ModelSpec(type="colmodernvbert", model=str(tiny["colmodernvbert"]), options={"backend": "openvino",
                     "precision": "int8"})  # fmt: skip
    first = MultiVectorEmbedder(spec)
    assert not (tmp_path / "cache").exists()  # nothing is exported until a page is embedded (a search never)
    first.embed_queries(["a query"])
    assert not (tmp_path / "cache").exists()
    first.load_exported()
    files = sorted(p.name for p in (tmp_path / "cache" / "exports").glob("*/*"))
    assert files == ["vision-fp32.onnx", "vision-int8-weights.onnx"]
    import onnx

    int8 = onnx.load(str(next((tmp_path / "cache" / "exports").glob("*/vision-int8-weights.onnx"))))
    dq = [n.name.split("/")[-2] for n in int8.graph.node if n.op_type == "MatMul" and n.input[1].endswith(".dq")]
    layers = first.model.model.vision_model.config.num_hidden_layers
    assert sorted(dq) == ["fc1"] * layers + ["fc2"] * layers  # int8 MLP weights; the attention stays fp32

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(accel, "_export_onnx", no_export)
    again = MultiVectorEmbedder(spec)  # from the cache
    again.load_exported()
    assert again.model.model.vision_model.label == "openvino int8"
    onnx_int8 = MultiVectorEmbedder(spec.model_copy(update={"options": {"backend": "onnx", "precision": "int8"}}))
    onnx_int8.load_exported()
    assert onnx_int8.model.model.vision_model.label == "onnx int8"  # from the cached fp32 export, not exported again
    assert len(list((tmp_path / "cache" / "exports").iterdir())) == 1


def test_the_cache_key_follows_the_weights(tiny, tmp_path):
    """A local checkpoint is named by its files: new weights in the same folder make a new export."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny["colidefics3"], model)
    spec = ModelSpec(type="colidefics3", model=str(model))
    before = accel.export_key(spec.type, accel.checkpoint_key(spec))
    assert before == accel.export_key(spec.type, accel.checkpoint_key(spec))
    weights = next(model.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes() + b"\0")
    assert accel.export_key(spec.type, accel.checkpoint_key(spec)) != before
    hidden = tmp_path / ".cache" / "models" / "x"  # a checkpoint kept under a .cache folder is keyed all the same
    shutil.copytree(tiny["colidefics3"], hidden)
    under = ModelSpec(type="colidefics3", model=str(hidden))
    key = accel.checkpoint_key(under)[str(hidden)]
    assert any(name.endswith(".safetensors") for name, *_ in key["files"])
    weights = next(hidden.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes() + b"\0")
    assert accel.checkpoint_key(under)[str(hidden)] != key
    pinned = ModelSpec(type="colidefics3", model="org/model", revision="a" * 40)
    assert accel.checkpoint_key(pinned) == {"org/model": "a" * 40}


def test_masked_patches_go_through_the_torch_tower(tiny):
    """A tile with padding inside (patches masked) is not what the graph was built for: the torch tower runs it."""
    spec = ModelSpec(type="colidefics3", model=str(tiny["colidefics3"]), options={"backend": "onnx"})
    emb = MultiVectorEmbedder(spec)
    emb.load_exported()
    tower = emb.model.model.vision_model
    side, patch = tower.config.image_size, tower.config.patch_size
    pixels = torch.randn(2, 3, side, side)
    mask = torch.ones((2, side // patch, side // patch), dtype=torch.bool)
    mask[1, -1, :] = False
    with torch.inference_mode():
        got = tower(pixel_values=pixels, patch_attention_mask=mask).last_hidden_state
        want = tower.fallback(pixel_values=pixels, patch_attention_mask=mask).last_hidden_state
    assert tower.fallbacks == 1
    torch.testing.assert_close(got, want)


def test_other_families_fall_back_to_torch_and_say_so(tiny):
    emb = MultiVectorEmbedder(
        ModelSpec(type="colpali", model=str(tiny["colpali"]), options={"backend": "openvino", "precision": "int8"})
    )
    assert emb.plan.backend == "torch" and emb.plan.precision == "int8"
    assert "colpali runs torch" in emb.plan.describe()
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in emb.model.modules())
    assert accel.plan("colmodernvbert", "openvino", "int8", "cuda", True).backend == "torch"  # a GPU runs torch
    assert accel.plan("colmodernvbert", "torch", "int8-static", "cpu", True) == accel.Plan(
        "torch", "int8", "int8-static needs openvino or onnx; torch runs dynamic int8"
    )


def test_a_missing_runtime_falls_back_to_torch(monkeypatch):
    monkeypatch.setattr(accel, "_importable", lambda name: name != "openvino")
    got = accel.plan("colmodernvbert", "openvino", "int8", "cpu", True)
    assert got.backend == "torch" and "openvino is not installed" in got.note
    monkeypatch.setattr(accel, "_importable", lambda name: name != "onnx")
    got = accel.plan("colmodernvbert", "onnx", "int8", "cpu", True)
    assert got.backend == "torch" and "onnx is not installed" in got.note and "onnxruntime" not in got.note


def test_bad_backend_or_precision_is_one_clear_error(tiny):
    model = str(tiny["colmodernvbert"])
    with pytest.raises(ValueError, match="backend 'openvno': choose one of torch, openvino, onnx"):
        MultiVectorEmbedder(ModelSpec(type="colmodernvbert", model=model, options={"backend": "openvno"}))
    with pytest.raises(ValueError, match="precision 'int4': choose one of fp32, int8, int8-static"):
        MultiVectorEmbedder(ModelSpec(type="colmodernvbert", model=model, options={"precision": "int4"}))


def test_a_failed_export_runs_torch_with_a_warning(tiny, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("DOCRAG_CACHE_DIR", str(tmp_path / "cache"))

    def full_disk(tower, side, out):
        out.write_bytes(b"half an export")  # the disk fills mid-write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(accel, "_export_onnx", full_disk)
    spec = ModelSpec(type="colmodernvbert", model=str(tiny["colmodernvbert"]), options={"backend": "openvino",
                     "precision": "int8"})  # fmt: skip
    emb = MultiVectorEmbedder(spec)
    with caplog.at_level("WARNING", logger="docrag.indexes.multivector"):
        emb.load_exported()
    assert emb.plan.backend == "torch" and "openvino failed" in emb.plan.note and "No space left" in emb.plan.note
    assert "openvino failed" in caplog.text
    assert not isinstance(emb.model.model.vision_model, accel._exported_vision_class())
    assert emb.embed_images([__import__("PIL.Image").Image.new("RGB", (40, 60), "white")])[0].shape[1] == emb.dim
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # nothing half-written left behind


def test_openvino_is_loaded_without_its_telemetry():
    """`import openvino` alone sends a Google Analytics event from a forked process (openvino-telemetry, on
    unless the user opted out); docrag's import of it sends nothing and forks nothing."""
    import subprocess
    import sys

    code = (
        "import os, sys, time\n"
        "attempts = []\n"
        "def no_fork():\n"
        "    attempts.append(1)\n"
        "    raise OSError('no fork here')\n"
        "os.fork = no_fork\n"
        "if sys.argv[1] == 'docrag':\n"
        "    from docrag.indexes import accel\n"
        "    ov = accel.import_openvino()\n"
        "else:\n"
        "    import openvino as ov\n"
        "ov.Core()\n"
        "time.sleep(2)\n"  # the package sends from a thread pool: give it time to try
        "print(len(attempts))\n"
    )
    runs = {how: subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True, timeout=120)
            for how in ("docrag", "plain")}  # fmt: skip
    assert runs["docrag"].returncode == 0 and runs["docrag"].stdout.strip() == "0", runs["docrag"].stderr[-800:]
    # The check can fail: a plain import does try to fork (unless this machine opted out of the telemetry).
    assert runs["plain"].returncode == 0 and runs["plain"].stdout.strip() in ("0", "1")
