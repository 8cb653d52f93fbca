"""Faster CPU inference for the visual model: its vision tower as an exported graph (OpenVINO or ONNX Runtime).

In an Idefics3-style model (colidefics3, colmodernvbert) the vision tower — a SigLIP encoder run on every 512-px
tile of a page — takes about nine tenths of a page's compute. It is exported once per checkpoint to ONNX
(``torch.onnx.export``), cached, and run by

- ``openvino``: OpenVINO's CPU plugin. ``precision = "int8"`` stores the MLP blocks' weights (two thirds of the
  Linear compute) as int8 (per output channel, symmetric); the plugin quantises their activations at run time in
  groups of 32 (``DYNAMIC_QUANTIZATION_GROUP_SIZE``): VNNI kernels, no calibration data. The attention
  projections stay fp32 (in int8 too: 1.25× faster, 3× the error, top-10 agreement under 0.98). ``fp32`` runs
  the graph as exported.
- ``onnx``: ONNX Runtime. ``int8`` is its dynamic quantisation (``quantize_dynamic``, per channel).

``int8-static`` (either runtime) puts every MatMul, the attention products included, in int8 with activation
scales calibrated once on synthetic pages (``calibration.py``): the fastest path, and a fragile one where a
checkpoint has outlier activation channels, so it is opt-in.

Everything around the tower (the processor, the connector, the text encoder, the projection) stays in torch fp32,
so the token sequence, the patch layout and the query path are torch's (the text encoder exported to OpenVINO was
no faster). A tile batch with masked patches (an image padded inside a tile) goes through the torch tower.

Measured choices and figures: benchmarks/RESULTS.md, "Visual pages on a CPU: the path and the edge"
(``benchmarks/visual_cpu.py``, ``benchmarks/index_cpu.py``). The cache lives in ``$DOCRAG_CACHE_DIR`` (default
``$XDG_CACHE_HOME/docrag`` or ``~/.cache/docrag``), under ``exports/<key>/``: the key names the checkpoint (its
hub commit, or a local directory's files, sizes and times) and the versions of torch, transformers and this
exporter; the folder holds the fp32 export and the int8 forms derived from it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BACKENDS",
    "RUNTIMES",
    "Plan",
    "Runtime",
    "cache_dir",
    "plan",
    "register",
    "swap_vision_tower",
]

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # bump when the exported graph or its int8 form changes: old exports are not reused
GROUP_SIZE = 32  # OpenVINO's activation quantisation group (measured: 128 is 10% faster, with 1.3× the error)
INT8_LAYERS = "/mlp/"  # the MatMuls whose weights int8 stores: the MLP blocks' (fc1, fc2), not attention's


def cache_dir() -> Path:
    """Where exported graphs are kept: ``$DOCRAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/docrag`` (``~/.cache``)."""
    env = os.environ.get("DOCRAG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "docrag"


@dataclass(frozen=True)
class Plan:
    """How the visual model runs: ``backend`` and ``precision`` as asked, or as they fell back (``note``)."""

    backend: str
    precision: str
    note: str = ""

    def describe(self) -> str:
        text = f"{self.backend} {self.precision}"
        return f"{text} ({self.note})" if self.note else text


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def plan(model_type: str, backend: str, precision: str, device: str, exportable: bool) -> Plan:
    """The backend the visual model will run on: the one asked for where it can, else torch and why.
    ``exportable``: the family's vision tower is one ``accel`` exports (Idefics3-style: ``Family.tiles``)."""
    if backend not in BACKENDS:
        raise ValueError(f"visual.options.backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "torch":
        if precision == "int8-static":
            return Plan("torch", "int8", "int8-static needs openvino or onnx; torch runs dynamic int8")
        return Plan("torch", precision)
    torch_precision = "int8" if precision == "int8-static" else precision
    if device != "cpu":
        return Plan("torch", precision, f"{backend} is a CPU path; {device} runs torch")
    if not exportable:
        return Plan("torch", torch_precision, f"{backend} runs Idefics3-style families; {model_type} runs torch")
    missing = [m for m in (RUNTIMES[backend].module, "onnx") if not _importable(m)]
    if missing:
        return Plan(
            "torch", torch_precision, f"{missing[0]} is not installed: torch instead (pip install {missing[0]})"
        )
    return Plan(backend, precision)


# -- export ---------------------------------------------------------------------------------------------------


def checkpoint_key(spec: Any) -> dict[str, Any]:
    """What names a spec's weights: each checkpoint (and a PEFT adapter's base) by its hub commit, or a local
    directory by its config and weight files (names, sizes, modification times)."""
    from .models import cached_path

    out: dict[str, Any] = {}
    for name, revision in (
        (spec.model, spec.revision),
        (spec.options.get("base_model"), spec.options.get("base_revision")),
    ):
        if not name:
            continue
        path = Path(str(name)).expanduser()
        if not path.is_dir():  # a hub id: the commit of its snapshot in the HF cache, else its pinned revision
            local = cached_path(str(name), revision)
            out[str(name)] = Path(local).name if local and "/snapshots/" in local.replace("\\", "/") else (
                revision or "unpinned")  # fmt: skip
            continue
        files = []
        for f in sorted(path.rglob("*")):
            rel = f.relative_to(path)
            if f.is_file() and f.suffix in {".json", ".safetensors", ".bin"} and ".cache" not in rel.parts:
                st = f.resolve().stat()
                files.append([str(rel), st.st_size, st.st_mtime_ns])
        out[str(name)] = {"path": str(path.resolve()), "files": files}
    return out


def export_key(model_type: str, checkpoint: dict[str, Any]) -> str:
    """The cache folder of a checkpoint's exports: its weights and the versions that trace them."""
    import torch
    import transformers

    blob = {
        "type": model_type,
        "checkpoint": checkpoint,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "export": EXPORT_VERSION,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:20]


def _tower_module(tower: Any) -> Any:
    """``tower(pixel_values)`` → last hidden state with every patch kept: the graph that is exported.

    Written out (patch embedding, positions 0 … n-1, encoder, final norm) rather than through the tower's own
    forward: with no patch masked, Idefics3's bucketised positions are exactly 0 … n-1, and its traced form
    (float indices into a Gather) converts in neither runtime. Equality with the tower is tested per family."""
    import torch

    core = getattr(tower, "vision_model", tower)  # SiglipVisionModel wraps the transformer; Idefics3's is one

    class Tower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.core = core

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            emb = self.core.embeddings
            x = emb.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
            x = x + emb.position_embedding.weight[: x.shape[1]]
            hidden = self.core.encoder(inputs_embeds=x, attention_mask=None).last_hidden_state
            return self.core.post_layernorm(hidden)

    return Tower().eval()


def _export_onnx(tower: Any, side: int, out: Path) -> None:
    import torch

    example = torch.zeros((2, 3, side, side), dtype=torch.float32)
    wrapper = _tower_module(tower)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notices about traced branches
        torch.onnx.export(
            wrapper,
            (example,),
            str(out),
            input_names=["pixel_values"],
            output_names=["last_hidden_state"],
            dynamic_axes={"pixel_values": {0: "tiles"}, "last_hidden_state": {0: "tiles"}},
            opset_version=17,
            dynamo=False,
        )


def int8_weights(src: Path, out: Path, _tiles: np.ndarray | None = None) -> int:
    """``src`` with every MatMul of the MLP blocks (``INT8_LAYERS``) reading int8 weights (symmetric, one scale
    per output channel) through a DequantizeLinear: OpenVINO runs these as compressed fully-connected layers and
    quantises their activations per group at run time. Returns how many weights were converted."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src), load_external_data=True)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    nodes, done = [], 0
    for node in graph.node:
        mlp = node.op_type == "MatMul" and len(node.input) == 2 and INT8_LAYERS in node.name
        name = node.input[1] if mlp else ""
        if name in inits and len(inits[name].dims) == 2:
            w = numpy_helper.to_array(inits[name]).astype(np.float32)  # (in, out)
            scale = np.abs(w).max(axis=0) / 127.0
            scale[scale == 0] = 1.0
            q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
            graph.initializer.remove(inits.pop(name))
            graph.initializer.extend(
                [
                    numpy_helper.from_array(q, f"{name}.int8"),
                    numpy_helper.from_array(scale.astype(np.float32), f"{name}.scale"),
                    numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}.zero"),
                ]
            )
            nodes.append(
                helper.make_node(
                    "DequantizeLinear", [f"{name}.int8", f"{name}.scale", f"{name}.zero"], [f"{name}.dq"], axis=1
                )
            )
            node.input[1] = f"{name}.dq"
            done += 1
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(out))
    return done


def static_int8(src: Path, out: Path, tiles: np.ndarray) -> None:
    """``src`` with every MatMul (weights and the attention products) in int8, its activation scales calibrated
    (min/max, symmetric) on ``tiles``: QDQ nodes that OpenVINO and ONNX Runtime run as int8 kernels."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.i = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.i >= len(tiles):
                return None
            self.i += 1
            return {"pixel_values": np.ascontiguousarray(tiles[self.i - 1 : self.i], np.float32)}

    import onnx

    quantize_static(
        onnx.load(str(src)),  # a model, not a path: ORT writes its shape-inferred copy into a temporary folder
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )


def _ort_int8(src: Path, out: Path, _tiles: np.ndarray | None = None) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(onnx.load(str(src)), str(out), weight_type=QuantType.QInt8, per_channel=True)


class _DropRootRecords(logging.Filter):
    """onnxruntime's quantisation tools advise on the root logger itself: those records are dropped below ERROR
    (a filter on the root logger sees only records logged on it, not docrag's, which propagate to its handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextlib.contextmanager
def _quiet_root_logger() -> Any:
    root, drop = logging.getLogger(), _DropRootRecords()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _sweep(folder: Path) -> None:
    """Temporary files of exports whose process is gone (killed mid-export)."""
    for tmp in folder.glob(".*.tmp.onnx"):
        try:
            os.kill(int(tmp.name.split(".")[-3]), 0)
        except (ValueError, IndexError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
        except PermissionError:  # alive, another user's
            pass


def _atomic(out: Path, build: Callable[[Path], None]) -> Path:
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.onnx")
    try:
        build(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def exported_tower(
    tower: Any, side: int, key: str, backend: str, precision: str,
    calibration: Callable[[], np.ndarray] | None = None,
) -> Path:  # fmt: skip
    """The exported graph of ``tower`` for ``backend`` and ``precision``, from the cache folder ``key`` (built
    now when absent: the fp32 export first, then the runtime's int8 form of it; each file written atomically).
    ``calibration`` gives the tiles a static int8 graph calibrates its activation scales on."""
    runtime = RUNTIMES[backend]
    folder = cache_dir() / "exports" / key
    final = folder / runtime.files[precision]
    if final.is_file():
        return final
    folder.mkdir(parents=True, exist_ok=True)
    _sweep(folder)
    log.info("exporting the visual model's tower (%s %s, once per checkpoint) into %s", backend, precision, folder)
    fp32 = folder / FP32_FILE
    if not fp32.is_file():
        _atomic(fp32, lambda tmp: _export_onnx(tower, side, tmp))
    if final == fp32:
        return final
    tiles = None
    if precision == "int8-static":
        if calibration is None:
            raise ValueError("int8-static needs calibration tiles")
        tiles = calibration()
    with _quiet_root_logger():
        return _atomic(final, lambda tmp: runtime.derive[precision](fp32, tmp, tiles))


# -- runtime --------------------------------------------------------------------------------------------------


def import_openvino() -> Any:
    """``openvino``, without its telemetry. ``import openvino`` sends a usage event to Google Analytics, from a
    forked process, unless the user has opted out (openvino-telemetry's consent file); docrag never phones home,
    so the telemetry package is hidden before OpenVINO first loads and its own no-op stub answers instead."""
    import sys

    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]  # import → ImportError
    import openvino as ov

    return ov


def _openvino_runner(path: Path, precision: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    ov = import_openvino()
    core = ov.Core()
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    if precision == "int8":
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = GROUP_SIZE
    else:  # fp32 as exported; int8-static carries its own scales
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = 0
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()

    def run(pixels: np.ndarray) -> np.ndarray:
        return np.array(request.infer({0: pixels})[0], copy=True)

    return run


def _onnx_runner(path: Path, _precision: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(pixels: np.ndarray) -> np.ndarray:
        return session.run(None, {"pixel_values": pixels})[0]

    return run


@dataclass(frozen=True)
class Runtime:
    """A runtime for the exported tower: the module it needs, the file each precision reads (derived from the
    fp32 export by ``derive[precision](fp32, out, calibration_tiles)``) and ``runner(path, precision, threads)``,
    which returns ``run(pixels) -> last hidden state``."""

    name: str
    module: str
    files: dict[str, str]
    derive: dict[str, Callable[[Path, Path, np.ndarray | None], Any]]
    runner: Callable[[Path, str, int], Callable[[np.ndarray], np.ndarray]]


FP32_FILE = "vision-fp32.onnx"
RUNTIMES: dict[str, Runtime] = {}


def register(runtime: Runtime) -> Runtime:
    RUNTIMES[runtime.name] = runtime
    return runtime


register(
    Runtime(
        "openvino",
        "openvino",
        {"fp32": FP32_FILE, "int8": "vision-int8-weights.onnx", "int8-static": "vision-int8-static.onnx"},
        {
            "int8": int8_weights,  # int8 weights; OpenVINO quantises activations
            "int8-static": static_int8,  # QDQ: both runtimes read it
        },
        _openvino_runner,
    )
)
register(
    Runtime(
        "onnx",
        "onnxruntime",
        {"fp32": FP32_FILE, "int8": "vision-int8-dynamic.onnx", "int8-static": "vision-int8-static.onnx"},
        {"int8": _ort_int8, "int8-static": static_int8},
        _onnx_runner,
    )
)
BACKENDS = ("torch", *RUNTIMES)


def _vision_tower(model: Any) -> tuple[Any, Any]:
    inner = getattr(model, "model", None)
    tower = getattr(inner, "vision_model", None)
    if tower is None:
        raise ValueError(f"{type(model).__name__} has no model.vision_model to export")
    return inner, tower


def swap_vision_tower(
    model: Any, spec: Any, backend: str, precision: str, threads: int,
    calibration: Callable[[], np.ndarray] | None = None,
) -> Any:  # fmt: skip
    """Put an exported tower (a torch module over the graph) in place of ``model.model.vision_model``, exported
    into the cache the first time, and return it."""
    inner, tower = _vision_tower(model)
    cfg = tower.config
    side = int(cfg.image_size)
    key = export_key(spec.type, checkpoint_key(spec))
    path = exported_tower(tower, side, key, backend, precision, calibration)
    run = RUNTIMES[backend].runner(path, precision, threads)
    exported = _exported_vision_class()(tower, run, side, f"{backend} {precision}")
    inner.vision_model = exported
    return exported


@functools.cache
def _exported_vision_class() -> type:
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    class _ExportedVision(torch.nn.Module):
        """The vision tower's interface over an exported graph; tiles with masked patches use the torch tower."""

        def __init__(self, tower: Any, run: Callable[[np.ndarray], np.ndarray], side: int, label: str) -> None:
            super().__init__()
            self.fallback = tower
            self.config = tower.config
            self.run, self.side, self.label = run, side, label
            self.fallbacks = 0  # tile batches the torch tower took (read by tests)

        def forward(self, pixel_values: Any, patch_attention_mask: Any = None, **kwargs: Any) -> Any:
            full = patch_attention_mask is None or bool(patch_attention_mask.all())
            if not full or tuple(pixel_values.shape[-2:]) != (self.side, self.side):
                self.fallbacks += 1
                return self.fallback(pixel_values=pixel_values, patch_attention_mask=patch_attention_mask, **kwargs)
            pixels = np.ascontiguousarray(pixel_values.detach().to("cpu", torch.float32).numpy())
            return BaseModelOutput(last_hidden_state=torch.from_numpy(self.run(pixels)).to(pixel_values.dtype))

    return _ExportedVision
