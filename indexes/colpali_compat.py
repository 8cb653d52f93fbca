"""Import colpali-engine on a CPU install without torchvision.

colpali-engine imports every model family at package import. Its ColQwen2 processor imports
``transformers.models.qwen2_vl.image_processing_qwen2_vl``, which needs torchvision — and PyPI's torchvision
does not import beside the local CPU torch build. Without torchvision we alias that module to its PIL
twin (``image_processing_pil_qwen2_vl``, which provides the same ``smart_resize``) before importing
colpali-engine (ColQwen3/3.5 import it too): ColPali, ColIdefics3, ColModernVBert and ColGemma3 then work fully
(their processors load PIL image processors). The ColQwen2/2.5/3/3.5 processors still need torchvision: each
carries a video processor, and transformers 5 defines video processors only with torchvision (no alias can
stand in); ``require_torchvision`` raises a clear error for them.
"""

from __future__ import annotations

import importlib
import sys
from functools import lru_cache
from types import ModuleType

__all__ = ["colpali_engine", "has_torchvision", "require_torchvision"]

_QWEN2_VL_IP = "transformers.models.qwen2_vl.image_processing_qwen2_vl"


@lru_cache(maxsize=1)
def has_torchvision() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # missing, or a CUDA build that fails to import ("operator torchvision::nms …")
        return False
    return True


def require_torchvision(what: str) -> None:
    if not has_torchvision():
        raise ImportError(
            f"{what} needs torchvision, which is not importable here: install the torch 2.13 / torchvision 0.28 "
            "pair with `make gpu` (or `pip install torch==2.13.0 torchvision==0.28.0 --index-url "
            "https://download.pytorch.org/whl/cu128`), or use a model type that works without it: "
            "'colidefics3' (colSmol), 'colmodernvbert', 'colpali' or 'colgemma3'."
        )


@lru_cache(maxsize=1)
def colpali_engine() -> ModuleType:
    """``colpali_engine.models``, importable with or without torchvision."""
    if not has_torchvision() and _QWEN2_VL_IP not in sys.modules:
        sys.modules[_QWEN2_VL_IP] = importlib.import_module(
            "transformers.models.qwen2_vl.image_processing_pil_qwen2_vl"
        )
    try:
        return importlib.import_module("colpali_engine.models")
    except ImportError as exc:
        raise ImportError(f"the visual leg needs colpali-engine==0.3.18 ({exc})") from exc
