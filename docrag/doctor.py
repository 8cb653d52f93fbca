"""What this machine has for docrag and what each profile still needs: the checkpoints of every profile and
where they are found (``model_rows``), and the environment (torch, CUDA, torchvision, tesseract, poppler, the
Hugging Face cache; ``report``). Nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from docrag.config import LEGS, PROFILES, read_config, resolve

__all__ = ["downloads_off", "model_rows", "report"]


def downloads_off() -> bool:
    """HF_HUB_OFFLINE=1, ``docrag --offline`` or DOCRAG_OFFLINE: hub checkpoints will not be downloaded."""
    from docrag.indexes.models import hub_offline

    return hub_offline(os.environ.get("DOCRAG_OFFLINE", "").lower() in {"1", "true", "yes"})


def pooling(leg: str, spec: Any) -> str:
    """How the leg's model makes its vectors: multi-vector for the visual leg, else the declared pooling."""
    if leg == "visual":
        return "per patch (MaxSim)"
    from docrag.indexes.embedders import checkpoint_pooling, embedder_class
    from docrag.indexes.models import cached_path

    local = cached_path(spec.model, spec.revision)  # a directory, or a hub checkpoint already in the cache
    found = checkpoint_pooling(local) if local and spec.type == "sentence-transformers" else None
    return str(spec.options.get("pooling") or found or embedder_class(spec).pooling)


def runtime(leg: str, spec: Any) -> str:
    """How a leg's model runs on a CPU (a GPU runs torch), and for the visual leg at what longest edge it renders
    pages: the backend and precision it asks for, or the fall-back it gets (``accel.plan``) and why."""
    if leg != "visual":
        return "torch"
    from docrag.indexes.accel import plan
    from docrag.indexes.multivector import FAMILIES

    device = "cpu" if spec.device in {"auto", "cpu"} else spec.device  # "auto": as it runs on a CPU
    tiles = spec.type in FAMILIES and FAMILIES[spec.type].tiles
    backend, precision = str(spec.options.get("backend", "torch")), str(spec.options.get("precision", "fp32"))
    got = plan(spec.type, backend, precision, device, exportable=tiles)
    edge = spec.options.get("max_edge")
    where = f"edge {edge} px" if edge and tiles else "edge: checkpoint's" if tiles else "checkpoint's resolution"
    how = "torch" if (got.backend, got.precision, got.note) == ("torch", "fp32", "") else got.describe()
    return f"{how}; {where}"


def model_rows(profile: str | None = None, config: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per checkpoint of each profile (or of ``profile``/``config`` only), with where it is found and,
    when it is not, the ``hf download`` command that fetches it. A ValueError for a bad profile or file."""
    from docrag.indexes.models import availability, checkpoints

    file = read_config(config)
    rows = []
    for name in [profile] if profile or config else list(PROFILES):
        settings = resolve(None, name, file, source=str(config or ""))
        for leg in LEGS:
            spec = getattr(settings, leg)
            for c in checkpoints(leg, spec):
                ok, where = availability(c.model, c.revision)
                rows.append(
                    {
                        "profile": settings.profile,
                        "leg": leg,
                        "type": spec.type,
                        "pooling": pooling(leg, spec),
                        "runs_as": runtime(leg, spec),
                        "query_prefix": spec.options.get("query_prefix", ""),
                        "model": c.model,
                        "setting": c.setting,
                        "revision": c.revision,
                        "pinned": c.revision is not None,
                        "available": ok,
                        "where": where,
                        "download": None if ok else c.hf_command(),
                    }
                )
    return rows


def _first_line(cmd: list[str]) -> str | None:
    import shutil
    import subprocess

    if shutil.which(cmd[0]) is None:
        return None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else cmd[0]


def report() -> dict[str, Any]:
    """The machine's facts and, per profile, whether it is ready and what it lacks."""
    import importlib.metadata as md
    import platform

    import torch
    from huggingface_hub import constants as hf_constants

    from docrag.indexes.colpali_compat import has_torchvision
    from docrag.indexes.multivector import FAMILIES

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    cuda = torch.cuda.is_available()
    checks: dict[str, Any] = {
        "python": platform.python_version(),
        "docrag": version("docrag"),
        "torch": torch.__version__,
        "cuda": {
            "available": cuda,
            "build": torch.version.cuda,
            "device": torch.cuda.get_device_name(0) if cuda else None,
        },
        "torchvision": version("torchvision") if has_torchvision() else None,
        "colpali-engine": version("colpali-engine"),
        "transformers": version("transformers"),
        "tesseract": _first_line(["tesseract", "--version"]),
        "poppler": _first_line(["pdftoppm", "-v"]),
        "hf_cache": hf_constants.HF_HUB_CACHE,
        "hf_endpoint": hf_constants.ENDPOINT,
        "offline": downloads_off(),
    }
    profiles: dict[str, list[str]] = {}
    for row in model_rows():
        lacks = profiles.setdefault(row["profile"], [])
        if not row["available"]:
            how = "missing, downloads are off" if checks["offline"] else "downloads on first use"
            lacks.append(f"{row['model']} ({how}: {row['download']})")
        fam = FAMILIES.get(row["type"]) if row["leg"] == "visual" else None
        if fam is not None and fam.needs_torchvision and not checks["torchvision"]:
            lacks.append(f"torchvision (model type {row['type']!r}; `make gpu` installs it)")
        if row["profile"] == "gpu" and row["leg"] == "visual" and not cuda:
            lacks.append("a CUDA GPU (runs on CPU, far too slowly for a 3B model)")
    if checks["tesseract"] is None:
        for lacks in profiles.values():
            lacks.append("tesseract (OCR of scanned pages): apt-get install tesseract-ocr")
    checks["profiles"] = {
        name: {"ready": not lacks, "lacks": list(dict.fromkeys(lacks))} for name, lacks in profiles.items()
    }
    return checks
